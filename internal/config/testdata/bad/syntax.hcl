listener "echo" {
  address = "tcp://127.0.0.1:8888"
  module  = "test-echo
}
