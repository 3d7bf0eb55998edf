# drain_delay is a duration that is not negative.
drain_delay = "-5s"
shutdown_timout = "5s"
listener "a" {
  address = "tcp://:1"
  module  = "test-echo"
}
