package webview

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/guess"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// getAs asks base for the overview with the bearer token token, as the
// client at address client (through a testutil.ForwardingProxy) with the
// further headers hdr (name, value, ...), through hc, and returns the
// status.
func getAs(t *testing.T, hc *http.Client, base, client, token string, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.StatusAs(t, hc, req, client, token, hdr...)
}

// TestTrustedProxies checks, through a real reverse proxy on 127.0.0.1,
// that with TrustedProxies naming it a guesser behind it locks out only
// its own forwarded address, even if it forges X-Forwarded-For entries;
// that a client that reaches the view directly, not from a trusted proxy,
// is known by its own address, whatever X-Forwarded-For it sends; and that
// without TrustedProxies all the proxy's clients share its budget.
func TestTrustedProxies(t *testing.T) {
	const token = "let-me-in"
	const guesser, other = "198.51.100.7", "203.0.113.9"
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)

	t.Run("trusted", func(t *testing.T) {
		f := newFixture(t, Config{Token: telemetry.NewSecret(token),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, newClock())
		proxy := testutil.ForwardingProxy(t, f.srv.URL)
		for i := range guess.Max {
			// The forged entry, left of the one the proxy appends, is not believed.
			if got := getAs(t, hc, proxy, guesser, fmt.Sprintf("guess-%d", i), "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i)); got != http.StatusUnauthorized {
				t.Fatalf("wrong token %d through the proxy: got %d, want 401", i+1, got)
			}
		}
		if got := getAs(t, hc, proxy, guesser, token); got != http.StatusTooManyRequests {
			t.Errorf("the guesser's right token after %d wrong ones: got %d, want 429", guess.Max, got)
		}
		if got := getAs(t, hc, proxy, guesser, token, "X-Forwarded-For", other); got != http.StatusTooManyRequests {
			t.Errorf("the guesser claiming to be %s: got %d, want 429", other, got)
		}
		if got := getAs(t, hc, proxy, other, token); got != http.StatusOK {
			t.Errorf("another client through the proxy with the right token: got %d, want 200", got)
		}

		// A client that reaches the view directly from 127.0.0.2, which is
		// not a trusted proxy: its X-Forwarded-For is not read, so that
		// claiming to be another client locks out itself, not that one.
		direct := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
		t.Cleanup(direct.CloseIdleConnections)
		for i := range guess.Max {
			if got := getAs(t, direct, f.srv.URL, "", fmt.Sprintf("guess-%d", i), "X-Forwarded-For", other); got != http.StatusUnauthorized {
				t.Fatalf("direct wrong token %d: got %d, want 401", i+1, got)
			}
		}
		if got := getAs(t, direct, f.srv.URL, "", token, "X-Forwarded-For", other); got != http.StatusTooManyRequests {
			t.Errorf("direct right token after %d wrong ones, claiming to be %s: got %d, want 429", guess.Max, other, got)
		}
		if got := getAs(t, hc, proxy, other, token); got != http.StatusOK {
			t.Errorf("%s through the proxy after a direct client claimed its address: got %d, want 200", other, got)
		}
	})

	t.Run("not trusted", func(t *testing.T) {
		f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, newClock())
		proxy := testutil.ForwardingProxy(t, f.srv.URL)
		for i := range guess.Max {
			if got := getAs(t, hc, proxy, guesser, fmt.Sprintf("guess-%d", i)); got != http.StatusUnauthorized {
				t.Fatalf("wrong token %d through the proxy: got %d, want 401", i+1, got)
			}
		}
		if got := getAs(t, hc, proxy, other, token); got != http.StatusTooManyRequests {
			t.Errorf("another client through the proxy, TrustedProxies nil: got %d, want 429: the proxy's clients share its budget", got)
		}
	})
}

// TestTrustedProxiesValidated checks that New refuses a prefix that is
// not valid.
func TestTrustedProxiesValidated(t *testing.T) {
	rec, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	_, err = New(rec, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}})
	if want := "webview: TrustedProxies[1] is not a valid prefix"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("New with a zero prefix: got %v, want %q", err, want)
	}
}
