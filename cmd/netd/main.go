// Command netd is the network daemon with netd's standard modules. To
// build a netd with your own module too, copy this file and add one import
// line for your module's package.
package main

import (
	"github.com/netd/netd/cmd/netdcmd"
	_ "github.com/netd/netd/pkg/modules/standard"
)

func main() {
	netdcmd.Main()
}
