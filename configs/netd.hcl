# netd example: four echo listeners on one event loop set.
# Run it:   netd serve -c configs/netd.hcl
# Check it: netd validate -c configs/netd.hcl
# Its twin, netd.yaml, describes the same daemon.
log {
  level  = "info"
  format = "text"
}
loops            = 0
shutdown_timeout = "10s"
drain_delay      = "0s" # on SIGTERM, /readyz says 503 this long before accepting stops
max_connections  = 20000

# /metrics, /healthz, /readyz. A unix socket, so that only who may open
# the file reaches it; its directory must exist and must not be
# world-writable (README: Operations).
admin {
  address = "unix:///run/netd/admin.sock" # or 127.0.0.1:9900 (then only Host: localhost or a loopback IP is served)
  mode    = "0660"                        # the socket file's permission bits (systemd's SocketMode); default "0600"
  # user  = "netd"                        # the socket file's owner and group (SocketUser, SocketGroup)
  # group = "adm"
  reload = false # true: POST /-/reload and `netd reload -c` may reload
  pprof  = false # true: /debug/pprof/
}

# Line echo, as the original Python server: whole lines come back.
listener "echo-line" {
  address         = "tcp://127.0.0.1:7007"
  module          = "echo"
  max_connections = 10000 # the default when left out; 0 = unlimited
  idle_timeout    = "5m"
  options {
    mode           = "line"
    max_line_bytes = 65536
  }
}

# RFC 862 echo: every byte back as soon as it arrives.
listener "echo-raw" {
  address = "tcp://127.0.0.1:7008"
  module  = "echo"
  options {
    mode = "raw"
  }
}

# Line echo on a unix socket, for local clients. Its directory must be
# writable by netd and by no one else (never /tmp): create it with
#   install -d -m 0755 -o root -g root /run/netd
# (or RuntimeDirectory=netd under systemd; with user set, make netd's
# user its owner so that a reload can remove and add sockets there).
listener "echo-unix" {
  address      = "unix:///run/netd/echo.sock"
  module       = "echo"
  idle_timeout = "1m"
  mode         = "0660" # the default: netd's user and group may connect
  # user       = "netd"  # owner of the socket file (name or id)
  # group      = "netd-clients"
}

# RFC 862 over UDP: each datagram back to its sender.
listener "echo-udp" {
  address = "udp://127.0.0.1:7007"
  module  = "echo"
}
