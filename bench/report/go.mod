module github.com/netd/netd/bench/report

go 1.26.8
