package bench

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture that Go supports.
const clockTick = time.Second / 100

// serverWatch samples a server process from /proc.
type serverWatch struct {
	pid     int
	cpu0    time.Duration
	rss0    int64
	maxRSS  int64
	lastRSS int64
	lastHWM int64
	lastCPU time.Duration
	gone    bool
}

func watchServer(pid int) (*serverWatch, error) {
	cpu, err := procCPU(pid)
	if err != nil {
		return nil, optErrorf("server pid %d: %v", pid, err)
	}
	rss, hwm, err := procRSS(pid)
	if err != nil {
		return nil, optErrorf("server pid %d: %v", pid, err)
	}
	return &serverWatch{pid: pid, cpu0: cpu, lastCPU: cpu, rss0: rss, maxRSS: rss, lastRSS: rss, lastHWM: hwm}, nil
}

// sample reads the server's RSS and CPU time, keeping the last good values
// if the process has gone.
func (s *serverWatch) sample() {
	rss, hwm, err := procRSS(s.pid)
	if err != nil {
		s.gone = true
		return
	}
	s.lastRSS, s.lastHWM = rss, hwm
	s.maxRSS = max(s.maxRSS, rss)
	if cpu, err := procCPU(s.pid); err == nil {
		s.lastCPU = cpu
	}
}

func (s *serverWatch) finish(r *Report) {
	s.sample()
	r.ServerGone = s.gone
	r.ServerCPU = s.lastCPU - s.cpu0
	if r.Lines > 0 {
		r.ServerCPUPerLine = r.ServerCPU / time.Duration(r.Lines)
	}
	r.ServerPeakRSS = max(s.lastHWM, s.maxRSS)
	r.ServerMaxRSS = s.maxRSS
	r.ServerRSSStart = s.rss0
	r.ServerRSSEnd = s.lastRSS
}

// procCPU is utime+stime of process pid (all its threads, live and dead).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// pid (comm) state ppid ...: comm may hold spaces and parentheses, so
	// count fields from the last ')'. utime and stime are fields 14 and 15,
	// that is the 12th and 13th after comm.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat")
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procRSS is VmRSS and VmHWM of process pid, in bytes.
func procRSS(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return parseStatusRSS(b)
}

func parseStatusRSS(b []byte) (rss, hwm int64, err error) {
	found := 0
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		*dst = kb << 10
		found++
	}
	if found < 2 {
		return 0, 0, errors.New("no VmRSS/VmHWM in /proc status (a zombie?)")
	}
	return rss, hwm, nil
}
