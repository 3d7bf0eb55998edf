package config

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"time"

	"github.com/netd/netd/internal/tlsconf"
)

// TLS is a listener's tls block: the loop terminates TLS on the listener
// and its module sees plaintext.
type TLS struct {
	// CertFile and KeyFile are the server's certificate (chain) and key,
	// PEM, as the file spells them: a relative path is relative to the
	// config file's directory, so that a config and its certificates
	// move together.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the listener ask every client for a
	// certificate signed by one of its CAs (mutual TLS).
	ClientCAFile string
	// MinVersion is "1.0" to "1.3"; "" is tlsconf.DefaultMinVersion (1.2).
	MinVersion string
	// ALPN is the protocols offered, in order of preference.
	ALPN []string
	// HandshakeTimeout closes a client that has not finished its handshake
	// in time; 0 is the loop's default (loop.DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Server is the configuration Load built from the files, read when the
	// file was loaded: a reload loads the files again.
	Server *tls.Config
}

// tlsMeta is where a listener's tls block and its settings are.
type tlsMeta struct {
	pos  Pos            // the tls key
	at   map[string]Pos // each setting's value
	errs int            // problems found decoding the block
}

// tls decodes a listener's tls block.
func (d *decoder) tls(f *field, what string) *TLS {
	m := &tlsMeta{pos: f.KeyPos, at: map[string]Pos{}}
	d.lm.tls = m
	if f.Val.Kind != kindMap {
		d.errs.add(f.Val.Pos, "%s: want a mapping, got %s", what, f.Val.Describe())
		m.errs++
		return nil
	}
	for _, sf := range f.Val.Fields {
		m.at[sf.Key] = sf.Val.Pos
	}
	before := len(d.errs.errs)
	t := &TLS{}
	ctx := what
	decodeMap(d, tlsKeys, f.Val, t, &ctx, ".", f.KeyPos)
	m.errs = len(d.errs.errs) - before
	return t
}

// tlsVersion decodes min_version, which YAML and HCL let one write as a
// number (1.3) or a string ("1.3").
func (d *decoder) tlsVersion(f *field, what string) string {
	v := f.Val
	if v.Kind != kindString && v.Kind != kindNumber {
		d.errs.add(v.Pos, "%s: want a version such as \"1.2\", got %s", what, v.Describe())
		return ""
	}
	if _, err := tlsconf.ParseVersion(v.Str); err != nil || v.Str == "" {
		d.errs.add(v.Pos, "%s: %q is not a version (want 1.0, 1.1, 1.2 or 1.3)", what, v.Str)
		return ""
	}
	return v.Str
}

// alpn decodes the list of ALPN protocol names.
func (d *decoder) alpn(f *field, what string) []string {
	v := f.Val
	if v.Kind != kindList {
		d.errs.add(v.Pos, "%s: want a list of protocol names, got %s", what, v.Describe())
		return nil
	}
	out := make([]string, 0, len(v.List))
	for _, item := range v.List {
		s := d.string(what+" item", item)
		if item.Kind != kindString {
			continue
		}
		if err := tlsconf.CheckALPN(s); err != nil {
			d.errs.add(item.Pos, "%s: %v", what, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// tlsNetwork reports TLS asked of a udp listener: TLS secures a stream.
func (d *decoder) tlsNetwork(l *Listener, m listenerMeta) {
	if l.TLS != nil && m.addrOK && l.Addr.Network() == "udp" {
		d.errs.add(m.tls.pos, "%s: tls needs a stream listener (tcp or unix); %s is udp", m.ctx, l.Address)
	}
}

// loadTLS reads the files of every tls block that decoded cleanly and
// keeps the server configuration they make. A file that is missing,
// unreadable, expired or does not match its key is reported at the setting
// that names it.
func loadTLS(cfg *Config, metas []listenerMeta, errs *errList) {
	dir := filepath.Dir(cfg.File)
	for i := range cfg.Listeners {
		l, m := &cfg.Listeners[i], metas[i]
		if l.TLS == nil || m.tls == nil || m.tls.errs > 0 || (m.addrOK && l.Addr.Network() == "udp") {
			continue
		}
		t := l.TLS
		server, err := tlsconf.Load(resolve(dir, t.CertFile), resolve(dir, t.KeyFile), resolve(dir, t.ClientCAFile), t.MinVersion, t.ALPN)
		if err != nil {
			pos := m.tls.pos
			var se *tlsconf.Error
			if errors.As(err, &se) {
				if p, ok := m.tls.at[se.Setting]; ok {
					pos = p
				}
			}
			errs.add(pos, "%s: %v", m.ctx, err)
			continue
		}
		t.Server = server
	}
}

// resolve makes a relative path relative to dir, the config file's.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}
