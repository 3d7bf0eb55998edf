package admin

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ListenerID names a listener as far as its series go: its name and the
// module it runs. A reload that keeps both keeps the listener's series
// and its counts go on; a listener that a reload removes, or whose name
// it gives to another module, has its series removed.
type ListenerID struct{ Listener, Module string }

// ListenerRegisterer returns the Registerer for the collectors of the
// module instance that serves listener (what becomes api.Setup.Metrics,
// once config has added the module and listener labels). It registers in
// the Registry and remembers what it registered, so that RetainListeners
// can unregister everything the listener registered at once. The same
// listener and module get the same Registerer for as long as they are
// retained: the instance a reload makes carries on with the collectors its
// predecessor registered (api.RegisterMetric), so they must stay on its
// record.
func (m *Metrics) ListenerRegisterer(module, listener string) prometheus.Registerer {
	id := ListenerID{Listener: listener, Module: module}
	m.lmu.Lock()
	defer m.lmu.Unlock()
	if r := m.byListener[id]; r != nil {
		return r
	}
	r := &listenerRegisterer{reg: m.reg, registered: map[string]prometheus.Collector{}}
	m.byListener[id] = r
	return r
}

// RetainListeners unregisters what every listener that keep does not name
// registered through ListenerRegisterer, and forgets it: the daemon calls
// it after each reload with the listeners it runs, which drops both the
// listeners the reload removed (or gave another module) and, when the
// reload failed, the ones it provisioned for nothing. Their series leave
// /metrics at once. An instance still serving connections of a removed
// listener goes on counting, in collectors nobody serves any more.
func (m *Metrics) RetainListeners(keep []ListenerID) {
	want := make(map[ListenerID]bool, len(keep))
	for _, id := range keep {
		want[id] = true
	}
	m.lmu.Lock()
	defer m.lmu.Unlock()
	for id, r := range m.byListener {
		if !want[id] {
			r.unregisterAll()
			delete(m.byListener, id)
		}
	}
}

// listenerRegisterer is one listener's Registerer: the Registry, with a
// record of what went in through it.
type listenerRegisterer struct {
	reg prometheus.Registerer

	mu sync.Mutex
	// registered is keyed by the collector's descriptors, which is what
	// identifies a registration to the Registry: the wrapping Registerer
	// that adds the labels hands over a new wrapper on each call, so the
	// collector passed to Unregister is not the one that was registered.
	registered map[string]prometheus.Collector
}

var _ prometheus.Registerer = (*listenerRegisterer)(nil)

// Register registers c in the Registry and records it. Its error is the
// Registry's, unwrapped: an AlreadyRegisteredError is how a reloaded
// instance finds its predecessor's collector (api.RegisterMetric), and
// modules that register by hand test for it by type assertion.
func (r *listenerRegisterer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	// A collector that describes nothing is "unchecked": the Registry can
	// never unregister it, so there is nothing to record.
	if key := collectorKey(c); key != "" {
		r.mu.Lock()
		r.registered[key] = c
		r.mu.Unlock()
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *listenerRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *listenerRegisterer) Unregister(c prometheus.Collector) bool {
	if !r.reg.Unregister(c) {
		return false
	}
	key := collectorKey(c)
	r.mu.Lock()
	delete(r.registered, key)
	r.mu.Unlock()
	return true
}

// unregisterAll unregisters every collector on the record.
func (r *listenerRegisterer) unregisterAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, c := range r.registered {
		r.reg.Unregister(c)
		delete(r.registered, key)
	}
}

// collectorKey identifies a collector by its descriptors, sorted; "" for
// one that describes none.
func collectorKey(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var descs []string
	for d := range ch {
		descs = append(descs, d.String())
	}
	sort.Strings(descs)
	return strings.Join(descs, "\n")
}
