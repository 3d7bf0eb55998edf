listener "no-port" {
  address = "tcp://1.2.3.4"
  module  = "test-echo"
}
listener "scheme" {
  address = "http://1.2.3.4:80"
  module  = "test-echo"
}
listener "relative" {
  address = "unix://run/netd.sock"
  module  = "test-echo"
}
listener "number" {
  address = 8080
  module  = "test-echo"
}
