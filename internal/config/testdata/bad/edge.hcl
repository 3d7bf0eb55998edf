listener "bad-proxy" {
  address = "tcp://127.0.0.1:1"
  module  = "test-echo"
  proxy_protocol {
    mode    = "sometimes"
    trusted = ["10.0.0.0/33", 7]
    timeout = "-1s"
    extra   = 1
  }
}

listener "no-trust" {
  address = "tcp://127.0.0.1:2"
  module  = "test-echo"
  proxy_protocol {
    mode    = "require"
    trusted = []
  }
}

listener "unix" {
  address        = "unix:///tmp/netd-edge.sock"
  module         = "test-echo"
  allow          = ["127.0.0.1"]
  max_per_source = 2
  proxy_protocol {
    mode    = "require"
    trusted = ["127.0.0.1"]
  }
}

listener "udp" {
  address           = "udp://127.0.0.1:7"
  module            = "test-echo"
  max_per_source    = 2
  access_log        = true
  udp_amplification = "sometimes"
}
