// Command netd-rot13 is netd with its standard modules and the rot13
// example module: netd's own main (cmd/netd/main.go) plus one import.
package main

import (
	"github.com/netd/netd/cmd/netdcmd"
	_ "github.com/netd/netd/pkg/modules/standard"

	_ "example.com/rot13"
)

func main() {
	netdcmd.Main()
}
