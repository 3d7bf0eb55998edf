# group alone would leave netd root; mode and owner need a unix socket.
group = "netd"
admin {
  address = "127.0.0.1:9900"
  mode    = "0660"
  user    = "netd"
}
listener "a" {
  address = "tcp://:1"
  module  = "test-echo"
}
