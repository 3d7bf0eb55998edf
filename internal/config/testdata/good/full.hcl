# Every key netd knows, with options of every shape.
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

admin {
  address = "127.0.0.1:9900"
  pprof   = true
}

listener "echo" {
  address         = "tcp://127.0.0.1:8888"
  module          = "test-echo"
  max_connections = 10000
  idle_timeout    = "5m"
  high_watermark  = 4194304
  low_watermark   = 1048576
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
  address         = "udp://:7"
  module          = "test-echo"
  max_connections = 0 # explicitly unlimited
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
