# netd example: the small inetd services (echo, discard, daytime, chargen,
# time), each over TCP and UDP, as inetd and xinetd serve them internally.
#
# Run it:   netd serve -c configs/inetd.hcl
# Check it: netd validate -c configs/inetd.hcl
# Its twin, inetd.yaml, describes the same daemon.
#
# The ports are the classic ones plus 10000, so that it runs without root:
#   printf 'hi\n' | nc -q1 127.0.0.1 10007      # echo
#   nc 127.0.0.1 10013                          # daytime: 25 NOV 2026 18:52:57 UTC
#   nc 127.0.0.1 10019 | head -3                # chargen
#   nc 127.0.0.1 10037 | od -An -tu1            # time: 4 bytes, seconds since 1900
#   echo | nc -u -w1 127.0.0.1 10013            # daytime over UDP (any datagram)
# For the classic ports (echo 7, discard 9, daytime 13, chargen 19, time 37)
# write :7, :9, :13, :19 and :37 in the addresses below, and start netd as
# root (set user = "nobody" to drop to it once every port is bound) or give
# the binary the capability: setcap cap_net_bind_service=+ep ./netd.
# To serve other hosts, bind 0.0.0.0 instead of 127.0.0.1; mind that the
# UDP services answer anyone (never ports below 1024, though).
log {
  level  = "info"
  format = "text"
}
loops            = 0
shutdown_timeout = "10s"

# RFC 862: every byte comes back.
listener "echo-tcp" {
  address      = "tcp://127.0.0.1:10007"
  module       = "echo"
  idle_timeout = "5m"
  options {
    mode = "raw"
  }
}
listener "echo-udp" {
  address = "udp://127.0.0.1:10007"
  module  = "echo"
}

# RFC 863: everything is read and dropped.
listener "discard-tcp" {
  address      = "tcp://127.0.0.1:10009"
  module       = "discard"
  idle_timeout = "5m"
}
listener "discard-udp" {
  address = "udp://127.0.0.1:10009"
  module  = "discard"
}

# RFC 867: the local date and time as one line, then close.
listener "daytime-tcp" {
  address = "tcp://127.0.0.1:10013"
  module  = "daytime"
}
listener "daytime-udp" {
  address = "udp://127.0.0.1:10013"
  module  = "daytime"
}

# RFC 864: rotating lines of printable ASCII, as fast as the client reads.
listener "chargen-tcp" {
  address         = "tcp://127.0.0.1:10019"
  module          = "chargen"
  max_connections = 100
  idle_timeout    = "5m"
}
listener "chargen-udp" {
  address = "udp://127.0.0.1:10019"
  module  = "chargen"
}

# RFC 868: seconds since 1900 as 4 bytes, big-endian, then close.
listener "time-tcp" {
  address = "tcp://127.0.0.1:10037"
  module  = "time"
}
listener "time-udp" {
  address = "udp://127.0.0.1:10037"
  module  = "time"
}
