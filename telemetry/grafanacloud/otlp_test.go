package grafanacloud

import (
	"cmp"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP metrics receiver over real HTTP that decodes
// each request with the official OTLP protobuf types. It accepts only the
// basic-auth credentials given, as the Grafana Cloud gateway does.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*colmetricpb.ExportMetricsServiceRequest
	headers  []http.Header
}

func newOTLPReceiver(t *testing.T, user string, key telemetry.Secret) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, k, ok := r.BasicAuth(); !ok || u != user || k != key.Reveal() {
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/otlp/v1/metrics" || r.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req colmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.requests = append(rc.requests, &req)
		rc.headers = append(rc.headers, r.Header.Clone())
		rc.mu.Unlock()
		resp, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// last returns the last request received and its headers.
func (rc *otlpReceiver) last() (*colmetricpb.ExportMetricsServiceRequest, http.Header, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) == 0 {
		return nil, nil, 0
	}
	n := len(rc.requests)
	return rc.requests[n-1], rc.headers[n-1], n
}

// attrs returns key=value pairs of attributes, sorted.
func attrs(kvs []*commonpb.KeyValue) string {
	var s []string
	for _, kv := range kvs {
		s = append(s, kv.GetKey()+"="+kv.GetValue().GetStringValue())
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// otlpPoints flattens a request into "metric{attrs}" → value: the count
// and sum of histograms (as name_count, name_sum), bucket counts (as
// name_bucket_counts), and the values of sums.
func otlpPoints(t *testing.T, req *colmetricpb.ExportMetricsServiceRequest) (map[string]any, string) {
	t.Helper()
	got := map[string]any{}
	if n := len(req.GetResourceMetrics()); n != 1 {
		t.Fatalf("got %d resource metrics, want 1", n)
	}
	rm := req.GetResourceMetrics()[0]
	res := attrs(rm.GetResource().GetAttributes())
	for _, sm := range rm.GetScopeMetrics() {
		if sm.GetScope().GetName() != scopeName {
			t.Errorf("got scope %q, want %q", sm.GetScope().GetName(), scopeName)
		}
		for _, m := range sm.GetMetrics() {
			switch d := m.GetData().(type) {
			case *metricpb.Metric_Histogram:
				if d.Histogram.GetAggregationTemporality() != metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
					t.Errorf("%s: got temporality %v, want cumulative", m.GetName(), d.Histogram.GetAggregationTemporality())
				}
				for _, dp := range d.Histogram.GetDataPoints() {
					k := m.GetName() + "{" + attrs(dp.GetAttributes()) + "}"
					got[k+"_count"] = dp.GetCount()
					got[k+"_sum"] = dp.GetSum()
					got[k+"_bucket_counts"] = fmt.Sprint(dp.GetBucketCounts())
					got[k+"_bounds"] = fmt.Sprint(dp.GetExplicitBounds())
					if dp.GetStartTimeUnixNano() == 0 || dp.GetTimeUnixNano() <= dp.GetStartTimeUnixNano() {
						t.Errorf("%s: got start %d, time %d, want 0 < start < time", k, dp.GetStartTimeUnixNano(), dp.GetTimeUnixNano())
					}
				}
			case *metricpb.Metric_Sum:
				if !d.Sum.GetIsMonotonic() || d.Sum.GetAggregationTemporality() != metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
					t.Errorf("%s: want a monotonic cumulative sum", m.GetName())
				}
				for _, dp := range d.Sum.GetDataPoints() {
					got[m.GetName()+"{"+attrs(dp.GetAttributes())+"}"] = dp.GetAsInt()
				}
			case *metricpb.Metric_Gauge:
				for _, dp := range d.Gauge.GetDataPoints() {
					got[m.GetName()+"{"+attrs(dp.GetAttributes())+"}"] = dp.GetAsInt()
				}
			default:
				t.Errorf("%s: unexpected data %T", m.GetName(), d)
			}
		}
	}
	return got, res
}

// TestOTLPReceiver pushes a known workload with OTLP to a receiver that
// decodes it with the official types, and checks the auth header, the
// resource, the metric names, their attributes and data points, after each
// of two pushes.
func TestOTLPReceiver(t *testing.T) {
	rc := newOTLPReceiver(t, "123456", testKey)
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(Config{
		APIKey: testKey, OrgSlug: "123456", Endpoint: rc.URL + "/otlp",
		Job: "otlptest", Instance: "host-1", Interval: time.Hour,
		EventBuckets: []float64{1, 10}, LatencyBuckets: []float64{0.5}, Logger: quiet,
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
	req, hdr, n := rc.last()
	if n != 1 {
		t.Fatalf("got %d requests, want 1", n)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("123456:"+testKey.Reveal()))
	if got := hdr.Get("Authorization"); got != wantAuth {
		t.Errorf("got Authorization %q, want %q", got, wantAuth)
	}
	got, res := otlpPoints(t, req)
	if want := "service.instance.id=host-1,service.name=otlptest"; res != want {
		t.Errorf("got resource %s, want %s", res, want)
	}
	want := map[string]any{
		"event_duration_seconds{event_name=load,status=completed}_count":          uint64(3),
		"event_duration_seconds{event_name=load,status=failed}_count":             uint64(1),
		"event_duration_seconds{event_name=timed,status=completed}_count":         uint64(2),
		"event_duration_seconds{event_name=timed,status=completed}_sum":           25.0,
		"event_duration_seconds{event_name=timed,status=completed}_bucket_counts": "[0 1 1]",
		"event_duration_seconds{event_name=timed,status=completed}_bounds":        "[1 10]",
		"event_duration_seconds{event_name=timed,status=failed}_count":            uint64(0),
		"event_retries_total{event_name=load}":                                    int64(3),
		"event_retries_total{event_name=timed}":                                   int64(0),
		"network_bytes_total{direction=sent,operation=http_request}":              int64(200),
		"network_bytes_total{direction=received,operation=http_request}":          int64(2000),
		"network_latency_seconds{operation=http_request}_count":                   uint64(2),
		"network_latency_seconds{operation=http_request}_bounds":                  "[0.5]",
		// The self-metrics of the Recorder it is attached to: 4 runs and
		// 2 operations went through it.
		"telemetry_publisher_records_published_total{publisher=grafanacloud}":                 int64(6),
		"telemetry_publisher_failed_attempts_total{publisher=grafanacloud}":                   int64(0),
		"telemetry_publisher_records_dropped_total{publisher=grafanacloud,reason=failed}":     int64(0),
		"telemetry_publisher_records_dropped_total{publisher=grafanacloud,reason=queue_full}": int64(0),
		"telemetry_publisher_panics_total{publisher=grafanacloud}":                            int64(0),
		"telemetry_publisher_queue_length{publisher=grafanacloud}":                            int64(0),
		"telemetry_publisher_queue_capacity{publisher=grafanacloud}":                          int64(0),
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: got %v (%T, present %v), want %v (%T)", k, g, g, ok, w, w)
		}
	}

	// A second push: cumulative values.
	runEvents(t, r, "load", 2, 2, nil)
	runOps(t, r, "http_request", 1, 100, 1000)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	req, _, n = rc.last()
	if n != 2 {
		t.Fatalf("got %d requests, want 2", n)
	}
	got, _ = otlpPoints(t, req)
	want = map[string]any{
		"event_duration_seconds{event_name=load,status=completed}_count":      uint64(5),
		"event_retries_total{event_name=load}":                                int64(7),
		"network_bytes_total{direction=sent,operation=http_request}":          int64(300),
		"network_latency_seconds{operation=http_request}_count":               uint64(3),
		"telemetry_publisher_records_published_total{publisher=grafanacloud}": int64(9),
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: got %v (present %v), want %v", k, g, ok, w)
		}
	}
	if s := pub.Stats(); s.Pushes != 2 || s.FailedAttempts != 0 {
		t.Errorf("got stats %+v, want 2 pushes, no failures", s)
	}
}

// TestOTLPEndpoint pushes to the OTLP endpoint named by the environment
// variable GRAFANA_CLOUD_OTLP_URL, such as a Prometheus 3 started with
// --web.enable-otlp-receiver (http://127.0.0.1:9090/api/v1/otlp) or a Grafana
// Cloud gateway, with the credentials in GRAFANA_CLOUD_INSTANCE_ID and
// GRAFANA_CLOUD_API_KEY (any, if the endpoint does not check them). With
// GRAFANA_CLOUD_PROMETHEUS_URL set as well, it then queries that Prometheus
// for the values.
func TestOTLPEndpoint(t *testing.T) {
	endpoint := os.Getenv("GRAFANA_CLOUD_OTLP_URL")
	if endpoint == "" {
		t.Skip("skipping: set GRAFANA_CLOUD_OTLP_URL to an OTLP endpoint, e.g. a Prometheus 3 run with --web.enable-otlp-receiver: http://127.0.0.1:9090/api/v1/otlp")
	}
	user := cmp.Or(os.Getenv("GRAFANA_CLOUD_INSTANCE_ID"), "0")
	key := telemetry.NewSecret(cmp.Or(os.Getenv("GRAFANA_CLOUD_API_KEY"), "none"))
	instance := fmt.Sprintf("otlp-test-%d", time.Now().UnixNano())
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(Config{APIKey: key, OrgSlug: user, Endpoint: endpoint, Job: "eventpipeline-test",
		Instance: instance, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Protocol() != OTLP {
		t.Fatalf("GRAFANA_CLOUD_OTLP_URL %s selects %s, want OTLP", endpoint, pub.Protocol())
	}
	if err := r.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}
	runEvents(t, r, "load", 3, 1, nil)
	runOps(t, r, "http_request", 2, 100, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("push to %s: %v", endpoint, err)
	}
	if s := pub.Stats(); s.Pushes != 1 {
		t.Errorf("got stats %+v, want 1 push", s)
	}
	if promURL := os.Getenv("GRAFANA_CLOUD_PROMETHEUS_URL"); promURL != "" {
		prom := testutil.ConnectPrometheus(t, promURL)
		sel := `instance="` + instance + `"`
		wantValues(t, prom, map[string]float64{
			`event_duration_seconds_count{` + sel + `,event_name="load",status="completed"}`: 3,
			`event_retries_total{` + sel + `,event_name="load"}`:                             3,
			`network_bytes_total{` + sel + `,operation="http_request",direction="sent"}`:     200,
		})
	}
}

// TestOTLPLabelValuesBounded checks that OTLP attributes carry the bounded
// form of event names and operations: a 256 KiB name, names that differ
// only in invalid UTF-8 and a name really "_overflow" each get a point of
// their own, no attribute longer than label.MaxLen.
func TestOTLPLabelValuesBounded(t *testing.T) {
	rc := newOTLPReceiver(t, "1", testKey)
	pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: rc.URL + "/otlp", Interval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	long := strings.Repeat("n", 256<<10)
	names := []string{long, long + "x", "a\xff", "a\xfe", OverflowLabelValue}
	ctx := context.Background()
	for i, name := range names {
		for range i + 1 {
			pub.PublishEventMetrics(ctx, finishedEvent(name, telemetry.StatusCompleted, time.Second, 0))
		}
		pub.PublishNetworkMetrics(ctx, finishedOp(name, time.Second, int64(i+1), 0))
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	req, _, _ := rc.last()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				check := func(kvs []*commonpb.KeyValue) {
					for _, kv := range kvs {
						if v := kv.GetValue().GetStringValue(); len(v) > label.MaxLen || !utf8.ValidString(v) || v == OverflowLabelValue {
							t.Errorf("%s: attribute %s=%.40q... (%d bytes), want valid UTF-8 of at most %d bytes, not %s",
								m.GetName(), kv.GetKey(), v, len(v), label.MaxLen, OverflowLabelValue)
						}
					}
				}
				for _, dp := range m.GetHistogram().GetDataPoints() {
					check(dp.GetAttributes())
				}
				for _, dp := range m.GetSum().GetDataPoints() {
					check(dp.GetAttributes())
				}
			}
		}
	}
	got, _ := otlpPoints(t, req)
	for i, name := range names {
		v := metricdef.LabelValue(name)
		if c := got["event_duration_seconds{event_name="+v+",status=completed}_count"]; c != uint64(i+1) {
			t.Errorf("event %.20q: got count %v, want %d", name, c, i+1)
		}
		if c := got["network_bytes_total{direction=sent,operation="+v+"}"]; c != int64(i+1) {
			t.Errorf("operation %.20q: got %v bytes sent, want %d", name, c, i+1)
		}
	}
}
