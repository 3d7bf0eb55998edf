module github.com/netd/netd/bench/peers/tlsstdlib

go 1.26.8
