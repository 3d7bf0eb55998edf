package api

// TLSInfo is what a TLS connection negotiated, as Conn.TLS reports it.
// The loop fills it once, when the handshake completes; it does not change
// afterwards, and modules must not modify it.
type TLSInfo struct {
	// Version is the protocol version, a crypto/tls constant such as
	// tls.VersionTLS13; tls.VersionName spells it.
	Version uint16
	// CipherSuite is the negotiated cipher suite, a crypto/tls constant;
	// tls.CipherSuiteName spells it.
	CipherSuite uint16
	// ALPN is the application protocol the peers agreed on; "" when none.
	ALPN string
	// ServerName is the name the client asked for (SNI); "" when none.
	ServerName string
	// PeerSubject is the subject of the client certificate the server
	// verified (mutual TLS), as pkix.Name.String spells it; "" when the
	// client sent none.
	PeerSubject string
	// DidResume reports whether the session was resumed from a ticket.
	DidResume bool
}

// ReasonHandshakeTimeout is the close reason of a TLS connection whose
// client did not finish its handshake within the listener's handshake
// timeout. Modules never see it: a connection reaches its module only
// once its handshake is done.
const ReasonHandshakeTimeout Reason = "handshake_timeout"

// ReasonHandshakeFailed is the close reason of a TLS connection whose
// handshake failed: not TLS, no protocol or cipher in common, a client
// certificate refused, a reset. Modules never see it either.
const ReasonHandshakeFailed Reason = "handshake_failed"
