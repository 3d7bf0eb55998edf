package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
)

// standardReasons always appear in netd_connections_closed_total, at 0
// until they happen, so that rate() and alerts see them from the start.
// line_too_long is echo's own reason; it is here because INTERFACE.md
// lists it among the reasons /metrics shows.
var standardReasons = []string{
	string(api.ReasonClient), string(api.ReasonDone), string(api.ReasonIdleTimeout),
	string(api.ReasonOverLimit), "line_too_long", string(api.ReasonError),
	string(api.ReasonShutdown),
}

// Metrics is netd's metrics registry: the listener and loop counters read
// from a Source at scrape time, the reload and config state the daemon
// records, build info, the Go and process collectors, and whatever modules
// register. It lives as long as the process; a Server serves one over
// HTTP. Its methods may be called from any goroutine.
type Metrics struct {
	reg *prometheus.Registry
	src Source

	mu            sync.Mutex
	reloadsOK     uint64
	reloadsFailed uint64
	lastOK        bool // the last load or reload succeeded
	hash          string
	loadedAt      time.Time

	// lmu guards byListener: each listener's record of the collectors its
	// module registered (see ListenerRegisterer).
	lmu        sync.Mutex
	byListener map[ListenerID]*listenerRegisterer
}

// NewMetrics builds a registry that reads src at each scrape. version and
// commit label netd_build_info.
func NewMetrics(src Source, version, commit string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), src: src, lastOK: true, byListener: map[ListenerID]*listenerRegisterer{}}
	if version == "" {
		version = "unknown"
	}
	if commit == "" {
		commit = "unknown"
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "netd_build_info",
			Help:        "Always 1; the labels name the running netd build.",
			ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		&collector{m: m},
	)
	return m
}

// Registry is the private registry the Server's /metrics serves. Module
// instances register their own collectors in it (api.Setup.Metrics),
// through ListenerRegisterer in the daemon.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ConfigLoaded records the config the daemon runs at start-up: its hash
// (see HashConfig) and when it was loaded. It counts no reload.
func (m *Metrics) ConfigLoaded(hash string, at time.Time) {
	m.mu.Lock()
	m.hash, m.loadedAt, m.lastOK = hash, at, true
	m.mu.Unlock()
}

// Reloaded records one reload, whatever triggered it (SIGHUP or POST
// /-/reload): with err nil it counts result="ok" and records the new
// config's hash and load time; otherwise it counts result="failed" and
// the config in force stays the one recorded before.
func (m *Metrics) Reloaded(hash string, at time.Time, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.reloadsFailed++
		m.lastOK = false
		return
	}
	m.reloadsOK++
	m.hash, m.loadedAt, m.lastOK = hash, at, true
}

// HashConfig is the hash netd_config_info reports: the SHA-256 of the
// config file's bytes, in hex.
func HashConfig(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

var (
	descAccepted = prometheus.NewDesc("netd_connections_accepted_total",
		"Connections accepted, over_limit ones included.", []string{"listener"}, nil)
	descActive = prometheus.NewDesc("netd_connections_active",
		"Connections open now.", []string{"listener"}, nil)
	descClosed = prometheus.NewDesc("netd_connections_closed_total",
		"Connections closed, by reason.", []string{"listener", "reason"}, nil)
	descBytesIn = prometheus.NewDesc("netd_bytes_received_total",
		"Bytes read from clients, datagrams included.", []string{"listener"}, nil)
	descBytesOut = prometheus.NewDesc("netd_bytes_sent_total",
		"Bytes written to clients, datagrams included.", []string{"listener"}, nil)
	descReadsPaused = prometheus.NewDesc("netd_reads_paused_total",
		"Times reading from a connection paused because its queued output passed the high watermark.", []string{"listener"}, nil)
	descAcceptErrors = prometheus.NewDesc("netd_accept_errors_total",
		"accept(2) failures other than EAGAIN.", []string{"listener"}, nil)
	descDatagramsIn = prometheus.NewDesc("netd_datagrams_received_total",
		"Datagrams received.", []string{"listener"}, nil)
	descDatagramsOut = prometheus.NewDesc("netd_datagrams_sent_total",
		"Datagrams sent.", []string{"listener"}, nil)
	descDropped = prometheus.NewDesc("netd_datagrams_dropped_total",
		"Datagrams dropped because the socket's send queue was full, or answers larger than their request to a non-loopback source (udp_amplification: deny).", []string{"listener"}, nil)
	descRefused = prometheus.NewDesc("netd_connections_refused_total",
		"Connections (datagrams, on udp) refused before the module saw them, by reason: denied, per_source, rate, over_limit (also counted as closed), proxy_protocol.", []string{"listener", "reason"}, nil)

	descLoopEvents = prometheus.NewDesc("netd_loop_events_total",
		"Readiness events an event loop has handled.", []string{"loop"}, nil)
	descLoopBusy = prometheus.NewDesc("netd_loop_busy_seconds_total",
		"Time an event loop has spent outside epoll_wait.", []string{"loop"}, nil)
	descLoopConns = prometheus.NewDesc("netd_loop_connections",
		"Accepted connections an event loop serves now.", []string{"loop"}, nil)

	descReloads = prometheus.NewDesc("netd_reloads_total",
		"Config reloads, by result.", []string{"result"}, nil)
	descConfigInfo = prometheus.NewDesc("netd_config_info",
		"Always 1; hash is the SHA-256 of the config in force.", []string{"hash"}, nil)
	descConfigTime = prometheus.NewDesc("netd_config_last_reload_timestamp_seconds",
		"When the config in force was loaded, at start-up or by the last successful reload, in seconds since the epoch.", nil, nil)
	descConfigOK = prometheus.NewDesc("netd_config_last_reload_successful",
		"1 when the last reload succeeded (or none failed since start-up), 0 when it failed.", nil, nil)
)

// collector reads the Source and the reload state at scrape time.
type collector struct{ m *Metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descAccepted, descActive, descClosed, descBytesIn, descBytesOut, descReadsPaused,
		descAcceptErrors, descDatagramsIn, descDatagramsOut, descDropped, descRefused,
		descLoopEvents, descLoopBusy, descLoopConns, descReloads, descConfigInfo, descConfigTime, descConfigOK,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	m := c.m

	if m.src != nil {
		for _, l := range mergeByName(m.src.Listeners()) {
			n := l.Name
			counter(descAccepted, l.Accepted, n)
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(l.Active), n)
			for _, r := range standardReasons {
				counter(descClosed, l.Closed[r], n, r)
			}
			var other []string
			for r := range l.Closed {
				if !isStandardReason(r) {
					other = append(other, r)
				}
			}
			sort.Strings(other)
			for _, r := range other {
				counter(descClosed, l.Closed[r], n, r)
			}
			counter(descBytesIn, l.BytesIn, n)
			counter(descBytesOut, l.BytesOut, n)
			counter(descReadsPaused, l.ReadsPaused, n)
			counter(descAcceptErrors, l.AcceptErrors, n)
			counter(descDatagramsIn, l.DatagramsIn, n)
			counter(descDatagramsOut, l.DatagramsOut, n)
			counter(descDropped, l.Dropped, n)
			for _, r := range loop.RefusedReasons {
				counter(descRefused, l.Refused[string(r)], n, string(r))
			}
		}
		seen := map[int]bool{}
		for _, lp := range m.src.Loops() {
			if seen[lp.ID] {
				continue // a duplicate would fail the whole scrape
			}
			seen[lp.ID] = true
			id := strconv.Itoa(lp.ID)
			counter(descLoopEvents, lp.Events, id)
			ch <- prometheus.MustNewConstMetric(descLoopBusy, prometheus.CounterValue, lp.Busy.Seconds(), id)
			ch <- prometheus.MustNewConstMetric(descLoopConns, prometheus.GaugeValue, float64(lp.Connections), id)
		}
	}

	m.mu.Lock()
	ok, failed, lastOK, hash, at := m.reloadsOK, m.reloadsFailed, m.lastOK, m.hash, m.loadedAt
	m.mu.Unlock()
	counter(descReloads, ok, "ok")
	counter(descReloads, failed, "failed")
	if hash != "" {
		ch <- prometheus.MustNewConstMetric(descConfigInfo, prometheus.GaugeValue, 1, hash)
	}
	if !at.IsZero() {
		ch <- prometheus.MustNewConstMetric(descConfigTime, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
	}
	v := 0.0
	if lastOK {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(descConfigOK, prometheus.GaugeValue, v)
}

func isStandardReason(r string) bool {
	for _, s := range standardReasons {
		if s == r {
			return true
		}
	}
	return false
}

// mergeByName sums snapshots that share a name, keeping first-seen order.
func mergeByName(in []ListenerSnapshot) []ListenerSnapshot {
	out := make([]ListenerSnapshot, 0, len(in))
	index := make(map[string]int, len(in))
	for _, s := range in {
		if i, ok := index[s.Name]; ok {
			out[i] = out[i].Add(s)
			continue
		}
		index[s.Name] = len(out)
		out = append(out, s)
	}
	return out
}
