listener "x" {
  address = "udp://127.0.0.1:7"
  module  = "test-stream"
}
