// HCL spelling of yaml-features.yaml.
log {
  level = "warn"
}
user             = null
loops            = 2
shutdown_timeout = 0

listener "a" {
  address = "tcp://localhost:1001"
  module  = "test-echo"
  options {
    mode           = "raw"
    max_line_bytes = 1024
  }
}

listener "b" {
  address = "tcp://localhost:1002"
  module  = "test-echo"
  options {
    mode           = "line"
    max_line_bytes = 1024
  }
}
