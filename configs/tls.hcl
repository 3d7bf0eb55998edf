# netd example: echo over TLS, terminated by the event loop.
# Make a certificate for a try (a self-signed one, good for 30 days), in
# configs/tls/, since paths are relative to this file's directory:
#   mkdir -p configs/tls && openssl req -x509 -newkey ec \
#     -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
#     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
#     -keyout configs/tls/server-key.pem -out configs/tls/server.pem
# Run it:   netd serve -c configs/tls.hcl
# Try it:   openssl s_client -connect 127.0.0.1:8443 -CAfile configs/tls/server.pem -quiet
# SIGHUP re-reads the certificate: new handshakes use it, open connections go on.
# Its twin, tls.yaml, describes the same daemon.
listener "echo-tls" {
  address      = "tcp://127.0.0.1:8443"
  module       = "echo"
  idle_timeout = "5m"
  tls {
    cert_file = "tls/server.pem"    # PEM: the certificate, then its chain
    key_file  = "tls/server-key.pem" # PEM: its private key
    # client_ca_file = "tls/ca.pem"  # set it to require client certificates (mutual TLS)
    min_version       = "1.2"         # 1.0 | 1.1 | 1.2 | 1.3
    alpn              = ["netd-echo"] # protocols offered; a client that offers others is refused
    handshake_timeout = "10s"         # a client that has not finished its handshake by then is closed
  }
  options {
    mode = "line"
  }
}
