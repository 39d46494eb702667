package grafanacloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// authProxy stands for a Grafana Cloud metrics endpoint in front of a real
// Prometheus: it accepts /api/prom/push only with the basic-auth user and
// token given (else 401, as Grafana Cloud answers), checks the
// remote-write headers, and forwards to Prometheus's /api/v1/write.
type authProxy struct {
	*httptest.Server
	forwarded, rejected atomic.Int64
}

func newAuthProxy(t *testing.T, prometheusURL, user string, key telemetry.Secret) *authProxy {
	t.Helper()
	target, err := url.Parse(prometheusURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.URL.Path = "/api/v1/write"
		r.Out.Header.Del("Authorization") // Prometheus does not need it
	}}
	p := &authProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, k, ok := r.BasicAuth()
		if !ok || u != user || k != key.Reveal() {
			p.rejected.Add(1)
			http.Error(w, "authentication error: invalid token", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/api/prom/push" || r.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		for h, want := range map[string]string{
			"Content-Encoding":                  "snappy",
			"Content-Type":                      "application/x-protobuf",
			"X-Prometheus-Remote-Write-Version": "0.1.0",
		} {
			if got := r.Header.Get(h); got != want {
				http.Error(w, fmt.Sprintf("header %s: got %q, want %q", h, got, want), http.StatusBadRequest)
				return
			}
		}
		p.forwarded.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// queryValue returns the value of the one sample of the instant query q.
func queryValue(prom *testutil.Prometheus, q string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := prom.Query(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("query %s: got %d samples (%v), want 1", q, len(v), v)
	}
	return float64(v[0].Value), nil
}

// wantValues polls Prometheus until every query has its value.
func wantValues(t *testing.T, prom *testutil.Prometheus, want map[string]float64) {
	t.Helper()
	testutil.Eventually(t, pollTimeout, func() error {
		var errs []error
		for q, w := range want {
			got, err := queryValue(prom, q)
			if err != nil {
				errs = append(errs, err)
			} else if got != w {
				errs = append(errs, fmt.Errorf("%s: got %v, want %v", q, got, w))
			}
		}
		return errors.Join(errs...)
	})
}

// runEvents records n runs of event through r, each with retries retries
// and a wait of 2s in a queue, failing with err if it is not nil.
func runEvents(t *testing.T, r *telemetry.Recorder, event string, n, retries int, err error) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d-%d", event, time.Now().UnixNano(), i)
		// Every run waited 2s in a queue, for event_wait_seconds.
		if e := r.StartEvent(event, id, telemetry.WithEnqueueTime(time.Now().Add(-2*time.Second))); e != nil {
			t.Fatal(e)
		}
		for range retries {
			if e := r.RecordRetry(id); e != nil {
				t.Fatal(e)
			}
		}
		if e := r.EndEvent(id, err); e != nil {
			t.Fatal(e)
		}
	}
}

// runOps records n network operations through r.
func runOps(t *testing.T, r *telemetry.Recorder, op string, n int, sent, received int64) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d-%d", op, time.Now().UnixNano(), i)
		if err := r.Network().StartOperation(id, "api.example.com", 443, op); err != nil {
			t.Fatal(err)
		}
		if err := r.Network().EndOperation(id, sent, received, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoteWritePrometheus pushes a known workload with remote write to a
// real Prometheus, through a proxy that checks the basic-auth credentials,
// and asserts the values with PromQL after each of several pushes.
func TestRemoteWritePrometheus(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	proxy := newAuthProxy(t, prom.URL, "123456", testKey)
	ctx := context.Background()

	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(Config{
		APIKey: testKey, OrgSlug: "123456", Endpoint: proxy.URL + "/api/prom/push",
		Job: "rwtest", Instance: "good",
		Interval: time.Hour, // only Flush and Close push: each push is known
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}

	// Push 1.
	runEvents(t, r, "load", 4, 0, nil)
	runEvents(t, r, "load", 1, 2, nil)
	runEvents(t, r, "load", 2, 1, errors.New("timeout"))
	runEvents(t, r, "save", 3, 0, nil)
	runOps(t, r, "http_request", 3, 100, 1000)
	runOps(t, r, "query", 1, 10, 20)
	// Durations chosen for the buckets: 0.2s, 3s, 700s.
	for _, d := range []time.Duration{200 * time.Millisecond, 3 * time.Second, 700 * time.Second} {
		if err := pub.PublishEventMetrics(ctx, finishedEvent("timed", telemetry.StatusCompleted, d, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	sel := `job="rwtest",instance="good"`
	wantValues(t, prom, map[string]float64{
		`event_duration_seconds_count{` + sel + `,event_name="load",status="completed"}`:                          5,
		`event_duration_seconds_count{` + sel + `,event_name="load",status="failed"}`:                             2,
		`event_duration_seconds_count{` + sel + `,event_name="save",status="completed"}`:                          3,
		`event_duration_seconds_count{` + sel + `,event_name="save",status="failed"}`:                             0,
		`event_retries_total{` + sel + `,event_name="load"}`:                                                      4,
		`event_retries_total{` + sel + `,event_name="save"}`:                                                      0,
		`network_bytes_total{` + sel + `,operation="http_request",direction="sent"}`:                              300,
		`network_bytes_total{` + sel + `,operation="http_request",direction="received"}`:                          3000,
		`network_bytes_total{` + sel + `,operation="query",direction="received"}`:                                 20,
		`network_latency_seconds_count{` + sel + `,operation="http_request"}`:                                     3,
		`network_latency_seconds_bucket{` + sel + `,operation="http_request",le="+Inf"}`:                          3,
		`event_duration_seconds_bucket{` + sel + `,event_name="load",status="completed",le="+Inf"}`:               5,
		`event_duration_seconds_bucket{` + sel + `,event_name="timed",status="completed",le="0.1"}`:               0,
		`event_duration_seconds_bucket{` + sel + `,event_name="timed",status="completed",le="0.25"}`:              1,
		`event_duration_seconds_bucket{` + sel + `,event_name="timed",status="completed",le="5"}`:                 2,
		`event_duration_seconds_bucket{` + sel + `,event_name="timed",status="completed",le="600"}`:               2,
		`event_duration_seconds_bucket{` + sel + `,event_name="timed",status="completed",le="+Inf"}`:              3,
		`event_duration_seconds_sum{` + sel + `,event_name="timed",status="completed"}`:                           703.2,
		`sum(event_duration_seconds_count{` + sel + `})`:                                                          13,
		`count(event_duration_seconds_bucket{` + sel + `,event_name="load",status="completed"})`:                  float64(len(DefaultEventBuckets) + 1),
		`count(network_latency_seconds_bucket{` + sel + `,operation="query"})`:                                    float64(len(DefaultLatencyBuckets) + 1),
		`histogram_quantile(1, event_duration_seconds_bucket{` + sel + `,event_name="timed",status="completed"})`: 600,
	})

	// Push 2: the values are cumulative.
	runEvents(t, r, "load", 3, 1, nil)
	runEvents(t, r, "load", 1, 0, errors.New("timeout"))
	runOps(t, r, "http_request", 2, 100, 1000)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	wantValues(t, prom, map[string]float64{
		`event_duration_seconds_count{` + sel + `,event_name="load",status="completed"}`: 8,
		`event_duration_seconds_count{` + sel + `,event_name="load",status="failed"}`:    3,
		`event_retries_total{` + sel + `,event_name="load"}`:                             7,
		`network_bytes_total{` + sel + `,operation="http_request",direction="sent"}`:     500,
		`network_bytes_total{` + sel + `,operation="http_request",direction="received"}`: 5000,
		`network_latency_seconds_count{` + sel + `,operation="http_request"}`:            5,
	})

	// Push 3, by Close.
	runEvents(t, r, "save", 2, 0, nil)
	if err := r.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantValues(t, prom, map[string]float64{
		`event_duration_seconds_count{` + sel + `,event_name="save",status="completed"}`: 5,
		`event_duration_seconds_count{` + sel + `,event_name="load",status="completed"}`: 8,
		// Three pushes, three samples of one series in the last 10 minutes.
		`count_over_time(event_duration_seconds_count{` + sel + `,event_name="load",status="completed"}[10m])`: 3,
	})
	s := pub.Stats()
	if s.Pushes != 3 || s.FailedAttempts != 0 || s.DroppedPushes != 0 || s.LastPush.IsZero() {
		t.Errorf("got stats %+v, want 3 pushes and no failures", s)
	}
	if got := proxy.forwarded.Load(); got != 3 {
		t.Errorf("got %d requests forwarded, want 3", got)
	}
}

// TestRemoteWritePeriodic checks that the Publisher pushes on its own every
// interval, with growing cumulative values.
func TestRemoteWritePeriodic(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	proxy := newAuthProxy(t, prom.URL, "123456", testKey)
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(Config{
		APIKey: testKey, OrgSlug: "123456", Endpoint: proxy.URL + "/api/prom/push",
		Job: "rwtest", Instance: "periodic", Interval: 200 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })

	runEvents(t, r, "tick", 2, 1, nil)
	q := `event_duration_seconds_count{job="rwtest",instance="periodic",event_name="tick",status="completed"}`
	wantValues(t, prom, map[string]float64{q: 2, `event_retries_total{instance="periodic",event_name="tick"}`: 2})
	runEvents(t, r, "tick", 3, 0, nil)
	wantValues(t, prom, map[string]float64{q: 5})
	testutil.Eventually(t, pollTimeout, func() error {
		if s := pub.Stats(); s.Pushes < 3 {
			return fmt.Errorf("got %d pushes, want at least 3", s.Pushes)
		}
		return nil
	})
}

// TestRemoteWriteWrongCredentials pushes with a wrong token and a wrong
// instance id through the checking proxy: each push is rejected with 401,
// counted as a permanent failure without retries, nothing reaches
// Prometheus, and recording goes on unaffected.
func TestRemoteWriteWrongCredentials(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	proxy := newAuthProxy(t, prom.URL, "123456", testKey)
	tests := []struct {
		name, user string
		key        telemetry.Secret
	}{
		{"wrong token", "123456", telemetry.NewSecret("glc_wrong")},
		{"wrong instance id", "654321", testKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejected := proxy.rejected.Load()
			r, err := telemetry.NewRecorder()
			if err != nil {
				t.Fatal(err)
			}
			instance := strings.ReplaceAll(tc.name, " ", "_")
			pub, err := NewPublisher(Config{
				APIKey: tc.key, OrgSlug: tc.user, Endpoint: proxy.URL + "/api/prom/push",
				Job: "rwtest", Instance: instance, Interval: time.Hour, Logger: quiet,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddPublisher(pub); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				runEvents(t, r, "load", 10, 0, nil) // recording is unaffected
				err := r.Flush(context.Background())
				var se *StatusError
				if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
					t.Fatalf("got flush error %v, want a *StatusError with code 401", err)
				}
			}
			if err := r.Close(context.Background()); err == nil {
				t.Error("got no error from Close, want the 401 of its last push")
			}
			s := pub.Stats()
			if s.Pushes != 0 || s.FailedAttempts != 5 || s.DroppedPushes != 5 || s.PermanentFailures != 5 || s.LastStatus != 401 {
				t.Errorf("got stats %+v, want 5 attempts (3 Flush, and Recorder.Close: Flush and Close), each dropped as permanent, no retry", s)
			}
			if got := proxy.rejected.Load() - rejected; got != 5 {
				t.Errorf("got %d requests rejected by the proxy, want 5 (no retries)", got)
			}
			if st := r.Stats(); st.EventsEnded != 30 {
				t.Errorf("got %d events ended, want 30", st.EventsEnded)
			}
			v, err := prom.Query(context.Background(), `event_duration_seconds_count{instance="`+instance+`"}`)
			if err != nil || len(v) != 0 {
				t.Errorf("got %v, %v, want no series of instance %s in Prometheus", v, err, instance)
			}
		})
	}
}

// TestRemoteWriteRequest decodes a push with the official types and checks
// its series, labels (sorted, with job and instance) and timestamps.
func TestRemoteWriteRequest(t *testing.T) {
	reqs := make(chan *prompb.WriteRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		data, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reqs <- &req
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + "/api/v1/write",
		Job: "j", Instance: "i", Interval: time.Hour, EventBuckets: []float64{1, 10}, LatencyBuckets: []float64{0.5}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	ctx := context.Background()
	pub.PublishEventMetrics(ctx, finishedEvent("e\xff", telemetry.StatusFailed, 5*time.Second, 2))
	pub.PublishNetworkMetrics(ctx, finishedOp("", time.Second, 7, 9))
	before := time.Now().UnixMilli()
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	got := map[string]float64{}
	for _, ts := range req.Timeseries {
		var parts []string
		for i, l := range ts.Labels {
			if i > 0 && ts.Labels[i-1].Name >= l.Name {
				t.Errorf("labels not sorted: %v", ts.Labels)
			}
			parts = append(parts, l.Name+"="+l.Value)
		}
		if len(ts.Samples) != 1 || ts.Samples[0].Timestamp < before || ts.Samples[0].Timestamp > time.Now().UnixMilli() {
			t.Errorf("got samples %v, want one with the push's timestamp", ts.Samples)
		}
		got[strings.Join(parts, ",")] = ts.Samples[0].Value
	}
	want := map[string]float64{
		"__name__=event_duration_seconds_bucket,event_name=e\uFFFD,instance=i,job=j,le=1,status=failed":       0,
		"__name__=event_duration_seconds_bucket,event_name=e\uFFFD,instance=i,job=j,le=10,status=failed":      1,
		"__name__=event_duration_seconds_bucket,event_name=e\uFFFD,instance=i,job=j,le=+Inf,status=failed":    1,
		"__name__=event_duration_seconds_sum,event_name=e\uFFFD,instance=i,job=j,status=failed":               5,
		"__name__=event_duration_seconds_count,event_name=e\uFFFD,instance=i,job=j,status=failed":             1,
		"__name__=event_duration_seconds_bucket,event_name=e\uFFFD,instance=i,job=j,le=1,status=completed":    0,
		"__name__=event_duration_seconds_bucket,event_name=e\uFFFD,instance=i,job=j,le=10,status=completed":   0,
		"__name__=event_duration_seconds_bucket,event_name=e\uFFFD,instance=i,job=j,le=+Inf,status=completed": 0,
		"__name__=event_duration_seconds_sum,event_name=e\uFFFD,instance=i,job=j,status=completed":            0,
		"__name__=event_duration_seconds_count,event_name=e\uFFFD,instance=i,job=j,status=completed":          0,
		"__name__=event_retries_total,event_name=e\uFFFD,instance=i,job=j":                                    2,
		"__name__=network_latency_seconds_bucket,instance=i,job=j,le=0.5,operation=remote_call":               0,
		"__name__=network_latency_seconds_bucket,instance=i,job=j,le=+Inf,operation=remote_call":              1,
		"__name__=network_latency_seconds_sum,instance=i,job=j,operation=remote_call":                         1,
		"__name__=network_latency_seconds_count,instance=i,job=j,operation=remote_call":                       1,
		"__name__=network_bytes_total,direction=sent,instance=i,job=j,operation=remote_call":                  7,
		"__name__=network_bytes_total,direction=received,instance=i,job=j,operation=remote_call":              9,
	}
	// The event name is sent bounded: valid UTF-8, kept distinct by a hash.
	bounded := map[string]float64{}
	for k, w := range want {
		bounded[strings.Replace(k, "event_name=e\uFFFD,", "event_name="+metricdef.LabelValue("e\xff")+",", 1)] = w
	}
	want = bounded
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("series %s: got %v (present %v), want %v", k, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
	if len(req.Metadata) != 4 {
		t.Errorf("got %d metadata, want 4", len(req.Metadata))
	}
	if s := pub.Stats(); s.Series != len(want) {
		t.Errorf("got Stats.Series %d, want %d", s.Series, len(want))
	}
}
