# netd example: a TCP proxy in front of an echo service, in one daemon.
# Run it:   netd serve -c configs/proxy.hcl
# Try it:   printf 'hello\n' | nc -q1 127.0.0.1 10008
# Its twin, proxy.yaml, describes the same daemon.
log {
  level  = "info"
  format = "text"
}
shutdown_timeout = "10s"

# The upstream: line echo, as any backend would be.
listener "echo-backend" {
  address = "tcp://127.0.0.1:10007"
  module  = "echo"
  options {
    mode = "line"
  }
}

# The proxy: every connection is forwarded to an upstream, both ways,
# half-close carried across. Add more upstreams to balance over them.
listener "echo-proxy" {
  address      = "tcp://127.0.0.1:10008"
  module       = "proxy"
  idle_timeout = "5m"
  options {
    upstreams       = ["tcp://127.0.0.1:10007"]
    balance         = "round_robin" # or least_conn
    connect_timeout = "5s"          # per upstream tried
    fail_timeout    = "10s"         # a failed upstream is skipped this long
  }
}
