package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/guess"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestProxyListSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"IPv4 address", []string{"127.0.0.1"}, "127.0.0.1/32"},
		{"IPv6 address", []string{"::1"}, "::1/128"},
		{"IPv4 prefix", []string{"10.0.0.0/8"}, "10.0.0.0/8"},
		{"host bits dropped", []string{"10.1.2.3/8"}, "10.0.0.0/8"},
		{"IPv6 prefix", []string{"fd00::/8"}, "fd00::/8"},
		{"repeated", []string{"127.0.0.1", "192.0.2.0/24", "::1"}, "127.0.0.1/32,192.0.2.0/24,::1/128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p proxyList
			for _, a := range tc.args {
				if err := p.Set(a); err != nil {
					t.Fatalf("Set(%q): %v", a, err)
				}
			}
			if got := p.String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	for _, in := range []string{"", "nowhere", "10.0.0.0/33", "10.0.0.0/", "/8", "::1/129", "256.0.0.1", "fe80::1%eth0", "127.0.0.1:80"} {
		var p proxyList
		if err := p.Set(in); err == nil || !strings.Contains(err.Error(), "CIDR prefix such as 10.0.0.0/8") {
			t.Errorf("Set(%q): got %v, want an error saying what is expected", in, err)
		}
		if len(p) != 0 {
			t.Errorf("Set(%q) added %v", in, p)
		}
	}
	if got := (*proxyList)(nil).String(); got != "" {
		t.Errorf("String of nil: got %q, want empty", got)
	}
}

// TestTrustedProxyFlagErrors checks that a bad --trusted-proxy, and demo's
// without --ui, are usage errors (exit 2) that say what is wrong.
func TestTrustedProxyFlagErrors(t *testing.T) {
	t.Setenv(uiTokenEnv, "")
	t.Setenv(workerTokenEnv, "")
	for _, tc := range []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"worker bad value", []string{"worker", "--addr", "127.0.0.1:0", "--trusted-proxy", "nowhere"},
			`eventpipeline worker: invalid value "nowhere" for flag -trusted-proxy: want an IP address (without a zone) or a CIDR prefix such as 10.0.0.0/8`},
		{"worker prefix too long", []string{"worker", "--addr", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/33"},
			`invalid value "10.0.0.0/33" for flag -trusted-proxy: want an IP address or a CIDR prefix`},
		{"demo bad value", []string{"demo", "--ui", "127.0.0.1:0", "--trusted-proxy", "fe80::1%eth0"},
			`eventpipeline demo: invalid value "fe80::1%eth0" for flag -trusted-proxy`},
		{"demo without ui", []string{"demo", "--trusted-proxy", "127.0.0.1"},
			"eventpipeline demo: --trusted-proxy needs --ui: it names the reverse proxies in front of the web view\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tc.args...)
			if code != exitUsage {
				t.Errorf("got exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			contains(t, "stderr", stderr, tc.wantStderr, "--help")
			if stdout != "" {
				t.Errorf("got stdout %q, want none", stdout)
			}
		})
	}
}

// TestTrustedProxyDemoFlag checks that demo keeps the --trusted-proxy
// values for the web view.
func TestTrustedProxyDemoFlag(t *testing.T) {
	t.Setenv(uiTokenEnv, "")
	f, err := parseDemoFlags([]string{"--ui", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1", "--trusted-proxy=10.0.0.0/8"}, io.Discard)
	if want := "127.0.0.1/32,10.0.0.0/8"; err != nil || f.uiProxies.String() != want {
		t.Errorf("got %v, %v; want %s", f.uiProxies.String(), err, want)
	}
}

// lockOutThenOther sends wrong tokens through proxy as the client guesser
// until one is answered 429 (its budget is empty), then the right token as
// the client other, and returns the status of that last request. newReq
// returns a new request to the server through proxy.
func lockOutThenOther(t *testing.T, newReq func() *http.Request, token string) int {
	t.Helper()
	const guesser, other = "198.51.100.7", "203.0.113.9"
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	// The budget gets one check back every few seconds: keep guessing
	// until it is empty, however slowly the requests go.
	locked := false
	for i := 0; i < 20*guess.Max && !locked; i++ {
		// The forged entry, left of the one the proxy appends, is not believed.
		switch got := testutil.StatusAs(t, hc, newReq(), guesser, fmt.Sprintf("guess-%d", i), "X-Forwarded-For", other); got {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			locked = true
		default:
			t.Fatalf("wrong token %d through the proxy: got %d, want 401 or 429", i+1, got)
		}
	}
	if !locked {
		t.Fatalf("%d wrong tokens through the proxy, none answered 429", 20*guess.Max)
	}
	return testutil.StatusAs(t, hc, newReq(), other, token)
}

// TestWorkerTrustedProxy starts worker --trusted-proxy 127.0.0.1 behind a
// reverse proxy on 127.0.0.1 that appends the client's address to
// X-Forwarded-For: a guesser behind the proxy empties its own budget of
// wrong tokens, not that of another client of the proxy, whose right token
// still runs the event. Without the flag, they would share the proxy's.
func TestWorkerTrustedProxy(t *testing.T) {
	const token = "s3cret-token"
	t.Setenv(workerTokenEnv, token)
	addr := startWorkerCmd(t, "--addr", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1")
	proxy := testutil.ForwardingProxy(t, "http://"+addr)
	newReq := func() *http.Request {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, proxy+pipeline.DefaultPath,
			strings.NewReader(`{"event":"geocode","input":null}`))
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	if got := lockOutThenOther(t, newReq, token); got != http.StatusOK {
		t.Errorf("another client through the proxy with the right token: got %d, want 200", got)
	}
}

// TestUITrustedProxy serves the web view as demo --ui --trusted-proxy
// 127.0.0.1 does (startUI with the flag's value), with a token, behind a
// reverse proxy on 127.0.0.1: as for the worker, a guesser behind the
// proxy locks out only itself.
func TestUITrustedProxy(t *testing.T) {
	const token = "let-me-in"
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	var proxies proxyList
	if err := proxies.Set("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	u, err := startUI("127.0.0.1:0", rec, telemetry.NewSecret(token), proxies, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.stop)
	proxy := testutil.ForwardingProxy(t, strings.TrimSuffix(u.url, "/"))
	newReq := func() *http.Request {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, proxy+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	if got := lockOutThenOther(t, newReq, token); got != http.StatusOK {
		t.Errorf("another client through the proxy with the right token: got %d, want 200; stderr:\n%s", got, errOut.String())
	}
}
