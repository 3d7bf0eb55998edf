listener "a" {
  module = "test-echo"
}
listener "b" {
  address = "tcp://:2"
}
listener {
  address         = "tcp://:3"
  module          = "test-echo"
  max_connections = -1
}
