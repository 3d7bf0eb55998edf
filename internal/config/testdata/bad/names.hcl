listener "my echo" {
  address = "tcp://:1"
  module  = "test-echo"
  options {
    mode = "lines"
  }
}
listener "" {
  address = "tcp://:2"
  module  = "test-echo"
}
