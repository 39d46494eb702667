package grafanacloud

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// waits are the waits in a queue of the runs of the bucket tests: one per
// bucket of customWaitBuckets, and an exact sum.
var waits = []time.Duration{250 * time.Millisecond, time.Second, 10 * time.Second, 100 * time.Second}

const waitsSum = 111.25

// customWaitBuckets are the Config.WaitBuckets of the bucket tests.
var customWaitBuckets = []float64{0.5, 2, 30}

// runWaits records a run of event through r for each wait, given with
// telemetry.WithWait.
func runWaits(t *testing.T, r *telemetry.Recorder, event string, waits ...time.Duration) {
	t.Helper()
	for i, w := range waits {
		id := fmt.Sprintf("%s-%d-%d", event, time.Now().UnixNano(), i)
		if err := r.StartEvent(event, id, telemetry.WithWait(w)); err != nil {
			t.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// waitRecorder returns a Recorder publishing to a new Publisher of cfg
// (with the test key, org and a one-hour interval), after recording the
// waits of the bucket tests as runs of event.
func waitRecorder(t *testing.T, cfg Config, event string) *telemetry.Recorder {
	t.Helper()
	cfg.APIKey, cfg.OrgSlug, cfg.Interval, cfg.Logger = testKey, "123456", time.Hour, quiet
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet), telemetry.WithPublishers(pub))
	if err != nil {
		t.Fatal(err)
	}
	runWaits(t, r, event, waits...)
	return r
}

// cumulative returns the le label values of bounds and +Inf, each with the
// number of waits at most its bound: the buckets Prometheus should hold.
func cumulative(bounds []float64, waits []time.Duration) map[string]float64 {
	want := map[string]float64{"+Inf": float64(len(waits))}
	for _, b := range bounds {
		n := 0
		for _, w := range waits {
			if w.Seconds() <= b {
				n++
			}
		}
		want[strconv.FormatFloat(b, 'g', -1, 64)] = float64(n)
	}
	return want
}

// perBucket returns the number of waits in each bucket of bounds, +Inf
// last, as an OTLP histogram point counts them.
func perBucket(bounds []float64, waits []time.Duration) []uint64 {
	counts := make([]uint64, len(bounds)+1)
	for _, w := range waits {
		i := 0
		for i < len(bounds) && w.Seconds() > bounds[i] {
			i++
		}
		counts[i]++
	}
	return counts
}

// TestWaitBucketsRemoteWrite pushes runs recorded with telemetry.WithWait
// with remote write, through the proxy that checks the credentials, into a
// real Prometheus, and checks that event_wait_seconds has exactly the le
// bounds of Config.WaitBuckets, or DefaultWaitBuckets when it is nil, with
// each wait in its bucket.
func TestWaitBucketsRemoteWrite(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	proxy := newAuthProxy(t, prom.URL, "123456", testKey)
	tests := []struct {
		name   string
		config []float64 // Config.WaitBuckets
		bounds []float64 // the le bounds expected, +Inf aside
	}{
		{"custom", customWaitBuckets, customWaitBuckets},
		{"default", nil, DefaultWaitBuckets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := waitRecorder(t, Config{Endpoint: proxy.URL + "/api/prom/push", Job: "waittest", Instance: tc.name,
				WaitBuckets: tc.config}, "queued")
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			sel := `job="waittest",instance="` + tc.name + `",event_name="queued"`
			want := cumulative(tc.bounds, waits)
			testutil.Eventually(t, 15*time.Second, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				v, err := prom.Query(ctx, `event_wait_seconds_bucket{`+sel+`}`)
				if err != nil {
					return err
				}
				got := map[string]float64{}
				for _, s := range v {
					got[string(s.Metric["le"])] = float64(s.Value)
				}
				if !maps.Equal(got, want) {
					return fmt.Errorf("event_wait_seconds_bucket by le: got %v, want %v", got, want)
				}
				return nil
			})
			wantValues(t, prom, map[string]float64{
				`event_wait_seconds_count{` + sel + `}`: float64(len(waits)),
				`event_wait_seconds_sum{` + sel + `}`:   waitsSum,
			})
		})
	}
}

// TestWaitBucketsOTLP pushes runs recorded with telemetry.WithWait with
// OTLP to a real OpenTelemetry Collector, behind a proxy standing for the
// gateway (basic auth, the /otlp path), and checks that event_wait_seconds
// arrives with the explicit bounds of Config.WaitBuckets, or
// DefaultWaitBuckets when it is nil, and each wait in its bucket.
func TestWaitBucketsOTLP(t *testing.T) {
	c := testutil.StartCollector(t)
	target, err := url.Parse(c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.URL.Path = "/v1/metrics"
		r.Out.Header.Del("Authorization")
	}}
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, k, ok := r.BasicAuth(); !ok || u != "123456" || k != testKey.Reveal() || r.URL.Path != "/otlp/v1/metrics" {
			http.Error(w, "invalid credentials or path", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(gateway.Close)
	tests := []struct {
		name   string
		config []float64 // Config.WaitBuckets
		bounds []float64 // the explicit bounds expected
	}{
		{"custom", customWaitBuckets, customWaitBuckets},
		{"default", nil, DefaultWaitBuckets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			event := "queued_" + tc.name
			r := waitRecorder(t, Config{Endpoint: gateway.URL + "/otlp", Job: "waittest", Instance: tc.name,
				WaitBuckets: tc.config}, event)
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			key := "event_wait_seconds{event_name=" + event + "}"
			want := fmt.Sprint(len(waits), waitsSum, tc.bounds, perBucket(tc.bounds, waits))
			testutil.Eventually(t, 30*time.Second, func() error {
				latest, err := c.LatestMetrics()
				if err != nil {
					return err
				}
				p, ok := latest[key]
				if got := fmt.Sprint(p.Count, p.Sum, p.Bounds, p.BucketCounts); !ok || got != want {
					return fmt.Errorf("%s: got count, sum, bounds, buckets %s (present %v), want %s", key, got, ok, want)
				}
				if p.Resource["service.instance.id"] != tc.name {
					return fmt.Errorf("%s: got resource %v, want service.instance.id %s", key, p.Resource, tc.name)
				}
				return nil
			})
		})
	}
}
