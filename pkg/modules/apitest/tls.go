package apitest

import "github.com/netd/netd/pkg/modules/api"

// SetTLS makes the connection report info from TLS, as a connection
// accepted on a TLS listener does; nil (the default) is a plaintext
// connection. Test side: call it before the callback that looks.
func (c *Conn) SetTLS(info *api.TLSInfo) { c.tls = info }

// TLS implements api.Conn.
func (c *Conn) TLS() *api.TLSInfo { return c.tls }
