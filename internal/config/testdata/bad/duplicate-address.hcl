listener "a" {
  address = "tcp://[::1]:8888"
  module  = "test-echo"
}
listener "b" {
  address = "tcp://[0:0::1]:8888"
  module  = "test-echo"
}
