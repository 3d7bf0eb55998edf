listener "echo" {
  address = "tcp://127.0.0.1:8888"
  module  = "test-echo"
  options {
    max_line_bytes = "abc"
  }
}
listener "stream" {
  address = "tcp://127.0.0.1:8889"
  module  = "test-stream"
  options {
    small = 128
    list  = ["a", 2, ["b"]]
    env = {
      A = "b"
      B = 1
    }
  }
}
