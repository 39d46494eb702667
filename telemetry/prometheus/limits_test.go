package prometheus_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// These tests use real sockets with small server timeouts and assert that
// the server closes the connection (the client reads EOF or a reset). They
// set no deadline of their own: a server that kept the connection would
// hang the test until go test's -timeout.

// servedPublisher returns a serving Publisher with cfg, closed at the end
// of the test.
func servedPublisher(t *testing.T, cfg prometheus.Config) *prometheus.Publisher {
	t.Helper()
	cfg.Listener = listen(t)
	cfg.Logger = quiet
	p, err := prometheus.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// waitClosed reads from c until the server closes it, and fails the test
// if it sends anything but (at most) an error response.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 4") {
		t.Errorf("got %q before the close, want nothing or an error response", b)
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	p := servedPublisher(t, prometheus.Config{IdleTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One keep-alive scrape, then nothing.
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("got status %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("got %d bytes, %v; want the idle connection closed (EOF)", n, err)
	}
}

func TestSilentConnectionClosed(t *testing.T) {
	p := servedPublisher(t, prometheus.Config{ReadHeaderTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitClosed(t, c) // sends nothing at all
}

// TestDribblingConnectionClosed sends the headers of a request one byte at
// a time, forever: the server closes the connection at its header timeout,
// which the trickle does not extend.
func TestDribblingConnectionClosed(t *testing.T) {
	p := servedPublisher(t, prometheus.Config{ReadHeaderTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
			return
		}
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(c, "X"); err != nil {
				return // closed by the server
			}
		}
	})
	waitClosed(t, c)
	close(stop)
	wg.Wait()
}

func TestOversizedHeaderRejected(t *testing.T) {
	p := servedPublisher(t, prometheus.Config{MaxHeaderBytes: 1 << 10})
	req, err := http.NewRequest(http.MethodGet, p.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got status %d, want 431", resp.StatusCode)
	}
}

// blocking is a collector whose Collect waits until release is closed,
// telling entered each time it starts.
type blocking struct {
	entered chan struct{}
	release chan struct{}
	desc    *prom.Desc
}

func (b *blocking) Describe(ch chan<- *prom.Desc) { ch <- b.desc }
func (b *blocking) Collect(ch chan<- prom.Metric) {
	b.entered <- struct{}{}
	<-b.release
	ch <- prom.MustNewConstMetric(b.desc, prom.GaugeValue, 1)
}

// TestConcurrentScrapesCapped holds MaxConcurrentScrapes scrapes in
// progress and checks that one more is answered 503 at once, and that
// scrapes work again once those end.
func TestConcurrentScrapesCapped(t *testing.T) {
	reg := prom.NewRegistry()
	b := &blocking{entered: make(chan struct{}), release: make(chan struct{}),
		desc: prom.NewDesc("app_slow", "A collector that takes its time.", nil, nil)}
	reg.MustRegister(b)
	const limit = 2
	p := servedPublisher(t, prometheus.Config{Registry: reg, Serve: true, MaxConcurrentScrapes: limit})
	var wg sync.WaitGroup
	codes := make([]int, limit)
	for i := range limit {
		wg.Go(func() { codes[i], _, _ = get(p.URL()) })
		<-b.entered
	}
	code, _, err := get(p.URL())
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("scrape %d while %d are in progress: got %d, %v; want 503", limit+1, limit, code, err)
	}
	close(b.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("scrape %d: got %d, want 200", i, c)
		}
	}
	go func() { <-b.entered }()
	if code, _, err := get(p.URL()); err != nil || code != http.StatusOK {
		t.Errorf("scrape after the others ended: got %d, %v; want 200", code, err)
	}
}
