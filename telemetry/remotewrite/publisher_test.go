package remotewrite

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

var quiet = slog.New(slog.DiscardHandler)

// testToken is a credential that must never show up in output.
var testToken = telemetry.NewSecret("s3cr3t-T0KEN-never-print-me")

const dashboardFile = "../../examples/telemetry/prometheus_dashboard.json"

func TestNewPublisherInvalidConfig(t *testing.T) {
	valid := Config{URL: "http://127.0.0.1:9090/api/v1/write", Logger: quiet}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"missing URL", func(c *Config) { c.URL = "" }, []string{"URL is required"}},
		{"URL with credentials", func(c *Config) { c.URL = "https://u:pw@mimir/api/v1/push" }, []string{"must not contain credentials"}},
		{"credentials over plain http", func(c *Config) {
			c.URL = "http://mimir.internal/api/v1/push"
			c.BearerToken = testToken
		}, []string{"is not https", "AllowInsecure"}},
		{"Password without Username", func(c *Config) { c.Password = testToken }, []string{"Password is set without Username"}},
		{"bearer and basic", func(c *Config) { c.Username, c.Password, c.BearerToken = "u", testToken, testToken }, []string{"cannot be combined"}},
		{"Authorization header and bearer", func(c *Config) {
			c.BearerToken = testToken
			c.Headers = map[string]telemetry.Secret{"authorization": testToken}
		}, []string{"Headers sets Authorization"}},
		{"bad header", func(c *Config) { c.Headers = map[string]telemetry.Secret{"X:Y": testToken} }, []string{"not a valid header name"}},
		{"InsecureSkipVerify", func(c *Config) { c.TLSConfig = &tls.Config{InsecureSkipVerify: true} }, []string{"InsecureSkipVerify"}},
		{"bad external label", func(c *Config) { c.ExternalLabels = map[string]string{"a-b": "x"} }, []string{`"a-b" is not a valid label name`}},
		{"reserved external label", func(c *Config) { c.ExternalLabels = map[string]string{"event_name": "x"} }, []string{`"event_name" is reserved`}},
		{"job as external label", func(c *Config) { c.ExternalLabels = map[string]string{"job": "x"} }, []string{`"job" is reserved`}},
		{"tiny Interval", func(c *Config) { c.Interval = time.Millisecond }, []string{"Interval 1ms is below the minimum 10ms"}},
		{"empty buckets", func(c *Config) { c.EventBuckets = []float64{} }, []string{"EventBuckets is empty"}},
		{"empty WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{} }, []string{"WaitBuckets is empty: leave it nil for the defaults"}},
		{"unsorted WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{2, 1} }, []string{"WaitBuckets are not strictly increasing: 1 after 2"}},
		{"NaN WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{1, math.NaN()} }, []string{"WaitBuckets[1] is NaN: bounds must be finite"}},
		{"infinite WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{math.Inf(1)} }, []string{"WaitBuckets[0] is +Inf: bounds must be finite"}},
		{"invalid Job", func(c *Config) { c.Job = "\xff" }, []string{"Job is not valid UTF-8"}},
		{"Username with a colon", func(c *Config) { c.Username, c.Password = "a:b", testToken }, []string{"Username contains ':' or a control character"}},
		{"Password with a control character", func(c *Config) { c.Username, c.Password = "u", telemetry.NewSecret("pw\n") },
			[]string{"Password or BearerToken holds a control character"}},
		{"HTTPClient and TLSConfig", func(c *Config) { c.HTTPClient, c.TLSConfig = &http.Client{}, &tls.Config{} },
			[]string{"with an HTTPClient of yours, configure TLS on it"}},
		{"negative Interval", func(c *Config) { c.Interval = -time.Second }, []string{"Interval -1s is negative"}},
		{"negative Timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"Timeout -1s is negative"}},
		{"negative Retry field", func(c *Config) { c.Retry.MaxAttempts = -1 }, []string{"Retry: max attempts must not be negative, got -1"}},
		{"external label value not UTF-8", func(c *Config) { c.ExternalLabels = map[string]string{"region": "\xff"} },
			[]string{`ExternalLabels["region"] is not valid UTF-8`}},
		{"negative MaxLabelValues", func(c *Config) { c.MaxLabelValues = -1 }, []string{"MaxLabelValues -1 is negative"}},
		{"CACert without a certificate", func(c *Config) { c.CACert = []byte("not PEM") }, []string{"CACert holds no PEM certificate"}},
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
			if !strings.HasPrefix(err.Error(), "remotewrite: ") || strings.Contains(err.Error(), testToken.Reveal()) {
				t.Errorf("got error %q, want the prefix remotewrite: and no secret", err)
			}
		})
	}
}

// authProxy stands for a receiver that requires credentials, in front of
// a real Prometheus: it forwards requests with the Authorization header
// want and answers 401 to others.
type authProxy struct {
	*httptest.Server
	forwarded, rejected atomic.Int64
	orgID               atomic.Value // the X-Scope-OrgID header of the last request
}

func newAuthProxy(t *testing.T, target, want string) *authProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &authProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.orgID.Store(r.Header.Get("X-Scope-OrgID"))
		if r.Header.Get("Authorization") != want {
			p.rejected.Add(1)
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}
		p.forwarded.Add(1)
		r.URL.Path = "/api/v1/write"
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

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
	testutil.Eventually(t, 30*time.Second, func() error {
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

// TestPrometheus pushes a known workload through a Recorder with remote
// write into a real Prometheus 2.42, behind a proxy that requires the
// bearer token, and checks the values with PromQL, the external label and
// tenant header, and that every query of the Grafana dashboard has data.
func TestPrometheus(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	proxy := newAuthProxy(t, prom.URL, "Bearer "+testToken.Reveal())
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(Config{
		URL: proxy.URL + "/api/v1/push", BearerToken: testToken,
		Headers: map[string]telemetry.Secret{"X-Scope-OrgID": telemetry.NewSecret("tenant-1")},
		Job:     "rwtest", Instance: "one", ExternalLabels: map[string]string{"cluster": "eu-1"},
		Interval: time.Hour, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // two pushes, so that rate() in the dashboard sees an increase
		runEvents(t, r, "load", 4, 1, nil)
		runEvents(t, r, "load", 2, 0, errors.New("timeout"))
		runOps(t, r, "http_request", 3, 100, 1000)
		if err := r.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	sel := `job="rwtest",instance="one",cluster="eu-1"`
	wantValues(t, prom, map[string]float64{
		`event_duration_seconds_count{` + sel + `,event_name="load",status="completed"}`:         8,
		`event_duration_seconds_count{` + sel + `,event_name="load",status="failed"}`:            4,
		`event_duration_seconds_bucket{` + sel + `,event_name="load",status="failed",le="+Inf"}`: 4,
		`event_retries_total{` + sel + `,event_name="load"}`:                                     8,
		`network_bytes_total{` + sel + `,operation="http_request",direction="sent"}`:             600,
		`network_latency_seconds_count{` + sel + `,operation="http_request"}`:                    6,
		`count(event_duration_seconds_bucket{` + sel + `,event_name="load",status="completed"})`: float64(len(DefaultEventBuckets) + 1),
		`telemetry_publisher_records_published_total{` + sel + `,publisher="remotewrite"}`:       18,
	})
	if got, _ := proxy.orgID.Load().(string); got != "tenant-1" {
		t.Errorf("got X-Scope-OrgID %q, want tenant-1", got)
	}
	t.Run("dashboard", func(t *testing.T) {
		for _, q := range testutil.DashboardQueries(t, dashboardFile) {
			t.Run(q.Name, func(t *testing.T) {
				testutil.Eventually(t, 60*time.Second, func() error { return testutil.HasData(ctx, prom, q.Expr) })
			})
		}
	})
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.Pushes < 2 || s.FailedAttempts != 0 || proxy.rejected.Load() != 0 {
		t.Errorf("got stats %+v and %d rejected requests, want every push accepted", s, proxy.rejected.Load())
	}
}

// TestWrongCredentials checks that a push rejected with 401 is not
// retried, and that its error is a permanent *StatusError.
func TestWrongCredentials(t *testing.T) {
	proxy := newAuthProxy(t, "http://127.0.0.1:9", "Bearer right")
	pub, err := NewPublisher(Config{URL: proxy.URL + "/api/v1/write", Username: "u", Password: testToken, Interval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	pub.PublishEventMetrics(context.Background(), telemetry.EventMetrics{EventName: "e", TaskID: "t",
		StartTime: time.Now(), EndTime: time.Now(), Status: telemetry.StatusCompleted})
	err = pub.Flush(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || !telemetry.IsPermanent(err) || se.Temporary() {
		t.Errorf("got %v, want a permanent *StatusError 401", err)
	}
	if n := proxy.rejected.Load(); n != 1 {
		t.Errorf("got %d requests, want 1 (no retry)", n)
	}
	if strings.Contains(err.Error(), testToken.Reveal()) {
		t.Errorf("error %q reveals the password", err)
	}
}

// TestConformance runs the conformance kit against Publishers pushing to a
// real Prometheus, each with an instance label of its own, and reads what
// was delivered back with PromQL.
func TestConformance(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	n := 0
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		n++
		return NewPublisher(Config{URL: prom.RemoteWriteURL(), Job: "conformance", Instance: "c" + strconv.Itoa(n),
			Interval: time.Hour, Logger: quiet})
	}, func() (events, network []string) {
		sel := `job="conformance",instance="c` + strconv.Itoa(n) + `"`
		count := func(q string) int {
			v, err := queryValue(prom, q)
			if err != nil {
				return 0
			}
			return int(v)
		}
		return conformanceIDs(count(`sum(event_duration_seconds_count{` + sel + `,event_name="conformance"})`)),
			conformanceIDs(count(`sum(network_latency_seconds_count{` + sel + `,operation="remote_call"})`))
	})
	if err != nil {
		t.Error(err)
	}
}

// conformanceIDs returns the task ids of the first n records of the
// conformance kit: a metrics backend delivers counts, not task ids.
func conformanceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("conformance-", i)
	}
	return ids
}

// TestSecretNeverPrinted checks that no credential shows in any fmt verb
// of the Config or the Publisher, in a log line, or in an error.
func TestSecretNeverPrinted(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	for _, cfg := range []Config{
		{URL: srv.URL, Username: "u", Password: testToken, Logger: logger},
		{URL: srv.URL, BearerToken: testToken, Logger: logger},
		{URL: srv.URL, Headers: map[string]telemetry.Secret{"X-Key": testToken}, Logger: logger},
	} {
		p, err := NewPublisher(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.PublishEventMetrics(context.Background(), telemetry.EventMetrics{EventName: "e", TaskID: "t",
			StartTime: time.Now(), EndTime: time.Now(), Status: telemetry.StatusCompleted})
		flushErr := p.Flush(context.Background())
		var out []string
		for _, v := range []any{cfg, &cfg, p} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
				out = append(out, fmt.Sprintf(verb, v))
			}
		}
		logger.Info("values", "cfg", cfg, "publisher", p)
		closeErr := p.Close(context.Background())
		js, _ := json.Marshal(struct {
			P, B telemetry.Secret
			H    map[string]telemetry.Secret
		}{cfg.Password, cfg.BearerToken, cfg.Headers})
		out = append(out, string(js), fmt.Sprint(flushErr), fmt.Sprint(closeErr), logs.String())
		for _, s := range out {
			if strings.Contains(s, testToken.Reveal()) {
				t.Errorf("output reveals the credential: %.300s", s)
			}
		}
	}
}

// TestQuerySecretNeverShown checks that a secret in the query of URL (a
// token some receivers take as ?api_key=) shows in no error and no log
// line: those of an invalid Config, the start line, a push rejected with
// 401, a push to a server that is down, and the Publisher printed; its
// value is shown as xxxxx. The query is still sent.
func TestQuerySecretNeverShown(t *testing.T) {
	const secret = "s3cr3t-in-the-query"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var gotKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey = r.URL.Query().Get("api_key")
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	var out []string
	for _, u := range []string{
		"http://prometheus.example.com/api/v1/write?api_key=" + secret, // http with credentials
		"http://127.0.0.1:9090/api/v1/write?api_key=" + secret + "#f",
		"ftp://127.0.0.1:9090/api/v1/write?api_key=" + secret,
	} {
		_, err := NewPublisher(Config{URL: u, BearerToken: testToken, Logger: logger})
		if err == nil {
			t.Errorf("%s: got no error", u)
		}
		out = append(out, fmt.Sprint(err))
	}
	for _, base := range []string{srv.URL, down.URL} {
		p, err := NewPublisher(Config{URL: base + "/api/v1/write?api_key=" + secret, Retry: telemetry.RetryPolicy{MaxAttempts: 1}, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
		flushErr := p.Flush(context.Background())
		if flushErr == nil {
			t.Errorf("%s: push succeeded, want an error", base)
		}
		logger.Info("values", "publisher", p)
		closeErr := p.Close(context.Background())
		out = append(out, fmt.Sprint(flushErr), fmt.Sprint(closeErr), fmt.Sprintf("%v %s %+v", p, p, p.Stats()))
	}
	if gotKey != secret {
		t.Errorf("got api_key %q sent, want the query sent", gotKey)
	}
	out = append(out, logs.String())
	for _, s := range out {
		if strings.Contains(s, secret) {
			t.Errorf("output reveals the query's secret: %.400s", s)
		}
	}
	if !strings.Contains(logs.String(), "api_key=xxxxx") {
		t.Errorf("got logs %s, want the URL shown with its query value redacted", logs.String())
	}
}
