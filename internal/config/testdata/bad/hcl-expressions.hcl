loops = var.loops
user  = upper("netd")
listener "a" {
  address = "tcp://:1"
  module  = "test-echo"
  options {
    mode = "raw"
    nested {
      x = 1
    }
  }
  options {
  }
}
