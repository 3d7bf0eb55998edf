# TLS settings as HCL lets one write them: min_version as a number, an
# absent alpn, defaults for the rest; on a unix socket too.
listener "tls" {
  address = "tcp://127.0.0.1:8443"
  module  = "test-echo"
  tls {
    cert_file   = "tls/server.pem"
    key_file    = "tls/server-key.pem"
    min_version = 1.2
  }
}

listener "tls-unix" {
  address = "unix:///run/netd/tls.sock"
  module  = "test-echo"
  tls {
    cert_file = "tls/server.pem"
    key_file  = "tls/server-key.pem"
    alpn      = ["netd"]
  }
}
