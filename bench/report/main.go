// Command report summarizes bench/compare.sh's results: medians (with the
// range over rounds) per case and server, ratios against gnet, the issue's
// targets checked for netd, and SVG charts of lines/s and of the server's
// CPU per line, per server per case. Standard library only.
//
//	go run . -in results.tsv -chart chart.svg -cpu-chart cpu-chart.svg > summary.md
//
// Each input line is: round, case, server, then the loadgen's key=value
// pairs (tab or space separated); the idle case carries bytes_per_conn, the
// live case conns_active.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// caseInfo describes one case of compare.sh.
type caseInfo struct {
	id, title string
	pingPong  bool
}

var cases = []caseInfo{
	{"pipe", "64 conns × 16 lines in flight", false},
	{"pp1", "ping-pong, 1 conn", true},
	{"pp64", "ping-pong, 64 conns", true},
	{"pp1000", "ping-pong, 1000 conns", true},
}

var serverOrder = []string{"netd", "netd-alt", "gnet", "evio", "stdlib", "c"}

var serverTitle = map[string]string{
	"netd":     "netd",
	"netd-alt": "netd-alt",
	"gnet":     "gnet v2.9.7",
	"evio":     "evio v1.0.8",
	"stdlib":   "Go stdlib, goroutine per conn",
	"c":        "minimal C epoll",
}

var serverColor = map[string]string{
	"netd":     "#d62728",
	"netd-alt": "#ff9896",
	"gnet":     "#1f77b4",
	"evio":     "#2ca02c",
	"stdlib":   "#9467bd",
	"c":        "#7f7f7f",
}

// samples holds every value of one metric for one case and server.
type samples map[string]map[string]map[string][]float64 // case → server → key → values

func (s samples) add(c, srv, key string, v float64) {
	if s[c] == nil {
		s[c] = map[string]map[string][]float64{}
	}
	if s[c][srv] == nil {
		s[c][srv] = map[string][]float64{}
	}
	s[c][srv][key] = append(s[c][srv][key], v)
}

func (s samples) get(c, srv, key string) []float64 { return s[c][srv][key] }

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	w := slices.Clone(v)
	slices.Sort(w)
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return (w[len(w)/2-1] + w[len(w)/2]) / 2
}

func read(r io.Reader) (samples, []string, error) {
	s := samples{}
	var servers []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		c, srv := f[1], f[2]
		if !slices.Contains(servers, srv) {
			servers = append(servers, srv)
		}
		for _, kv := range f[3:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			s.add(c, srv, k, x)
		}
	}
	// Known servers first, in their usual order, then any others.
	ordered := []string{}
	for _, srv := range serverOrder {
		if slices.Contains(servers, srv) {
			ordered = append(ordered, srv)
		}
	}
	for _, srv := range servers {
		if !slices.Contains(ordered, srv) {
			ordered = append(ordered, srv)
		}
	}
	return s, ordered, sc.Err()
}

// human formats n with k/M suffixes, as lines/s are written in the issue.
func human(n float64) string {
	switch {
	case math.IsNaN(n):
		return "–"
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.0fk", n/1e3)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

// tick formats an axis value exactly: 12.5k, not 12k.
func tick(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func micros(ns float64) string {
	if math.IsNaN(ns) {
		return "–"
	}
	if ns >= 10000 {
		return fmt.Sprintf("%.1f µs", ns/1000)
	}
	return fmt.Sprintf("%.2f µs", ns/1000)
}

func latency(us float64) string {
	if math.IsNaN(us) {
		return "–"
	}
	if us >= 1000 {
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func bytesStr(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	if b >= 1024 {
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}

// cell is "median (min–max)" over the rounds.
func cell(v []float64, f func(float64) string) string {
	if len(v) == 0 {
		return "–"
	}
	if len(v) == 1 {
		return f(v[0])
	}
	return fmt.Sprintf("%s (%s–%s)", f(median(v)), f(slices.Min(v)), f(slices.Max(v)))
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mark(ok bool) string {
	if ok {
		return "holds"
	}
	return "**misses**"
}

func main() {
	in := flag.String("in", "results.tsv", "results of compare.sh")
	chart := flag.String("chart", "", "write an SVG chart of lines/s here")
	cpuChart := flag.String("cpu-chart", "", "write an SVG chart of the server's CPU per line here")
	rss := flag.String("rss", "", "instead: read a soak's RSS samples (SECONDS KIB per line) and chart them")
	rssOut := flag.String("rss-chart", "rss.svg", "with -rss: write the chart here")
	rssTitle := flag.String("rss-title", "netd RSS during the soak", "with -rss: the chart's title")
	flag.Parse()
	if *rss != "" {
		if err := writeRSSChart(*rss, *rssOut, *rssTitle); err != nil {
			log.Fatal(err)
		}
		return
	}
	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	s, servers, err := read(f)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()

	rounds := 0
	for _, c := range cases {
		for _, srv := range servers {
			rounds = max(rounds, len(s.get(c.id, srv, "lines_per_s")))
		}
	}
	fmt.Fprintf(w, "Medians over %d round(s), with the range (min–max) in brackets.\n\n", rounds)

	header := func(first string) {
		fmt.Fprintf(w, "| %s |", first)
		for _, srv := range servers {
			t := serverTitle[srv]
			if t == "" {
				t = srv
			}
			fmt.Fprintf(w, " %s |", t)
		}
		fmt.Fprint(w, "\n|---|")
		for range servers {
			fmt.Fprint(w, "---|")
		}
		fmt.Fprintln(w)
	}
	row := func(title, c, key string, f func(float64) string, scale float64) {
		fmt.Fprintf(w, "| %s |", title)
		for _, srv := range servers {
			v := slices.Clone(s.get(c, srv, key))
			for i := range v {
				v[i] *= scale
			}
			fmt.Fprintf(w, " %s |", cell(v, f))
		}
		fmt.Fprintln(w)
	}
	header("case")
	for _, c := range cases {
		row(c.title+": lines/s", c.id, "lines_per_s", human, 1)
	}
	for _, c := range cases {
		row(c.title+": server CPU per line", c.id, "server_cpu_ns_per_line", micros, 1)
	}
	for _, c := range cases {
		row(c.title+": p99 latency", c.id, "p99_us", latency, 1)
	}
	for _, c := range cases {
		row(c.title+": load tool CPU per line", c.id, "client_cpu_ns_per_line", micros, 1)
	}
	held := "idle connections held"
	for _, srv := range servers {
		if v := s.get("idle", srv, "conns"); len(v) > 0 {
			held = fmt.Sprintf("%.0f held", v[0])
		}
	}
	row("memory per idle connection ("+held+")", "idle", "bytes_per_conn", bytesStr, 1)

	// netd (and netd-alt, when there) against gnet, with the targets.
	for _, nd := range []string{"netd", "netd-alt"} {
		if !slices.Contains(servers, nd) || !slices.Contains(servers, "gnet") {
			continue
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s against gnet: ratio of the medians, and in brackets the median of the per-round ratios (both ran in the same round, minutes apart at most, so this one is less exposed to the load on the machine drifting); targets from issue 4:\n\n", nd)
		fmt.Fprintf(w, "| case | lines/s %s÷gnet (target ≥ 1.0) | CPU/line %s÷gnet (target) | p99 %s÷gnet (target ≤ 1.0) | verdict |\n", nd, nd, nd)
		fmt.Fprintln(w, "|---|---|---|---|---|")
		for _, c := range cases {
			m := func(srv, key string) float64 { return median(s.get(c.id, srv, key)) }
			paired := func(key string) string {
				a, b := s.get(c.id, nd, key), s.get(c.id, "gnet", key)
				if len(a) != len(b) || len(a) < 2 {
					return ""
				}
				r := make([]float64, len(a))
				for i := range a {
					r[i] = a[i] / b[i]
				}
				return fmt.Sprintf(" (%.2f×)", median(r))
			}
			lr := m(nd, "lines_per_s") / m("gnet", "lines_per_s")
			cr := m(nd, "server_cpu_ns_per_line") / m("gnet", "server_cpu_ns_per_line")
			pr := m(nd, "p99_us") / m("gnet", "p99_us")
			cpuTarget := 0.8
			if c.pingPong {
				cpuTarget = 0.9
			}
			if math.IsNaN(lr) || math.IsNaN(cr) {
				continue
			}
			ok := lr >= 1.0 && cr <= cpuTarget && (!c.pingPong || pr <= 1.0)
			p99 := ratio(m(nd, "p99_us"), m("gnet", "p99_us")) + paired("p99_us")
			if !c.pingPong {
				p99 += " (no target)"
			}
			fmt.Fprintf(w, "| %s | %s%s | %s%s (≤ %.1f) | %s | %s |\n", c.title,
				ratio(m(nd, "lines_per_s"), m("gnet", "lines_per_s")), paired("lines_per_s"),
				ratio(m(nd, "server_cpu_ns_per_line"), m("gnet", "server_cpu_ns_per_line")), paired("server_cpu_ns_per_line"), cpuTarget,
				p99, mark(ok))
		}
		if b := median(s.get("idle", nd, "bytes_per_conn")); !math.IsNaN(b) {
			fmt.Fprintf(w, "| memory per idle connection | %s %s (gnet %s) | target ≤ 256 B | | %s |\n",
				nd, bytesStr(b), bytesStr(median(s.get("idle", "gnet", "bytes_per_conn"))), mark(b <= 256))
		}
	}
	if v := s.get("live", "netd", "conns_active"); len(v) > 0 {
		fmt.Fprintln(w)
		for i := range v {
			get := func(k string) float64 { return s.get("live", "netd", k)[i] }
			fmt.Fprintf(w, "Live connections on netd: %.0f of %.0f connections echoed in the window; %s lines/s, p99 %s, %.0f mismatches, %.0f errors.\n",
				get("conns_active"), get("conns"), human(get("lines_per_s")), latency(get("p99_us")), get("mismatches"), get("errors"))
		}
	}
	var bad []string
	for c, bySrv := range s {
		for srv, kv := range bySrv {
			for _, k := range []string{"mismatches", "errors"} {
				if t := sum(kv[k]); t > 0 {
					bad = append(bad, fmt.Sprintf("%s/%s: %.0f %s", c, srv, t, k))
				}
			}
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		fmt.Fprintf(w, "\nErrors or mismatches: %s\n", strings.Join(bad, "; "))
	}
	for file, m := range map[string]chartMetric{*chart: linesMetric, *cpuChart: cpuMetric} {
		if file == "" {
			continue
		}
		if err := os.WriteFile(file, []byte(svgChart(s, servers, m)), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

// chartMetric is what a chart shows: one key of the results, scaled.
type chartMetric struct {
	key, title, unit string
	scale            float64              // multiplies the key's values
	label            func(float64) string // a bar's value, scaled
}

var (
	linesMetric = chartMetric{"lines_per_s", "Lines echoed per second", "lines/s", 1, human}
	cpuMetric   = chartMetric{"server_cpu_ns_per_line", "Server CPU per line in µs, lower is better", "µs", 1e-3,
		func(v float64) string {
			if v >= 100 {
				return strconv.FormatFloat(v, 'f', 0, 64)
			}
			return strconv.FormatFloat(v, 'g', 3, 64)
		}}
)

// values returns m's scaled values for case c and server srv.
func (m chartMetric) values(s samples, c, srv string) []float64 {
	v := slices.Clone(s.get(c, srv, m.key))
	for i := range v {
		v[i] *= m.scale
	}
	return v
}

// svgChart draws one panel per case, each with its own scale, a bar per
// server at its median of m and a whisker from min to max.
func svgChart(s samples, servers []string, m chartMetric) string {
	const (
		panelW, panelH = 260, 300
		top, bottom    = 60, 70
		left           = 50
		gap            = 20
	)
	width := left + len(cases)*(panelW+gap) + 10
	height := top + panelH + bottom + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s (64-byte lines; median of rounds, whiskers min–max; each panel has its own scale)</text>`+"\n", left, html.EscapeString(m.title))
	for i, c := range cases {
		x0 := left + i*(panelW+gap)
		y0 := top
		peak := 0.0
		for _, srv := range servers {
			if v := m.values(s, c.id, srv); len(v) > 0 {
				peak = max(peak, slices.Max(v))
			}
		}
		if peak == 0 {
			continue
		}
		scale := niceCeil(peak)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold" text-anchor="middle">%s</text>`+"\n", x0+panelW/2, y0-12, html.EscapeString(c.title))
		// Axis and grid.
		for k := 0; k <= 4; k++ {
			y := y0 + panelH - panelH*k/4
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", x0, y, x0+panelW, y)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#555">%s</text>`+"\n", x0-4, y+4, tick(scale*float64(k)/4))
		}
		barW := panelW / (len(servers) + 1)
		for j, srv := range servers {
			v := m.values(s, c.id, srv)
			if len(v) == 0 {
				continue
			}
			med := median(v)
			bx := x0 + barW/2 + j*barW
			h := int(float64(panelH) * med / scale)
			color := serverColor[srv]
			if color == "" {
				color = "#bcbd22"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %s %s</title></rect>`+"\n",
				bx, y0+panelH-h, barW-6, h, color, html.EscapeString(srv), m.label(med), m.unit)
			lo := y0 + panelH - int(float64(panelH)*slices.Min(v)/scale)
			hi := y0 + panelH - int(float64(panelH)*slices.Max(v)/scale)
			cx := bx + (barW-6)/2
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", cx, lo, cx, hi)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, min(hi, y0+panelH-h)-4, m.label(med))
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" transform="rotate(-40 %d %d)">%s</text>`+"\n",
				cx, y0+panelH+14, cx, y0+panelH+14, html.EscapeString(srv))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, y0+panelH, x0+panelW, y0+panelH)
	}
	// Legend.
	lx := left
	ly := top + panelH + bottom + 20
	for _, srv := range servers {
		t := serverTitle[srv]
		if t == "" {
			t = srv
		}
		color := serverColor[srv]
		if color == "" {
			color = "#bcbd22"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, ly-10, color, lx+16, ly, html.EscapeString(t))
		lx += 30 + 7*len(t)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
