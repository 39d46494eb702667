package webview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// quiet is a logger for tests that expect no log lines worth reading.
var quiet = slog.New(slog.DiscardHandler)

// clock is a clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a Recorder with a Handler attached, served by an httptest
// server.
type fixture struct {
	rec   *telemetry.Recorder
	h     *Handler
	srv   *httptest.Server
	clock *clock // nil when the handler uses time.Now
}

// newFixture returns a fixture with cfg, on the real clock unless c is
// given. Everything is closed when the test ends.
func newFixture(t testing.TB, cfg Config, c *clock) *fixture {
	t.Helper()
	rec, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	cfg, err = cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now
	if c != nil {
		now = c.now
	}
	h := newHandler(rec, cfg, now)
	if err := rec.AddPublisher(h.col); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &fixture{rec: rec, h: h, srv: srv, clock: c}
}

// run records one finished run of event as task id, with err, that took
// exactly d (1ms if d is 0, so that, as a real run, it took longer than a
// threshold of 0s), and waits until the view has it. The run is given its
// start and end (d before now, and now), so that its duration does not
// depend on how long the calls take on a loaded machine.
func (f *fixture) run(t testing.TB, event, id string, d time.Duration, retries int, err error) {
	t.Helper()
	d = max(d, time.Millisecond)
	end := f.rec.Now()
	if e := f.rec.StartEvent(event, id, telemetry.WithPipelineID("pipe-1"), telemetry.WithStartTime(end.Add(-d))); e != nil {
		t.Fatal(e)
	}
	for range retries {
		if e := f.rec.RecordRetry(id); e != nil {
			t.Fatal(e)
		}
	}
	if e := f.rec.EndEventAt(id, err, end); e != nil {
		t.Fatal(e)
	}
	f.flush(t)
}

// op records one finished network operation of the task id.
func (f *fixture) op(t testing.TB, id, host string, port int, sent, received int64, err error) {
	t.Helper()
	if e := f.rec.Network().StartOperation(id, host, port, "remote_call"); e != nil {
		t.Fatal(e)
	}
	if e := f.rec.Network().EndOperation(id, sent, received, err); e != nil {
		t.Fatal(e)
	}
	f.flush(t)
}

func (f *fixture) flush(t testing.TB) {
	t.Helper()
	if err := f.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// get requests path from the fixture's server and returns the response
// with its body read.
func (f *fixture) get(t testing.TB, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp, string(b)
}

// sample records a workload that looks like the demo's pipeline, over
// steps seconds of the fixture's clock: fast, slow, failing (more in an
// incident in the middle), retried and remote events, and network
// operations. The durations are real but scaled down (milliseconds).
func (f *fixture) sample(t testing.TB, steps int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	type ev struct {
		name     string
		dur      time.Duration
		failRate float64
		errText  string
	}
	events := []ev{
		{"extract", 2 * time.Millisecond, 0, ""},
		{"validate", time.Millisecond, 0.01, "row 17: amount is negative"},
		{"transform", 12 * time.Millisecond, 0, ""},
		{"fetch_rates", 3 * time.Millisecond, 0.05, "rates service: 503 Service Unavailable"},
		{"geocode", 2 * time.Millisecond, 0, ""},
		{"score", 8 * time.Millisecond, 0.02, "worker: context deadline exceeded"},
		{"load", 4 * time.Millisecond, 0.03, "warehouse: disk quota exceeded"},
		{"notify", time.Millisecond, 0.02, `Post "http://127.0.0.1:40125/events": dial tcp 127.0.0.1:40125: connect: connection refused`},
	}
	n := 0
	for step := range steps {
		incident := step > steps/2 && step < steps/2+steps/6
		var wg sync.WaitGroup
		runs := 1 + rng.IntN(3)
		for r := range runs {
			for _, e := range events {
				n++
				id := fmt.Sprintf("%016x/%s/%d", uint64(step*10+r)*0x9e3779b97f4a7c15, e.name, n)
				d := time.Duration(float64(e.dur) * (0.5 + rng.Float64()*1.5))
				if e.name == "score" && rng.IntN(8) == 0 {
					d *= 4 // the worker is sometimes slow
				}
				fail := e.failRate
				if incident && (e.name == "load" || e.name == "notify") {
					fail = 0.6
				}
				var err error
				if rng.Float64() < fail {
					err = errors.New(e.errText)
				}
				retries := 0
				if e.name == "fetch_rates" && rng.IntN(3) == 0 {
					retries = 1 + rng.IntN(2)
				}
				if e := f.rec.StartEvent(e.name, id, telemetry.WithPipelineID(id[:16])); e != nil {
					t.Fatal(e)
				}
				for range retries {
					f.rec.RecordRetry(id)
				}
				wg.Go(func() {
					time.Sleep(d)
					f.rec.EndEvent(id, err)
				})
				if e.name == "geocode" || e.name == "score" || e.name == "notify" {
					call := id + "/call-1"
					f.rec.Network().StartOperation(call, "127.0.0.1", 40123, "remote_call")
					f.rec.Network().EndOperation(call, int64(200+rng.IntN(300)), int64(40+rng.IntN(100)), err)
				}
			}
		}
		wg.Wait()
		f.flush(t)
		if f.clock != nil {
			f.clock.advance(2 * time.Second)
		}
	}
}

// urlQuery escapes s for a URL query.
func urlQuery(s string) string { return url.QueryEscape(s) }
