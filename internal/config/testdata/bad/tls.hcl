listener "missing-file" {
  address = "tcp://127.0.0.1:1"
  module  = "test-echo"
  tls {
    cert_file = "missing.pem"
    key_file  = "missing-key.pem"
  }
}

listener "datagrams" {
  address = "udp://127.0.0.1:1"
  module  = "test-echo"
  tls {
    cert_file = "missing.pem"
    key_file  = "missing-key.pem"
  }
}

listener "settings" {
  address = "tcp://127.0.0.1:2"
  module  = "test-echo"
  tls {
    cert_fil          = "a.pem"
    min_version       = 1.4
    alpn              = ["h2", "", 3]
    handshake_timeout = "-1s"
  }
}

listener "twice" {
  address = "tcp://127.0.0.1:3"
  module  = "test-echo"
  tls {
    cert_file = "missing.pem"
    key_file  = "missing-key.pem"
  }
  tls {
    cert_file = "b.pem"
  }
}
