log {
  level  = "INFO"
  format = "xml"
}
log {
  level = "info"
}
listener "a" {
  address = "tcp://:1"
  module  = "test-echo"
}
