package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"os"
	"strconv"
	"strings"
)

// rssPoint is one sample of a server's resident set: seconds since the
// sampler started, and VmRSS in KiB.
type rssPoint struct {
	sec, kib float64
}

// readRSS reads "SECONDS<TAB>KIB" lines, as the soak's sampler writes them
// (docs/RELIABILITY.md); a line whose KiB is missing (the process had
// exited) ends the series.
func readRSS(r io.Reader) ([]rssPoint, error) {
	var pts []rssPoint
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			break
		}
		sec, err1 := strconv.ParseFloat(f[0], 64)
		kib, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: want SECONDS KIB, got %q", n, sc.Text())
		}
		pts = append(pts, rssPoint{sec, kib})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pts) < 2 {
		return nil, fmt.Errorf("want at least 2 samples, got %d", len(pts))
	}
	return pts, nil
}

// rssChart draws the resident set over time as one line, in MiB.
func rssChart(pts []rssPoint, title string) string {
	const (
		w, h                     = 760, 320
		left, right, top, bottom = 60, 20, 50, 50
	)
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	maxSec, maxMiB := pts[len(pts)-1].sec, 0.0
	for _, p := range pts {
		maxMiB = max(maxMiB, p.kib/1024)
	}
	yScale := niceCeil(maxMiB)
	xScale := niceCeil(maxSec)
	x := func(s float64) float64 { return float64(left) + pw*s/xScale }
	y := func(m float64) float64 { return float64(top) + ph - ph*m/yScale }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for k := 0; k <= 4; k++ {
		m := yScale * float64(k) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(m), w-right, y(m))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s MiB</text>`+"\n", left-4, y(m)+4, tick(m))
		s := xScale * float64(k) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s s</text>`+"\n", x(s), h-bottom+18, tick(s))
	}
	b.WriteString(`<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="`)
	for _, p := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(p.sec), y(p.kib/1024))
	}
	b.WriteString("\"/>\n")
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	b.WriteString("</svg>\n")
	return b.String()
}

// writeRSSChart reads the samples in in and writes their chart to out.
func writeRSSChart(in, out, title string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	pts, err := readRSS(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return os.WriteFile(out, []byte(rssChart(pts, title)), 0o644)
}
