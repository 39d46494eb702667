package testutil

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPrometheusYAML(t *testing.T) {
	tests := []struct {
		name string
		cfg  PrometheusConfig
		want string
	}{
		{
			name: "no targets",
			cfg:  PrometheusConfig{ScrapeInterval: time.Second},
			want: "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs: []\n",
		},
		{
			name: "targets and rules",
			cfg:  PrometheusConfig{ScrapeInterval: 2 * time.Second, MetricsPath: "/m", Targets: []string{"127.0.0.1:1", "127.0.0.1:2"}, RuleFiles: []string{"/r.yml"}},
			want: "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\nrule_files:\n  - \"/r.yml\"\n" +
				"scrape_configs:\n  - job_name: eventpipeline\n    metrics_path: \"/m\"\n    static_configs:\n      - targets:\n" +
				"          - \"127.0.0.1:1\"\n          - \"127.0.0.1:2\"\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := prometheusYAML(tc.cfg); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestStartPrometheus(t *testing.T) {
	p := StartPrometheus(t, PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	// The receiver answers (400 for an empty body), so the flag was passed.
	resp, err := http.Post(p.RemoteWriteURL(), "application/x-protobuf", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Errorf("POST %s: got 404, want the remote-write receiver", p.RemoteWriteURL())
	}
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q, want one on 127.0.0.1", p.URL)
	}
	v, err := p.Query(context.Background(), "vector(42)")
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || v[0].Value != 42 {
		t.Errorf("vector(42): got %v, want one sample of 42", v)
	}
	if v, err := p.Query(context.Background(), "42"); err != nil || len(v) != 1 || v[0].Value != 42 {
		t.Errorf("scalar 42: got %v, %v; want one sample of 42", v, err)
	}
	if _, err := p.Query(context.Background(), "sum("); err == nil {
		t.Error("a query that does not parse: got no error")
	}
}

func TestBoolComparisons(t *testing.T) {
	tests := []struct{ in, want string }{
		{"x > 0.5", "x > bool 0.5"},
		{"x>=1", "x>= bool 1"},
		{`sum(x{a!="b",c=~"d>e"}) / y < 2`, `sum(x{a!="b",c=~"d>e"}) / y < bool 2`},
		{"(a / b) > 2 * ((c / d) > 0)", "(a / b) > bool 2 * ((c / d) > bool 0)"},
		{"a == bool b", "a == bool b"},
		{"a != b", "a != bool b"},
		{`label_replace(x, "a", ">", "b", "c")`, `label_replace(x, "a", ">", "b", "c")`},
	}
	for _, tc := range tests {
		if got := BoolComparisons(tc.in); got != tc.want {
			t.Errorf("BoolComparisons(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
