package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/looptest"
	"github.com/netd/netd/internal/proxyproto"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/proxy"
)

// headerUpstream accepts one connection, reads the PROXY header that
// leads it (framed as netd frames them), then echoes; the header goes to
// got.
func headerUpstream(t *testing.T) (string, <-chan *proxyproto.Header) {
	t.Helper()
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	got := make(chan *proxyproto.Header, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		var buf []byte
		for {
			b, err := r.ReadByte()
			if err != nil {
				got <- nil
				return
			}
			buf = append(buf, b)
			if n, err := proxyproto.Frame(buf); err != nil {
				got <- nil
				return
			} else if n > 0 {
				break
			}
		}
		h, err := proxyproto.Parse(buf)
		if err != nil {
			got <- nil
			return
		}
		got <- h
		_, _ = io.Copy(c, r)
	}()
	return srv.Addr().String(), got
}

// TestSendProxy: with send_proxy, the upstream reads a header naming the
// client and the address it reached, then the client's bytes unchanged.
func TestSendProxy(t *testing.T) {
	for _, tt := range []struct {
		opt     string
		version int
	}{{"v1", 1}, {"v2", 2}} {
		t.Run(tt.opt, func(t *testing.T) {
			upstream, got := headerUpstream(t)
			p := new(proxy.Proxy)
			if err := apitest.Provision(t, p, "tcp", "upstreams: [tcp://"+upstream+"]\nsend_proxy: "+tt.opt); err != nil {
				t.Fatal(err)
			}
			l := looptest.Serve(t, 1, loop.ListenerSpec{Name: "p", Network: "tcp", Address: "127.0.0.1:0", Module: p})
			c, err := net.DialTimeout("tcp", strings.TrimPrefix(l.Addr(), "tcp://"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "through\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "through\n" {
				t.Fatalf("echo %q, %v", line, err)
			}
			h := <-got
			if h == nil {
				t.Fatal("the upstream read no valid header")
			}
			wantSrc := netip.MustParseAddrPort(c.LocalAddr().String())
			wantDst := netip.MustParseAddrPort(c.RemoteAddr().String())
			if h.Version != tt.version || h.Local || h.Source != wantSrc || h.Destination != wantDst {
				t.Errorf("header %+v, want v%d %s -> %s", h, tt.version, wantSrc, wantDst)
			}
		})
	}
}

func TestSendProxyOption(t *testing.T) {
	err := apitest.Provision(t, new(proxy.Proxy), "tcp", "upstreams: [tcp://127.0.0.1:1]\nsend_proxy: v3")
	if err == nil || !strings.Contains(err.Error(), "send_proxy") || !strings.Contains(err.Error(), "v3") {
		t.Errorf("send_proxy: v3: %v", err)
	}
}
