# Not octal; the admin socket on a listener's path.
admin {
  address = "unix:///run/netd/a.sock"
  mode    = "0960"
  reload  = "yes"
}
listener "a" {
  address = "unix:///run/netd/a.sock"
  module  = "test-echo"
}
