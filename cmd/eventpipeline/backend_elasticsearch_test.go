package main

import (
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
)

// TestDemoPublishesToElasticsearch runs the demo with --elasticsearch
// against the Elasticsearch stand-in, with credentials from the
// environment, and checks every record was indexed, in the right indices.
func TestDemoPublishesToElasticsearch(t *testing.T) {
	srv, err := esfake.New(esfake.Options{Username: "elastic", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	t.Setenv("ELASTICSEARCH_USERNAME", "elastic")
	t.Setenv("ELASTICSEARCH_PASSWORD", "s3cret-pass")
	out, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(),
		"--elasticsearch", srv.Addr(), "--elasticsearch-index-prefix", "demo-metrics")
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cret-pass") {
		t.Error("the password appears in the output")
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("requests Elasticsearch would refuse: %v", v)
	}
	var events, network int
	for _, d := range srv.AllDocs() {
		switch {
		case strings.HasPrefix(d.Index, "demo-metrics-event-"):
			events++
		case strings.HasPrefix(d.Index, "demo-metrics-network-"):
			network++
		default:
			t.Errorf("document in unexpected index %s", d.Index)
		}
	}
	// The sample pipeline: 8 event runs and 4 remote calls.
	if events != 8 || network != 4 {
		t.Errorf("indexed %d event and %d network documents, want 8 and 4 (indices %v)", events, network, srv.Indices())
	}
}

func TestDemoElasticsearchBadConfig(t *testing.T) {
	_, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(), "--elasticsearch", "http://[::1")
	if code != 1 || !strings.Contains(errOut, "elasticsearch") {
		t.Errorf("got exit code %d, stderr %q; want 1 and an elasticsearch error", code, errOut)
	}
}

// TestDemoElasticsearchRefusesCredentialsOverHTTP checks that the demo
// refuses to send Elasticsearch credentials in clear text to a host other
// than loopback, names the flag that allows it, and never shows them.
func TestDemoElasticsearchRefusesCredentialsOverHTTP(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"password", map[string]string{"ELASTICSEARCH_USERNAME": "elastic", "ELASTICSEARCH_PASSWORD": "s3cret-pass"}},
		{"api key", map[string]string{"ELASTICSEARCH_API_KEY": "s3cret-pass"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(), "--elasticsearch", "es.example.invalid:9200")
			if code != 1 {
				t.Errorf("exit code: got %d, want 1", code)
			}
			for _, want := range []string{"credentials over plain http", "--elasticsearch-allow-insecure"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
			if strings.Contains(errOut, "s3cret-pass") {
				t.Error("the secret appears in the output")
			}
		})
	}
}
