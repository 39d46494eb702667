package pipeline

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// serveBehindProxy serves a worker of one event, "echo", with cfg, on a
// clock that stands still (so that no check comes back during the test),
// and in front of it a testutil.ForwardingProxy. It returns the URLs of
// the worker and of the proxy, and the count of the event's runs.
func serveBehindProxy(t *testing.T, cfg WorkerConfig) (worker, proxy string, runs *atomic.Int64) {
	t.Helper()
	runs = new(atomic.Int64)
	w, err := NewWorker(cfg, Func("echo", func(ctx context.Context, in any) (any, error) { runs.Add(1); return in, nil }))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w.now = func() time.Time { return start }
	ws := httptest.NewServer(w)
	t.Cleanup(ws.Close)
	return ws.URL + DefaultPath, testutil.ForwardingProxy(t, ws.URL) + DefaultPath, runs
}

// callAs posts a call of "echo" to target with the bearer token token, as
// the client at address client (through the proxy of serveBehindProxy)
// with the further headers hdr (name, value, ...), through hc, and
// returns the status.
func callAs(t *testing.T, hc *http.Client, target, client, token string, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, strings.NewReader(`{"event":"echo","input":1}`))
	if err != nil {
		t.Fatal(err)
	}
	return testutil.StatusAs(t, hc, req, client, token, hdr...)
}

// TestWorkerTrustedProxies checks, through a real reverse proxy on
// 127.0.0.1, that with TrustedProxies naming it a guesser behind it locks
// out only its own forwarded address, even if it forges X-Forwarded-For
// entries; that a caller that reaches the worker directly, not from a
// trusted proxy, is known by its own address, whatever X-Forwarded-For it
// sends; and that without TrustedProxies all the proxy's callers share its
// budget.
func TestWorkerTrustedProxies(t *testing.T) {
	const token = "s3cret-token"
	const guesser, other = "198.51.100.7", "203.0.113.9"
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)

	t.Run("trusted", func(t *testing.T) {
		worker, proxy, runs := serveBehindProxy(t, WorkerConfig{Token: telemetry.NewSecret(token),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		for i := range guess.Max {
			if got := callAs(t, hc, proxy, guesser, fmt.Sprintf("guess-%d", i), "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i)); got != http.StatusUnauthorized {
				t.Fatalf("wrong token %d through the proxy: got %d, want 401", i+1, got)
			}
		}
		if got := callAs(t, hc, proxy, guesser, token); got != http.StatusTooManyRequests {
			t.Errorf("the guesser's right token after %d wrong ones: got %d, want 429", guess.Max, got)
		}
		if got := callAs(t, hc, proxy, guesser, token, "X-Forwarded-For", other); got != http.StatusTooManyRequests {
			t.Errorf("the guesser claiming to be %s: got %d, want 429", other, got)
		}
		if got := callAs(t, hc, proxy, other, token); got != http.StatusOK {
			t.Errorf("another caller through the proxy with the right token: got %d, want 200", got)
		}

		// A caller that reaches the worker directly from 127.0.0.2, which
		// is not a trusted proxy: its X-Forwarded-For is not read, so that
		// claiming to be another caller locks out itself, not that one.
		direct := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
		t.Cleanup(direct.CloseIdleConnections)
		for i := range guess.Max {
			if got := callAs(t, direct, worker, "", fmt.Sprintf("guess-%d", i), "X-Forwarded-For", other); got != http.StatusUnauthorized {
				t.Fatalf("direct wrong token %d: got %d, want 401", i+1, got)
			}
		}
		if got := callAs(t, direct, worker, "", token, "X-Forwarded-For", other); got != http.StatusTooManyRequests {
			t.Errorf("direct right token after %d wrong ones, claiming to be %s: got %d, want 429", guess.Max, other, got)
		}
		if got := callAs(t, hc, proxy, other, token); got != http.StatusOK {
			t.Errorf("%s through the proxy after a direct caller claimed its address: got %d, want 200", other, got)
		}
		if got := runs.Load(); got != 2 {
			t.Errorf("the event ran %d times, want 2: for the right tokens checked only", got)
		}
	})

	t.Run("not trusted", func(t *testing.T) {
		_, proxy, _ := serveBehindProxy(t, WorkerConfig{Token: telemetry.NewSecret(token)})
		for i := range guess.Max {
			if got := callAs(t, hc, proxy, guesser, fmt.Sprintf("guess-%d", i)); got != http.StatusUnauthorized {
				t.Fatalf("wrong token %d through the proxy: got %d, want 401", i+1, got)
			}
		}
		if got := callAs(t, hc, proxy, other, token); got != http.StatusTooManyRequests {
			t.Errorf("another caller through the proxy, TrustedProxies nil: got %d, want 429: the proxy's callers share its budget", got)
		}
	})

	t.Run("invalid prefix", func(t *testing.T) {
		_, err := NewWorker(WorkerConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}})
		if want := "pipeline: worker: TrustedProxies[1] is not a valid prefix"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewWorker with a zero prefix: got %v, want %q", err, want)
		}
	})
}
