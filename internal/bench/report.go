package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteText writes a human summary of the report.
func (r Report) WriteText(w io.Writer) {
	o := r.Options
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	mode := "ping-pong"
	if o.InFlight > 1 {
		mode = fmt.Sprintf("%d lines in flight", o.InFlight)
	}
	size := fmt.Sprintf("%d-byte lines", o.LineSize)
	if o.RandomLines {
		size = fmt.Sprintf("random lines of 1..%d bytes", o.LineSize)
	}
	p("netd bench %s: %d conns, %s, %s, %s", o.Address, o.Conns, size, mode, o.Duration)
	var extra []string
	if o.Lines > 0 {
		extra = append(extra, fmt.Sprintf("%d lines per conn", o.Lines))
	}
	if o.Fragment {
		extra = append(extra, "fragmented writes")
	}
	if o.HalfClose > 0 {
		extra = append(extra, fmt.Sprintf("half-close %g", o.HalfClose))
	}
	if o.Reconnect {
		extra = append(extra, fmt.Sprintf("reconnect every 1..%d lines", o.CycleLines))
	}
	if len(extra) > 0 {
		p(", %s", strings.Join(extra, ", "))
	}
	p(", seed %d\n", o.Seed)
	if r.Interrupted {
		p("  (interrupted after %s)\n", fmtDur(r.Elapsed))
	}

	p("  lines        %s in %s: %s lines/s\n", fmtInt(r.Lines), fmtDur(r.Elapsed), fmtInt(int64(r.LinesPerSec+0.5)))
	p("  bytes        %s sent, %s verified: %.2f MiB/s\n", fmtBytes(r.BytesSent), fmtBytes(r.BytesVerified), r.MiBPerSec)
	if r.Lines > 0 {
		p("  latency      min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			fmtDur(r.Min), fmtDur(r.Mean), fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.P999), fmtDur(r.Max))
	}
	p("  connections  %s opened, %s connect errors", fmtInt(r.Connects), fmtInt(r.ConnectErrors))
	if o.HalfClose > 0 {
		p(", %s half-closes verified", fmtInt(r.HalfCloses))
	}
	p("\n")
	if r.FirstConnectErr != "" {
		p("               first: %s\n", r.FirstConnectErr)
	}
	p("  errors       %s\n", fmtInt(r.Errors))
	if r.FirstError != "" {
		p("               first: %s\n", r.FirstError)
	}
	p("  mismatches   %s\n", fmtInt(r.Mismatches))
	if r.FirstMismatch != "" {
		p("               first: %s\n", r.FirstMismatch)
	}
	p("  client CPU   %s", fmtDur(r.ClientCPU))
	if r.Lines > 0 {
		p(", %s per line", fmtDur(r.ClientCPUPerLine))
	}
	p("\n")
	if o.ServerPID > 0 {
		p("  server       pid %d: CPU %s", o.ServerPID, fmtDur(r.ServerCPU))
		if r.Lines > 0 {
			p(", %s per line", fmtDur(r.ServerCPUPerLine))
		}
		p("; RSS %s before, %s after, %s peak (VmHWM)", fmtBytes(r.ServerRSSStart), fmtBytes(r.ServerRSSEnd), fmtBytes(r.ServerPeakRSS))
		if r.ServerGone {
			p("; the process went away during the run")
		}
		p("\n")
	}
	io.WriteString(w, b.String())
}

// fmtDur shows d with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return trimUnit(float64(d)/1e3, "µs")
	case d < time.Second:
		return trimUnit(float64(d)/1e6, "ms")
	default:
		return trimUnit(d.Seconds(), "s")
	}
}

func trimUnit(v float64, unit string) string {
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + unit
}

// fmtInt groups digits by thousands.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtBytes shows n in B, KiB, MiB or GiB.
func fmtBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
}
