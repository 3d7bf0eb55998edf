# Every key netd knows, with options of every shape. The tests put
# certificates in tls/ beside a copy of this file.
log {
  level  = "debug"
  format = "json"
}
loops            = 4
shutdown_timeout = "30s"
drain_delay      = "5s"
max_connections  = 50000
user             = "netd"
group            = "netd"
access_log       = true

admin {
  address = "unix:///run/netd/admin.sock"
  mode    = "0660"
  user    = "netd"
  group   = "adm"
  reload  = true
  pprof   = true
}

listener "echo" {
  address         = "tcp://127.0.0.1:8888"
  module          = "test-echo"
  max_connections = 10000
  idle_timeout    = "5m"
  high_watermark  = 4194304
  low_watermark   = 1048576
  proxy_protocol {
    mode    = "optional"
    trusted = ["10.0.0.0/8", "::1"]
    timeout = "2s"
  }
  allow          = ["0.0.0.0/0", "::/0"]
  deny           = ["192.0.2.0/24"]
  max_per_source = 100
  rate           = 50
  burst          = 200
  access_log     = false
  tls {
    cert_file         = "tls/server.pem"
    key_file          = "tls/server-key.pem"
    client_ca_file    = "tls/ca.pem"
    min_version       = "1.3"
    alpn              = ["h2", "netd"]
    handshake_timeout = "5s"
  }
  options {
    mode           = "line"
    max_line_bytes = 65536
  }
}

listener "echo6" {
  address      = "tcp6://[::1]:8888"
  module       = "test-echo"
  idle_timeout = 0
}

listener "echo-udp" {
  address           = "udp://:7"
  module            = "test-echo"
  udp_amplification = "allow"
  max_connections   = 0 # explicitly unlimited
  options {
    mode = "raw"
  }
}

listener "local" {
  address = "unix:///run/netd/stream.sock"
  module  = "test-stream"
  mode    = "0660"
  user    = "netd"
  group   = "65534"
  options {
    name    = "local socket"
    count   = -3
    small   = 127
    port    = 65535
    ratio   = 0.25
    timeout = "1m30s"
    enabled = false
    list    = ["a", "b c", ""]
    env = {
      PATH = "/usr/bin"
      LANG = "C.UTF-8"
    }
    ptr = 7
  }
}

listener "activated" {
  address = "fd://web"
  module  = "test-stream"
}

listener "packets" {
  address = "udp4://0.0.0.0:0"
  module  = "test-packet"
}
