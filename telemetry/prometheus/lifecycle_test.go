package prometheus_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// TestListenerReleasedWhenNewPublisherFails checks that NewPublisher closes
// the Listener it was given when it fails, whether the Config is invalid or
// the metrics cannot be registered, and that a failed registration leaves
// nothing registered.
func TestListenerReleasedWhenNewPublisherFails(t *testing.T) {
	t.Run("invalid config", func(t *testing.T) {
		ln := listen(t)
		_, err := prometheus.NewPublisher(prometheus.Config{Listener: ln, Port: -1, Logger: quiet})
		if err == nil {
			t.Fatal("got no error for port -1")
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept on the listener after the failure: got %v, want net.ErrClosed", err)
		}
	})
	t.Run("registration conflict", func(t *testing.T) {
		reg := prom.NewRegistry()
		clash := prom.NewGauge(prom.GaugeOpts{Name: prometheus.MetricNetworkBytes, Help: "Not ours."})
		reg.MustRegister(clash)
		ln := listen(t)
		_, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Serve: true, Listener: ln, Logger: quiet})
		if err == nil || !strings.HasPrefix(err.Error(), "prometheus: register metrics: ") {
			t.Fatalf("got %v, want a registration error", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept on the listener after the failure: got %v, want net.ErrClosed", err)
		}
		// The metrics registered before the clash were unregistered: the
		// same one registers again.
		retries := prom.NewCounterVec(prom.CounterOpts{Name: prometheus.MetricEventRetries, Help: metricdef.HelpEventRetries},
			[]string{metricdef.LabelEventName})
		if err := reg.Register(retries); err != nil {
			t.Errorf("registering %s after the failure: %v, want it free", prometheus.MetricEventRetries, err)
		}
	})
}

// blockingCollector is a collector whose Collect waits for release.
type blockingCollector struct {
	desc     *prom.Desc
	entered  chan struct{}
	release  chan struct{}
	enterOne sync.Once
}

func (c *blockingCollector) Describe(ch chan<- *prom.Desc) { ch <- c.desc }

func (c *blockingCollector) Collect(ch chan<- prom.Metric) {
	c.enterOne.Do(func() { close(c.entered) })
	<-c.release
	ch <- prom.MustNewConstMetric(c.desc, prom.GaugeValue, 1)
}

func TestCloseWithScrapeInProgressHonoursContext(t *testing.T) {
	reg := prom.NewRegistry()
	slow := &blockingCollector{desc: prom.NewDesc("app_slow", "Slow.", nil, nil), entered: make(chan struct{}), release: make(chan struct{})}
	reg.MustRegister(slow)
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Serve: true, Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	scraped := make(chan error, 1)
	go func() {
		_, _, err := get(p.URL())
		scraped <- err
	}()
	<-slow.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Close(ctx); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "prometheus: close: ") {
		t.Errorf("Close with an ended ctx during a scrape: got %v, want prometheus: close: context canceled", err)
	}
	// Close closed the scrape's connection rather than wait for it.
	if err := <-scraped; err == nil {
		t.Error("the scrape in progress succeeded, want its connection closed")
	}
	close(slow.release)
	if err := p.Close(context.Background()); err == nil {
		t.Error("second Close: got nil, want an error")
	}
}

// invalidCollector sends a metric that cannot be encoded.
type invalidCollector struct{ desc *prom.Desc }

func (c invalidCollector) Describe(ch chan<- *prom.Desc) { ch <- c.desc }

func (c invalidCollector) Collect(ch chan<- prom.Metric) {
	ch <- prom.NewInvalidMetric(c.desc, errors.New("backend of app_broken unreachable"))
}

func TestGatherErrorIsLoggedAndScrapeGoesOn(t *testing.T) {
	reg := prom.NewRegistry()
	reg.MustRegister(invalidCollector{prom.NewDesc("app_broken", "Broken.", nil, nil)})
	ok := prom.NewCounter(prom.CounterOpts{Name: "app_ok_total", Help: "OK."})
	reg.MustRegister(ok)
	logs := &logBuffer{}
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Serve: true, Listener: listen(t), Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	code, body, err := get(p.URL())
	if err != nil || code != 200 || !strings.Contains(body, "app_ok_total 0") {
		t.Errorf("scrape: got %d, %v, body %q; want 200 with app_ok_total", code, err, body)
	}
	if got := logs.String(); !strings.Contains(got, `level=ERROR msg="prometheus: serving metrics: error gathering metrics:`) ||
		!strings.Contains(got, "backend of app_broken unreachable") {
		t.Errorf("log %q lacks the gathering error at ERROR", got)
	}
}

// failingListener is a listener whose Accept fails with err, after
// temporary failures first.
type failingListener struct {
	net.Listener
	mu        sync.Mutex
	temporary int
	err       error
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "too many open files" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.temporary > 0 {
		l.temporary--
		return nil, temporaryError{}
	}
	return nil, l.err
}

func TestListenerFailureIsLogged(t *testing.T) {
	logs := &logBuffer{}
	ln := &failingListener{Listener: listen(t), temporary: 1, err: errors.New("listener broken")}
	p, err := prometheus.NewPublisher(prometheus.Config{Listener: ln, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "serving metrics stopped"); {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the listener's failure: %q", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("Close after the server stopped: %v", err)
	}
	got := logs.String()
	for _, want := range []string{
		`level=WARN msg="prometheus: http server: http: Accept error: too many open files; retrying in 5ms"`,
		`level=ERROR msg="prometheus: serving metrics stopped" error="listener broken"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
}

func TestLogValue(t *testing.T) {
	p, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	logs := &logBuffer{}
	logs.logger().Info("started", "publisher", p)
	if got, want := logs.String(), `publisher.kind=prometheus publisher.url=`+p.URL(); !strings.Contains(got, want) {
		t.Errorf("log %q lacks %q", got, want)
	}
}

// logBuffer collects a text log; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
