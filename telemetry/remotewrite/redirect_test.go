package remotewrite

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestRedirectKeepsCredentials checks that a push answered with a redirect
// to another server (here: plain http, on a host name other than the
// configured one, and on the configured host name but another port) never
// carries the credentials there: the redirect is not followed, and the push
// fails with a permanent error naming the status.
func TestRedirectKeepsCredentials(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []http.Header
	)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
	}))
	t.Cleanup(elsewhere.Close)
	port := elsewhere.URL[strings.LastIndexByte(elsewhere.URL, ':'):]

	tests := []struct {
		name, target string
		cfg          Config
	}{
		{"bearer token, same host name over http", "http://127.0.0.1" + port + "/api/v1/write",
			Config{BearerToken: testToken}},
		{"custom header, other host over http", "http://localhost" + port + "/api/v1/write",
			Config{Headers: map[string]telemetry.Secret{"X-Api-Key": testToken}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tc.target, http.StatusTemporaryRedirect)
			}))
			t.Cleanup(srv.Close)
			cfg := tc.cfg
			cfg.URL = srv.URL + "/api/v1/write"
			cfg.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
			cfg.Interval, cfg.Logger = time.Hour, quiet
			p, err := NewPublisher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close(context.Background()) })
			p.PublishEventMetrics(context.Background(), telemetry.EventMetrics{EventName: "e", TaskID: "t",
				StartTime: time.Now(), EndTime: time.Now(), Status: telemetry.StatusCompleted})
			err = p.Flush(context.Background())
			mu.Lock()
			for _, h := range seen {
				for k, v := range h {
					if strings.Contains(strings.Join(v, " "), testToken.Reveal()) {
						t.Errorf("got the credential in header %s at %s, want it sent only to %s", k, tc.target, cfg.URL)
					}
				}
			}
			seen = nil
			mu.Unlock()
			if err == nil || !telemetry.IsPermanent(err) || !strings.Contains(err.Error(), "307") {
				t.Errorf("got error %v, want a permanent error naming the 307", err)
			}
		})
	}
}
