shutdown_timeout = "5 minutes"
drain_delay      = 5
listener "a" {
  address      = "tcp://:1"
  module       = "test-echo"
  idle_timeout = 300
}
