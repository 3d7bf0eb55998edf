// Package standard is the plugin list: importing it registers every module
// that ships with netd. It is the only place that names them all.
package standard

import (
	_ "github.com/netd/netd/pkg/modules/echo" // echo: RFC 862, line and raw
)
