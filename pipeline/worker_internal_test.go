package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestTokenComparedInConstantTime checks that every token a request
// carries is compared with crypto/subtle.ConstantTimeCompare, on hashes of
// equal length, so that neither the content nor the length of the token
// leaks through the time of an answer.
func TestTokenComparedInConstantTime(t *testing.T) {
	type call struct{ a, b []byte }
	var calls []call
	saved := compareTokens
	t.Cleanup(func() { compareTokens = saved })
	compareTokens = func(a, b []byte) int {
		calls = append(calls, call{bytes.Clone(a), bytes.Clone(b)})
		return subtle.ConstantTimeCompare(a, b)
	}
	w, err := NewWorker(WorkerConfig{Token: telemetry.NewSecret("s3cret-token")},
		Func("e", func(ctx context.Context, in any) (any, error) { return nil, nil }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token      string
		wantStatus int
	}{{"s3cret-token", 200}, {"s3cret-tokeX", 401}, {"s", 401}, {strings.Repeat("x", 1000), 401}} {
		req := httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"e"}`))
		req.Header.Set("Authorization", "Bearer "+tc.token)
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, req)
		if rec.Code != tc.wantStatus {
			t.Errorf("token %.10q: got %d, want %d", tc.token, rec.Code, tc.wantStatus)
		}
	}
	if len(calls) != 4 {
		t.Fatalf("got %d constant-time comparisons, want 4: one per request", len(calls))
	}
	for _, c := range calls {
		if len(c.a) != 32 || len(c.b) != 32 || bytes.Contains(c.b, []byte("s3cret")) {
			t.Errorf("compared %d and %d bytes, want two SHA-256 sums", len(c.a), len(c.b))
		}
	}
}

// TestWorkerNeverPrintsTokenHash checks that no fmt verb shows the token,
// or the SHA-256 sum the worker compares requests with (unsalted, so that
// a weak token could be found from it offline), on the Worker or on the
// field that holds the sum.
func TestWorkerNeverPrintsTokenHash(t *testing.T) {
	const token = "s3cret-token"
	w, err := NewWorker(WorkerConfig{Token: telemetry.NewSecret(token)},
		Func("e", func(ctx context.Context, in any) (any, error) { return nil, nil }))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	forms := map[string]string{ // the sum (and the token) as fmt may show them
		"token":   token,
		"bytes":   string(sum[:]),
		"hex":     hex.EncodeToString(sum[:]),
		"HEX":     strings.ToUpper(hex.EncodeToString(sum[:])),
		"decimal": strings.Trim(fmt.Sprint(sum[:]), "[]"),
		"Go":      strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", sum[:]), "[]byte{"), "}"),
		"quoted":  strings.Trim(strconv.Quote(string(sum[:])), `"`),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for name, v := range map[string]any{"Worker": w, "tokenHash": w.tokenHash} {
			s := fmt.Sprintf(verb, v)
			for form, f := range forms {
				if strings.Contains(s, f) {
					t.Errorf("%s of the %s shows the %s form of the token's hash: %s", verb, name, form, s)
				}
			}
		}
	}
	// The worker still knows its token.
	req := httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"e"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("right token: got %d, want 200", rec.Code)
	}
}

// TestWorkerServerLogIsBounded checks, in fake time, that the errors of
// the worker's http.Server (a failed TLS handshake, which anyone who
// reaches the port can cause as often as they connect) are logged at most
// 10 a minute, and that the count of those left out is logged with the
// next one logged.
func TestWorkerServerLogIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		w, err := NewWorker(WorkerConfig{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			w.srv.ErrorLog.Printf("http: TLS handshake error from 192.0.2.%d:1: EOF", i)
		}
		var want strings.Builder
		for i := range 10 {
			fmt.Fprintf(&want, "level=WARN msg=\"pipeline: worker server error\" error=\"http: TLS handshake error from 192.0.2.%d:1: EOF\"\n", i)
		}
		if logs.String() != want.String() {
			t.Errorf("got log\n%s\nwant\n%s", logs.String(), want.String())
		}
		logs.Reset()
		time.Sleep(time.Minute - time.Nanosecond)
		w.srv.ErrorLog.Printf("http: TLS handshake error from 192.0.2.101:1: EOF")
		if logs.Len() != 0 {
			t.Errorf("a minute less 1ns later: got log %q, want none", logs.String())
		}
		time.Sleep(time.Nanosecond)
		w.srv.ErrorLog.Printf("http: TLS handshake error from 192.0.2.102:1: EOF")
		if want := "level=WARN msg=\"pipeline: worker server errors not logged\" count=91\n" +
			"level=WARN msg=\"pipeline: worker server error\" error=\"http: TLS handshake error from 192.0.2.102:1: EOF\"\n"; logs.String() != want {
			t.Errorf("a minute later: got log\n%s\nwant\n%s", logs.String(), want)
		}
	})
}
