shutdown_timeout = "5 minutes"
listener "a" {
  address      = "tcp://:1"
  module       = "test-echo"
  idle_timeout = 300
}
