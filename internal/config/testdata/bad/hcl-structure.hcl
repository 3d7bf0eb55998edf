log = "debug"
listener "a" "b" {
  address      = "tcp://:1"
  module       = "test-echo"
  idle_timeout = "soon"
}
admin "x" {
  address = "127.0.0.1"
}
