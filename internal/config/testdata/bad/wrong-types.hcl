loops = "4"
user  = 1000
admin {
  address = "127.0.0.1:9900"
  pprof   = "yes"
}
listener "a" {
  address = "tcp://:1"
  module  = ["test-echo"]
}
