listener "tcp-with-mode" {
  address = "tcp://127.0.0.1:1"
  module  = "test-echo"
  mode    = "0660"
}
listener "fd-with-user" {
  address = "fd://web"
  module  = "test-echo"
  user    = "netd"
  group   = "netd"
}
listener "mode-a-number" {
  address = "unix:///run/netd/a.sock"
  module  = "test-echo"
  mode    = 0660
}
listener "mode-not-octal" {
  address = "unix:///run/netd/b.sock"
  module  = "test-echo"
  mode    = "0968"
}
listener "mode-setuid" {
  address = "unix:///run/netd/c.sock"
  module  = "test-echo"
  mode    = "4660"
}
listener "mode-read-only" {
  address = "unix:///run/netd/d.sock"
  module  = "test-echo"
  mode    = "0444"
}
listener "empty-owner" {
  address = "unix:///run/netd/e.sock"
  module  = "test-echo"
  user    = ""
  group   = 7
}
