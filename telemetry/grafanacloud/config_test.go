package grafanacloud

import (
	"context"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// testKey is an API key that must never show up in output.
var testKey = telemetry.NewSecret("glc_s3cr3t-T0KEN-never-print-me")

// quiet is a logger that drops everything.
var quiet = slog.New(slog.DiscardHandler)

func TestNewPublisherInvalidConfig(t *testing.T) {
	valid := Config{APIKey: testKey, OrgSlug: "123456", Region: "prod-us-east-0", Logger: quiet}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error, each naming the setting
	}{
		{"missing APIKey", func(c *Config) { c.APIKey = telemetry.Secret{} }, []string{"APIKey is required"}},
		{"APIKey with space", func(c *Config) { c.APIKey = telemetry.NewSecret("abc def") }, []string{"APIKey contains spaces"}},
		{"missing OrgSlug", func(c *Config) { c.OrgSlug = "" }, []string{"OrgSlug is required"}},
		{"OrgSlug with colon", func(c *Config) { c.OrgSlug = "12:34" }, []string{"OrgSlug contains ':'"}},
		{"missing Region and Endpoint", func(c *Config) { c.Region = "" }, []string{"Region or Endpoint is required"}},
		{"malformed Region", func(c *Config) { c.Region = "US East" }, []string{`Region "US East" is malformed`}},
		{"Region without number", func(c *Config) { c.Region = "prod-us-east" }, []string{`Region "prod-us-east" is malformed`}},
		{"malformed Region with Endpoint", func(c *Config) {
			c.Region = "Mars"
			c.Endpoint = "https://otlp-gateway-prod-us-east-0.grafana.net/otlp"
		}, []string{`Region "Mars" is malformed`}},
		{"Endpoint not a URL", func(c *Config) { c.Endpoint = "https://[::1" }, []string{"Endpoint is not a valid URL"}},
		{"Endpoint unknown path", func(c *Config) { c.Endpoint = "https://example.grafana.net/api/metrics" }, []string{"Endpoint", "neither a remote-write URL"}},
		{"Endpoint ftp", func(c *Config) { c.Endpoint = "ftp://example.com/api/prom/push" }, []string{"Endpoint", "must be an http(s) URL"}},
		{"Endpoint no host", func(c *Config) { c.Endpoint = "https:///api/prom/push" }, []string{"Endpoint", "has no host"}},
		{"Endpoint http", func(c *Config) { c.Endpoint = "http://prometheus.example.com/api/prom/push" }, []string{"Endpoint", "is not https", "AllowInsecure"}},
		{"Endpoint with credentials", func(c *Config) { c.Endpoint = "https://123:" + testKey.Reveal() + "@example.com/api/prom/push" }, []string{"Endpoint", "must not contain credentials"}},
		{"negative Interval", func(c *Config) { c.Interval = -time.Second }, []string{"Interval -1s is negative"}},
		{"tiny Interval", func(c *Config) { c.Interval = time.Millisecond }, []string{"Interval 1ms is below the minimum 10ms"}},
		{"Loki Endpoint", func(c *Config) { c.Endpoint = "https://logs-prod-006.grafana.net/loki/api/v1/push" }, []string{"Endpoint", "is a logs or traces URL"}},
		{"negative Timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"Timeout -1s is negative"}},
		{"negative Retry", func(c *Config) { c.Retry.MaxAttempts = -1 }, []string{"Retry: max attempts must not be negative, got -1"}},
		{"invalid Job", func(c *Config) { c.Job = "\xff" }, []string{"Job is not valid UTF-8"}},
		{"invalid Instance", func(c *Config) { c.Instance = "\xff" }, []string{"Instance is not valid UTF-8"}},
		{"negative MaxLabelValues", func(c *Config) { c.MaxLabelValues = -1 }, []string{"MaxLabelValues -1 is negative"}},
		{"empty EventBuckets", func(c *Config) { c.EventBuckets = []float64{} }, []string{"EventBuckets is empty"}},
		{"unsorted LatencyBuckets", func(c *Config) { c.LatencyBuckets = []float64{1, 0.5} }, []string{"LatencyBuckets are not strictly increasing"}},
		{"NaN EventBuckets", func(c *Config) { c.EventBuckets = []float64{math.NaN()} }, []string{"EventBuckets[0] is NaN"}},
		{"empty WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{} }, []string{"WaitBuckets is empty: leave it nil for the defaults"}},
		{"unsorted WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{2, 1} }, []string{"WaitBuckets are not strictly increasing: 1 after 2"}},
		{"NaN WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{1, math.NaN()} }, []string{"WaitBuckets[1] is NaN: bounds must be finite"}},
		{"infinite WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{math.Inf(1)} }, []string{"WaitBuckets[0] is +Inf: bounds must be finite"}},
		{"all missing", func(c *Config) { *c = Config{} }, []string{"APIKey is required", "OrgSlug is required", "Region or Endpoint is required"}},
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
			if !strings.HasPrefix(err.Error(), "grafanacloud: ") {
				t.Errorf("got error %q, want the prefix grafanacloud: ", err)
			}
			if strings.Contains(err.Error(), testKey.Reveal()) {
				t.Errorf("error %q contains the API key", err)
			}
		})
	}
}

func TestEndpointSelectsProtocol(t *testing.T) {
	tests := []struct {
		name          string
		region        string
		endpoint      string
		allowInsecure bool
		protocol      Protocol
		url           string
	}{
		{"region", "prod-us-east-0", "", false, OTLP, "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/metrics"},
		{"region eu", "prod-eu-west-2", "", false, OTLP, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/metrics"},
		{"grafana remote write", "", "https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push", false, RemoteWrite,
			"https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push"},
		{"prometheus remote write", "", "http://127.0.0.1:9090/api/v1/write", false, RemoteWrite, "http://127.0.0.1:9090/api/v1/write"},
		{"mimir push", "", "https://mimir.example.com/push", false, RemoteWrite, "https://mimir.example.com/push"},
		{"endpoint overrides region", "prod-us-east-0", "https://prometheus-prod-24-prod-eu-west-2.grafana.net/api/prom/push", false, RemoteWrite,
			"https://prometheus-prod-24-prod-eu-west-2.grafana.net/api/prom/push"},
		{"otlp gateway", "", "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp", false, OTLP, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/metrics"},
		{"otlp gateway slash", "", "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/", false, OTLP, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/metrics"},
		{"otlp full", "", "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/metrics", false, OTLP, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/metrics"},
		{"prometheus 3 otlp", "", "http://localhost:9090/api/v1/otlp", false, OTLP, "http://localhost:9090/api/v1/otlp/v1/metrics"},
		{"collector", "", "http://[::1]:4318/v1/metrics", false, OTLP, "http://[::1]:4318/v1/metrics"},
		{"insecure allowed", "", "http://collector.internal:4318/v1/metrics", true, OTLP, "http://collector.internal:4318/v1/metrics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Region: tc.region, Endpoint: tc.endpoint,
				AllowInsecure: tc.allowInsecure, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			if got := p.Protocol(); got != tc.protocol {
				t.Errorf("got protocol %s, want %s", got, tc.protocol)
			}
			if got := p.URL(); got != tc.url {
				t.Errorf("got URL %s, want %s", got, tc.url)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Interval != 15*time.Second || c.Timeout != 10*time.Second || c.Job != "eventpipeline" ||
		c.MaxLabelValues != 1000 {
		t.Errorf("got defaults %+v", c)
	}
	if !strings.Contains(c.Instance, ":") {
		t.Errorf("got default instance %q, want <hostname>:<pid>", c.Instance)
	}
	c = Config{Interval: time.Second}.withDefaults()
	if c.Timeout != time.Second {
		t.Errorf("got timeout %v, want it capped at the interval (1s)", c.Timeout)
	}
}

// finishedEvent returns a finished record of the event name with the given
// status, duration and retries.
func finishedEvent(name string, status telemetry.Status, d time.Duration, retries int) telemetry.EventMetrics {
	start := time.Now()
	m := telemetry.EventMetrics{EventName: name, TaskID: "t", StartTime: start, EndTime: start.Add(d), Status: status, RetryCount: retries}
	if status == telemetry.StatusFailed {
		m.Error = "boom"
	}
	return m
}

// finishedOp returns a finished network record.
func finishedOp(op string, d time.Duration, sent, received int64) telemetry.NetworkMetrics {
	start := time.Now()
	return telemetry.NetworkMetrics{TaskID: "t", Operation: op, Host: "db.internal", Port: 5432, StartTime: start,
		EndTime: start.Add(d), Status: telemetry.StatusCompleted, BytesSent: sent, BytesReceived: received}
}

// FuzzParseEndpoint checks that any Endpoint is either rejected, with an
// error that does not repeat a password it holds, or resolved to an
// https (or loopback) URL without credentials and one of the two protocols.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		"https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push",
		"https://otlp-gateway-prod-us-east-0.grafana.net/otlp",
		"http://127.0.0.1:9090/api/v1/write",
		"http://[::1]:4318/v1/metrics",
		"https://123:s3cretpassword@example.com/api/prom/push",
		"https://123:s3cretpassword@example.com:bad/api/prom/push",
		"http://example.com/otlp",
		"ftp://x/push",
		"https://logs.grafana.net/loki/api/v1/push",
		"%zz",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseEndpoint(s, false)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "grafanacloud: Endpoint") {
				t.Errorf("error %q does not name Endpoint", err)
			}
			if u, perr := url.Parse(s); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 6 && !strings.Contains(u.Redacted(), pw) &&
					strings.Contains(err.Error(), pw) {
					t.Errorf("error %q reveals the password of %q", err, s)
				}
			}
			return
		}
		if tg.protocol != RemoteWrite && tg.protocol != OTLP {
			t.Errorf("%q: got protocol %q", s, tg.protocol)
		}
		if tg.url.User != nil || (tg.url.Scheme != "https" && !metricpush.IsLoopback(tg.url.Hostname())) {
			t.Errorf("%q: accepted %s", s, tg.url.Redacted())
		}
	})
}
