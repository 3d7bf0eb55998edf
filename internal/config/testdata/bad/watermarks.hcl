listener "low-above-high" {
  address        = "tcp://127.0.0.1:1"
  module         = "test-echo"
  high_watermark = 65536
  low_watermark  = 65536
}

listener "low-above-default" {
  address       = "unix:///tmp/netd-w.sock"
  module        = "test-echo"
  low_watermark = 2097152
}

listener "datagrams" {
  address        = "udp://127.0.0.1:1"
  module         = "test-echo"
  high_watermark = 65536
}

listener "negative" {
  address        = "tcp://127.0.0.1:2"
  module         = "test-echo"
  high_watermark = -1
}
