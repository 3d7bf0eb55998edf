// Package standard is the plugin list: importing it registers every module
// that ships with netd. It is the only place that names them all.
package standard

import (
	_ "github.com/netd/netd/pkg/modules/chargen" // chargen: RFC 864
	_ "github.com/netd/netd/pkg/modules/daytime" // daytime: RFC 867
	_ "github.com/netd/netd/pkg/modules/discard" // discard: RFC 863
	_ "github.com/netd/netd/pkg/modules/echo"    // echo: RFC 862, line and raw
	_ "github.com/netd/netd/pkg/modules/exec"    // exec: a program per connection (inetd's server =)
	_ "github.com/netd/netd/pkg/modules/proxy"   // proxy: TCP and unix forwarding
	_ "github.com/netd/netd/pkg/modules/time"    // time: RFC 868
)
