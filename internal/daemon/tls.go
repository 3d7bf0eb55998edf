package daemon

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/netd/netd/internal/config"
	"github.com/netd/netd/pkg/loop"
)

// tlsCerts is the TLS configuration of one running listener, which a
// reload swaps: new handshakes use the configuration loaded last, while
// established connections go on with the one they were made with.
//
// The loop shares one *tls.Config, base, between every handshake of the
// listener, and base hands each handshake the current configuration
// (GetConfigForClient). Session tickets are sealed with base's keys, which
// crypto/tls makes and rotates itself, so a ticket issued before a
// reload still resumes after it.
type tlsCerts struct {
	base *tls.Config
	cur  atomic.Pointer[tls.Config]
}

func newTLSCerts(server *tls.Config) *tlsCerts {
	c := &tlsCerts{}
	c.cur.Store(server)
	c.base = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.cur.Load(), nil },
	}
	return c
}

// swap makes new handshakes use server.
func (c *tlsCerts) swap(server *tls.Config) { c.cur.Store(server) }

// tlsSpec is the loop's TLS spec of l, nil for plaintext, and the
// certificates it serves, which the caller keeps with the running
// listener (nextCerts) so that a reload can swap them.
func (d *Daemon) tlsSpec(l *config.Listener) *loop.TLSSpec {
	if l.TLS == nil || l.TLS.Server == nil {
		return nil
	}
	certs := newTLSCerts(l.TLS.Server)
	if d.nextCerts == nil {
		d.nextCerts = map[string]*tlsCerts{}
	}
	d.nextCerts[l.Name] = certs
	return &loop.TLSSpec{Config: certs.base, HandshakeTimeout: l.TLS.HandshakeTimeout}
}

// keepCerts hands r the certificates made for its spec, and forgets the
// others. Caller holds reloadMu, or is start.
func (d *Daemon) keepCerts(r *runningListener) {
	r.certs = d.nextCerts[r.cfg.Name]
	delete(d.nextCerts, r.cfg.Name)
}

// swapCerts gives a listener that a reload leaves alone the certificates
// the reload read again, and logs which it serves now.
func (d *Daemon) swapCerts(r *runningListener, next config.Listener) {
	if r.certs == nil || next.TLS == nil || next.TLS.Server == nil {
		return
	}
	r.certs.swap(next.TLS.Server)
	r.cfg.TLS = next.TLS
	kv := []any{"listener", r.cfg.Name}
	if certs := next.TLS.Server.Certificates; len(certs) > 0 && certs[0].Leaf != nil {
		kv = append(kv, "serial", certs[0].Leaf.SerialNumber.String(), "not_after", certs[0].Leaf.NotAfter.UTC())
	}
	d.log.Info("reload: TLS certificate re-read", kv...)
}
