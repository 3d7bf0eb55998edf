module github.com/netd/netd/bench/peers/stdlib

go 1.26.8
