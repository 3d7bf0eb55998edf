# The edge keys: PROXY protocol, access control, the access log and the
# UDP amplification guard.
access_log = true

listener "behind-lb" {
  address = "tcp://127.0.0.1:8080"
  module  = "test-echo"
  proxy_protocol {
    mode    = "require"
    trusted = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]
    timeout = "5s"
  }
  allow          = ["203.0.113.0/24", "::ffff:198.51.100.0/120"]
  deny           = ["203.0.113.7"]
  max_per_source = 10
  rate           = 2.5
  burst          = 20
}

listener "quiet" {
  address    = "tcp://127.0.0.1:8081"
  module     = "test-echo"
  access_log = false
  proxy_protocol {
    mode    = "optional"
    trusted = ["127.0.0.1"]
  }
}

listener "chargen-udp" {
  address           = "udp://127.0.0.1:1900"
  module            = "test-packet"
  rate              = 100
  udp_amplification = "allow"
}

listener "local" {
  address = "unix:///run/netd/edge.sock"
  module  = "test-stream"
}
