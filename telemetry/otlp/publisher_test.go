package otlp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

// quiet is a logger that drops everything.
var quiet = slog.New(slog.DiscardHandler)

// testToken is a credential that must never show up in output.
var testToken = telemetry.NewSecret("Bearer s3cr3t-T0KEN-never-print-me")

func TestNewPublisherInvalidConfig(t *testing.T) {
	valid := Config{Endpoint: "http://127.0.0.1:4318", Logger: quiet}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"missing Endpoint", func(c *Config) { c.Endpoint = "" }, []string{"Endpoint is required"}},
		{"Endpoint not a URL", func(c *Config) { c.Endpoint = "http://[::1" }, []string{"Endpoint is not a valid URL"}},
		{"Endpoint without scheme", func(c *Config) { c.Endpoint = "127.0.0.1:4318" }, []string{"Endpoint"}},
		{"Endpoint grpc", func(c *Config) { c.Endpoint = "grpc://collector:4317" }, []string{"Endpoint", "must be an http(s) URL"}},
		{"Endpoint with credentials", func(c *Config) { c.Endpoint = "https://u:s3cr3t-pw@collector" }, []string{"must not contain credentials"}},
		{"Headers over plain http", func(c *Config) {
			c.Endpoint = "http://collector.internal:4318"
			c.Headers = map[string]telemetry.Secret{"Authorization": testToken}
		}, []string{"is not https", "AllowInsecure"}},
		{"bad header name", func(c *Config) { c.Headers = map[string]telemetry.Secret{"X Bad": testToken} }, []string{`"X Bad" is not a valid header name`}},
		{"header with newline", func(c *Config) { c.Headers = map[string]telemetry.Secret{"X-Key": telemetry.NewSecret("a\nb")} }, []string{"holds a control character"}},
		{"InsecureSkipVerify", func(c *Config) { c.TLSConfig = &tls.Config{InsecureSkipVerify: true} }, []string{"InsecureSkipVerify"}},
		{"HTTPClient with TLS", func(c *Config) { c.HTTPClient = testClient(); c.CACert = []byte("x") }, []string{"HTTPClient"}},
		{"unknown Compression", func(c *Config) { c.Compression = "zstd" }, []string{`Compression "zstd" is unknown`}},
		{"tiny Interval", func(c *Config) { c.Interval = time.Millisecond }, []string{"Interval 1ms is below the minimum 10ms"}},
		{"negative Timeout", func(c *Config) { c.Timeout = -1 }, []string{"Timeout"}},
		{"negative Retry", func(c *Config) { c.Retry.MaxBackoff = -1 }, []string{"Retry: max backoff must not be negative"}},
		{"service.name attribute", func(c *Config) { c.ResourceAttributes = map[string]string{"service.name": "x"} }, []string{"use ServiceName"}},
		{"negative MaxLabelValues", func(c *Config) { c.MaxLabelValues = -1 }, []string{"MaxLabelValues -1 is negative"}},
		{"unsorted buckets", func(c *Config) { c.EventBuckets = []float64{2, 1} }, []string{"EventBuckets are not strictly increasing"}},
		{"NaN bucket", func(c *Config) { c.LatencyBuckets = []float64{math.NaN()} }, []string{"LatencyBuckets[0] is NaN"}},
		{"empty WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{} }, []string{"WaitBuckets is empty: leave it nil for the defaults"}},
		{"unsorted WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{2, 1} }, []string{"WaitBuckets are not strictly increasing: 1 after 2"}},
		{"NaN WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{1, math.NaN()} }, []string{"WaitBuckets[1] is NaN: bounds must be finite"}},
		{"infinite WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{math.Inf(1)} }, []string{"WaitBuckets[0] is +Inf: bounds must be finite"}},
		{"ServiceName not UTF-8", func(c *Config) { c.ServiceName = "\xff" }, []string{"ServiceName is not valid UTF-8"}},
		{"empty resource attribute key", func(c *Config) { c.ResourceAttributes = map[string]string{"": "x"} }, []string{`ResourceAttributes: "" is an empty or invalid UTF-8 key`}},
		{"resource attribute value not UTF-8", func(c *Config) { c.ResourceAttributes = map[string]string{"team": "\xff"} }, []string{`ResourceAttributes: "team" is an empty or invalid UTF-8 key, or its value is invalid UTF-8`}},
		{"several", func(c *Config) { c.Endpoint = ""; c.Interval = -1 }, []string{"Endpoint is required", "Interval -1ns is negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			p, err := NewPublisher(cfg)
			if err == nil {
				p.Close(context.Background())
				t.Fatalf("got no error, want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "otlp: ") {
				t.Errorf("got error %q, want the prefix otlp: ", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q contains the credential", err)
			}
		})
	}
}

func TestEndpointURL(t *testing.T) {
	tests := []struct{ endpoint, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/metrics"},
		{"http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/metrics"},
		{"https://gateway.example.com/otlp", "https://gateway.example.com/otlp/v1/metrics"},
		{"http://localhost:9090/api/v1/otlp", "http://localhost:9090/api/v1/otlp/v1/metrics"},
		{"http://[::1]:4318/v1/metrics", "http://[::1]:4318/v1/metrics"},
		{"http://collector.internal:4318", "http://collector.internal:4318/v1/metrics"}, // no credentials: plain http is fine
	}
	for _, tc := range tests {
		t.Run(tc.endpoint, func(t *testing.T) {
			p, err := NewPublisher(Config{Endpoint: tc.endpoint, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			if got := p.URL(); got != tc.want {
				t.Errorf("got URL %s, want %s", got, tc.want)
			}
		})
	}
}

// finishedEvent returns a finished record of the event name.
func finishedEvent(name string, status telemetry.Status, d time.Duration, retries int) telemetry.EventMetrics {
	start := time.Now()
	return telemetry.EventMetrics{EventName: name, TaskID: "t", StartTime: start, EndTime: start.Add(d), Status: status, RetryCount: retries}
}

// finishedOp returns a finished network record.
func finishedOp(op string, d time.Duration, sent, received int64) telemetry.NetworkMetrics {
	start := time.Now()
	return telemetry.NetworkMetrics{TaskID: "t", Operation: op, Host: "db.internal", Port: 5432, StartTime: start,
		EndTime: start.Add(d), Status: telemetry.StatusCompleted, BytesSent: sent, BytesReceived: received}
}

// runEvents records n runs of event through r, each with retries retries,
// failing with err if it is not nil.
func runEvents(t *testing.T, r *telemetry.Recorder, event string, n, retries int, err error) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d-%d", event, time.Now().UnixNano(), i)
		if e := r.StartEvent(event, id); e != nil {
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

// wantPoints polls the collector until the latest point of each series in
// want has the value given: a float64 for sums and gauges, a histogram
// point's count for "name{...}_count", its sum for "_sum", its bucket
// counts for "_buckets".
func wantPoints(t *testing.T, c *testutil.Collector, want map[string]any) map[string]testutil.MetricPoint {
	t.Helper()
	var latest map[string]testutil.MetricPoint
	testutil.Eventually(t, 30*time.Second, func() error {
		var err error
		if latest, err = c.LatestMetrics(); err != nil {
			return err
		}
		var errs []error
		for k, w := range want {
			key, field, _ := strings.Cut(k, "}_")
			if field != "" {
				key += "}"
			}
			p, ok := latest[key]
			var got any
			switch field {
			case "":
				got = p.Value
			case "count":
				got = p.Count
			case "sum":
				got = p.Sum
			case "buckets":
				got = fmt.Sprint(p.BucketCounts)
			case "bounds":
				got = fmt.Sprint(p.Bounds)
			}
			if !ok || got != w {
				errs = append(errs, fmt.Errorf("%s: got %v (present %v), want %v", k, got, ok, w))
			}
		}
		return errors.Join(errs...)
	})
	return latest
}

// TestCollector pushes a known workload through a Recorder to a real
// OpenTelemetry Collector and reads what it received from its file
// exporter: metric names, units, kinds, attributes, resource and values,
// after each of two pushes.
func TestCollector(t *testing.T) {
	c := testutil.StartCollector(t)
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(Config{
		Endpoint: c.Endpoint, ServiceName: "otlptest", ServiceInstanceID: "host-1",
		ResourceAttributes: map[string]string{"deployment.environment.name": "test"},
		Interval:           time.Hour, EventBuckets: []float64{1, 10}, LatencyBuckets: []float64{0.5}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runEvents(t, r, "load", 3, 1, nil)
	runEvents(t, r, "load", 1, 0, errors.New("boom"))
	runOps(t, r, "http_request", 2, 100, 1000)
	pub.PublishEventMetrics(ctx, finishedEvent("timed", telemetry.StatusCompleted, 5*time.Second, 0))
	pub.PublishEventMetrics(ctx, finishedEvent("timed", telemetry.StatusCompleted, 20*time.Second, 0))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	latest := wantPoints(t, c, map[string]any{
		"event_duration_seconds{event_name=load,status=completed}_count":    uint64(3),
		"event_duration_seconds{event_name=load,status=failed}_count":       uint64(1),
		"event_duration_seconds{event_name=timed,status=completed}_count":   uint64(2),
		"event_duration_seconds{event_name=timed,status=completed}_sum":     25.0,
		"event_duration_seconds{event_name=timed,status=completed}_buckets": "[0 1 1]",
		"event_duration_seconds{event_name=timed,status=completed}_bounds":  "[1 10]",
		"event_retries_total{event_name=load}":                              3.0,
		"event_retries_total{event_name=timed}":                             0.0,
		"network_bytes_total{direction=sent,operation=http_request}":        200.0,
		"network_bytes_total{direction=received,operation=http_request}":    2000.0,
		"network_latency_seconds{operation=http_request}_count":             uint64(2),
		"network_latency_seconds{operation=http_request}_bounds":            "[0.5]",
		metricdef.Published + "{publisher=otlp}":                            6.0,
		metricdef.Dropped + "{publisher=otlp,reason=queue_full}":            0.0,
		metricdef.QueueCapacity + "{publisher=otlp}":                        0.0,
		"telemetry_publisher_failed_attempts_total{publisher=otlp}":         0.0,
		"event_duration_seconds{event_name=timed,status=failed}_count":      uint64(0),
	})
	kinds := map[string]string{ // name: kind, unit
		"event_duration_seconds":  "histogram s",
		"event_retries_total":     "sum {retry}",
		"network_bytes_total":     "sum By",
		"network_latency_seconds": "histogram s",
		metricdef.QueueLength:     "gauge {record}",
		metricdef.Published:       "sum {record}",
	}
	for k, p := range latest {
		want, ok := kinds[p.Name]
		if !ok {
			continue
		}
		if got := p.Kind + " " + p.Unit; got != want {
			t.Errorf("%s: got kind and unit %q, want %q", k, got, want)
		}
		if p.Kind != "gauge" && (p.Temporality != "cumulative" || (p.Kind == "sum" && !p.Monotonic)) {
			t.Errorf("%s: got temporality %q, monotonic %v; want cumulative (and monotonic)", k, p.Temporality, p.Monotonic)
		}
		if p.Resource["service.name"] != "otlptest" || p.Resource["service.instance.id"] != "host-1" ||
			p.Resource["deployment.environment.name"] != "test" || p.Scope != ScopeName {
			t.Errorf("%s: got resource %v, scope %q", k, p.Resource, p.Scope)
		}
		if p.Kind != "gauge" && (p.Start.IsZero() || !p.Time.After(p.Start)) {
			t.Errorf("%s: got start %v, time %v, want 0 < start < time", k, p.Start, p.Time)
		}
	}

	// A second push, by Close: cumulative values.
	runEvents(t, r, "load", 2, 2, nil)
	runOps(t, r, "http_request", 1, 100, 1000)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wantPoints(t, c, map[string]any{
		"event_duration_seconds{event_name=load,status=completed}_count": uint64(5),
		"event_retries_total{event_name=load}":                           7.0,
		"network_bytes_total{direction=sent,operation=http_request}":     300.0,
		"network_latency_seconds{operation=http_request}_count":          uint64(3),
		metricdef.Published + "{publisher=otlp}":                         9.0,
	})
	if s := pub.Stats(); s.Pushes != 2 || s.FailedAttempts != 0 {
		t.Errorf("got stats %+v, want 2 pushes, no failures", s)
	}
}

// TestConformance runs the conformance kit against Publishers pushing to a
// real collector, and reads what was delivered back from its output.
func TestConformance(t *testing.T) {
	c := testutil.StartCollector(t)
	n := 0
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		n++
		return NewPublisher(Config{Endpoint: c.Endpoint, ServiceInstanceID: fmt.Sprint("c", n), Interval: time.Hour, Logger: quiet})
	}, func() (events, network []string) {
		instance := fmt.Sprint("c", n)
		var ev, ops uint64
		// The file exporter flushes every 100ms: wait until the counts
		// stop changing, then report them.
		testutil.Eventually(t, 30*time.Second, func() error {
			points, err := c.LatestMetrics()
			if err != nil {
				return err
			}
			var e, o uint64
			for _, p := range points {
				if p.Resource["service.instance.id"] != instance {
					continue
				}
				switch {
				case p.Name == metricdef.EventDuration && p.Attributes[metricdef.LabelEventName] == "conformance":
					e += p.Count
				case p.Name == metricdef.NetworkLatency && p.Attributes[metricdef.LabelOperation] == telemetry.DefaultOperation:
					o += p.Count
				}
			}
			if e != ev || o != ops || e == 0 {
				ev, ops = e, o
				return fmt.Errorf("counts still changing: %d events, %d operations", e, o)
			}
			return nil
		})
		return conformanceIDs(int(ev)), conformanceIDs(int(ops))
	})
	if err != nil {
		t.Error(err)
	}
}

// conformanceIDs returns the task ids of the first n records of the
// conformance kit. A metrics backend delivers counts, not task ids: n
// records counted stand for the first n ids the kit recorded.
func conformanceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("conformance-", i)
	}
	return ids
}

func testClient() *http.Client { return &http.Client{} }
