admin {
  adress = "127.0.0.1:9900"
}
listener "a" {
  address = "tcp://:1"
  module  = "test-echo"
}
