# An attribute set twice does not hide the other problems of the file.
loops = 1
loops = 2
listener "a" {
  address = "tcp://:1"
  address = "tcp://:2"
  module  = "test-echo"
}
log {
  level  = "loud"
  colour = true
}
