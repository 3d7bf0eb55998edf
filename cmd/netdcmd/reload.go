package netdcmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netd/netd/internal/config"
)

func newReloadCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "reload -c FILE",
		Short: "Make the daemon that runs FILE reload it, as SIGHUP does",
		Long:  "reload asks the daemon running FILE to re-read it, through the admin endpoint FILE names (admin.address: host:port or unix:///path), which must allow it (admin.reload: true). It exits 1 when FILE has no admin endpoint or does not allow reloads there, when no daemon answers there, or when the daemon rejects the new config.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("reload needs -c FILE")}
			}
			cfg, err := config.LoadEnv(file, config.Env{})
			if err != nil {
				return printConfigError(cmd.ErrOrStderr(), err)
			}
			if cfg.Admin == nil || cfg.Admin.Address == "" {
				return fmt.Errorf("%s has no admin address; send SIGHUP to the daemon instead", file)
			}
			if !cfg.Admin.Reload {
				return fmt.Errorf("%s: reload through the admin endpoint is disabled (admin.reload is not true); set admin.reload: true, or send SIGHUP to the daemon instead", file)
			}
			return postReload(cmd.OutOrStdout(), cfg.Admin)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "the config file the daemon runs")
	return cmd
}

// postReload sends POST /-/reload to the admin endpoint a, over TCP or
// over its unix socket.
func postReload(out io.Writer, a *config.Admin) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	address, url := a.Address, "http://"+a.Address+"/-/reload"
	client := &http.Client{}
	if a.Addr.Scheme == "unix" {
		url = "http://localhost/-/reload"
		client.Transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", a.Addr.Path)
			},
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("no daemon answers at %s: %w", address, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload rejected by the daemon at %s: %s", address, msg)
	}
	fmt.Fprintf(out, "%s: %s\n", address, msg)
	return nil
}
