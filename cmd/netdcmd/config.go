package netdcmd

import (
	"errors"
	"fmt"
	"io"

	"github.com/netd/netd/internal/config"
)

// printConfigError writes a config error as one line per problem and
// returns an error that tells Run it has been reported. Any other error
// comes back as it is, for Run to report.
func printConfigError(w io.Writer, err error) error {
	var errs config.Errors
	var one *config.Error
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
	case errors.As(err, &one):
		fmt.Fprintln(w, one.Error())
	default:
		return err
	}
	return reportedError{err}
}
