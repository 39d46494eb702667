package grafanacloud

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// verbs are the fmt verbs (with flags) tried on every value that holds a
// secret.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10v", "%-40s", "% x", "%#x", "%+q", "%#q", "%p"}

// TestSecretNeverPrinted checks that the API key (and the Authorization
// header made from it) shows in no fmt verb of the Config, a *Config, the
// Secret, the *Publisher or a struct holding them, in no JSON, in no
// log/slog output (text or JSON) and in no error, including those of a push
// rejected with 401, with either protocol.
func TestSecretNeverPrinted(t *testing.T) {
	var logs bytes.Buffer
	jsonLog := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	textLog := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	auth := base64.StdEncoding.EncodeToString([]byte("123456:" + testKey.Reveal()))

	for _, path := range []string{"/api/prom/push", "/otlp"} {
		t.Run(path, func(t *testing.T) {
			cfg := Config{APIKey: testKey, OrgSlug: "123456", Endpoint: srv.URL + path, Logger: jsonLog}
			p, err := NewPublisher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
			flushErr := p.Flush(context.Background())
			var se *StatusError
			if !errors.As(flushErr, &se) || se.Code != http.StatusUnauthorized || !telemetry.IsPermanent(flushErr) {
				t.Errorf("got %v, want a permanent *StatusError with code 401", flushErr)
			}
			if gotAuth != "Basic "+auth {
				t.Errorf("got Authorization %q, want basic auth of the key", gotAuth)
			}
			// Before and after Close: a Publisher holds its credentials
			// until it is collected.
			var out []string
			holder := struct {
				C   Config
				PC  *Config
				P   *Publisher
				Key telemetry.Secret
			}{cfg, &cfg, p, cfg.APIKey}
			printAll := func() {
				for _, v := range []any{cfg, &cfg, cfg.APIKey, p, holder, &holder} {
					for _, verb := range verbs {
						out = append(out, fmt.Sprintf(verb, v))
					}
				}
				for _, l := range []*slog.Logger{jsonLog, textLog} {
					l.Info("config", "cfg", cfg, "pcfg", &cfg, "key", cfg.APIKey, "publisher", p, "holder", holder)
					l.LogAttrs(context.Background(), slog.LevelInfo, "attrs", slog.Any("cfg", cfg), slog.Any("publisher", p))
				}
			}
			printAll()
			closeErr := p.Close(context.Background())
			printAll()
			js, err := json.Marshal(struct {
				APIKey telemetry.Secret
				Keys   []telemetry.Secret
			}{cfg.APIKey, []telemetry.Secret{holder.Key, holder.PC.APIKey}})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(js), flushErr.Error(), fmt.Sprint(closeErr), logs.String(), fmt.Sprintf("%+v", p.Stats()))
			for _, s := range out {
				if strings.Contains(s, testKey.Reveal()) || strings.Contains(s, auth) {
					t.Errorf("output reveals the API key: %.300s", s)
				}
			}
			if !strings.Contains(fmt.Sprintf("%v", cfg), "REDACTED") || !strings.Contains(string(js), "REDACTED") {
				t.Errorf("got %v and %s, want REDACTED in place of the key", cfg, js)
			}
		})
	}
	if !strings.Contains(logs.String(), `"status_code":401`) {
		t.Errorf("got logs %s, want the 401 logged", logs.String())
	}
}

// TestOrgSlugNeverQuoted checks that no config error repeats OrgSlug, into
// which a user may have pasted "instance:token" or the token alone, and
// that each error still says what is wrong with it.
func TestOrgSlugNeverQuoted(t *testing.T) {
	const token = "glc_eyJvIjoiOTk5IiwibiI6InB1c2gifQ=="
	tests := []struct {
		name, slug string
		want       string
	}{
		{"instance:token", "123456:" + token, "OrgSlug contains ':'"},
		{"token with space", token + " x", "OrgSlug contains spaces"},
		{"token with newline", token + "\n", "OrgSlug contains spaces or control characters"},
		{"invalid UTF-8", token + "\xff", "OrgSlug is not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every other setting wrong too, so that each error is made.
			p, err := NewPublisher(Config{APIKey: telemetry.NewSecret(" "), OrgSlug: tc.slug, Region: "Mars", Interval: -1, Logger: quiet})
			if err == nil {
				p.Close(context.Background())
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), tc.slug) {
				t.Errorf("error %q quotes OrgSlug", err)
			}
		})
	}
}

// TestQuerySecretNeverShown checks that a secret in the query of Endpoint
// shows in no error and no log line: those of an invalid Config (an OTLP
// Endpoint with a query among them), and, with remote write, the start
// line, a push rejected with 401, a push to a server that is down, and the
// Publisher printed; its value is shown as
// xxxxx.
func TestQuerySecretNeverShown(t *testing.T) {
	const secret = "s3cr3t-in-the-query"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	var out []string
	for _, endpoint := range []string{
		"http://prometheus.example.com/api/prom/push?api_key=" + secret, // http
		"https://logs.example.com/loki/api/v1/push?api_key=" + secret,
		"https://example.com/elsewhere?api_key=" + secret,
		"https://example.com/api/prom/push?api_key=" + secret + "#f",
		"ftp://example.com/api/prom/push?api_key=" + secret,
		"https://otlp-gateway.example.com/otlp?api_key=" + secret, // OTLP: the exporter would not send the query
	} {
		_, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "123456", Endpoint: endpoint, Logger: logger})
		if err == nil {
			t.Errorf("%s: got no error", endpoint)
		}
		out = append(out, fmt.Sprint(err))
	}
	for _, base := range []string{srv.URL, down.URL} {
		for _, path := range []string{"/api/prom/push", "/api/v1/write"} {
			p, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "123456", Endpoint: base + path + "?api_key=" + secret,
				Retry: telemetry.RetryPolicy{MaxAttempts: 1}, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
			flushErr := p.Flush(context.Background())
			if flushErr == nil {
				t.Errorf("%s%s: push succeeded, want an error", base, path)
			}
			logger.Info("values", "publisher", p)
			closeErr := p.Close(context.Background())
			out = append(out, fmt.Sprint(flushErr), fmt.Sprint(closeErr), fmt.Sprintf("%v %s %+v", p, p, p.Stats()))
		}
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
