package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestDemoPushesToGrafanaCloud runs the demo with the Grafana Cloud flags
// against a local OTLP endpoint that checks the basic-auth credentials.
func TestDemoPushesToGrafanaCloud(t *testing.T) {
	var mu sync.Mutex
	var pushes, refused int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		user, pass, ok := r.BasicAuth()
		mu.Lock()
		defer mu.Unlock()
		if !ok || user != "123456" || pass != "glc_token_for_tests" || r.URL.Path != "/otlp/v1/metrics" {
			refused++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		pushes++
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GRAFANA_CLOUD_API_KEY", "glc_token_for_tests")
	out, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(),
		"--grafana-cloud-instance-id", "123456", "--grafana-cloud-endpoint", srv.URL+"/otlp")
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "glc_token_for_tests") {
		t.Error("the token appears in the output")
	}
	mu.Lock()
	defer mu.Unlock()
	if pushes == 0 || refused != 0 {
		t.Errorf("got %d accepted and %d refused pushes, want at least one accepted and none refused", pushes, refused)
	}
}

func TestDemoGrafanaCloudNeedsToken(t *testing.T) {
	t.Setenv("GRAFANA_CLOUD_API_KEY", "")
	_, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(),
		"--grafana-cloud-instance-id", "123456", "--grafana-cloud-region", "prod-us-east-0")
	if code != 1 || !strings.Contains(errOut, "APIKey") {
		t.Errorf("got exit code %d, stderr %q; want 1 and an error naming APIKey", code, errOut)
	}
}
