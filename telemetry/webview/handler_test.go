package webview

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "zero"},
		{name: "set", cfg: Config{RecentRuns: 5, RecentFailures: 2, Window: 2 * time.Minute, SlowThreshold: time.Millisecond, MaxEventNames: 1, MaxStreams: 1, PendingInterval: time.Second}},
		{name: "negative", cfg: Config{RecentRuns: -1, RecentFailures: -1, MaxEventNames: -1, MaxStreams: -1, SlowThreshold: -1, PendingInterval: -1},
			wantErr: []string{"RecentRuns", "RecentFailures", "MaxEventNames", "MaxStreams", "SlowThreshold", "PendingInterval"}},
		{name: "window too short", cfg: Config{Window: 30 * time.Second}, wantErr: []string{"Window"}},
		{name: "window too long", cfg: Config{Window: 2 * time.Hour}, wantErr: []string{"Window"}},
		{name: "window not in minutes", cfg: Config{Window: 90 * time.Second}, wantErr: []string{"Window"}},
	}
	rec, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(rec, tc.cfg)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				h.Close()
				return
			}
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
	t.Run("closed recorder", func(t *testing.T) {
		r, _ := telemetry.NewRecorder()
		r.Close(context.Background())
		if _, err := New(r, Config{}); !errors.Is(err, telemetry.ErrClosed) {
			t.Errorf("got %v, want an error wrapping telemetry.ErrClosed", err)
		}
	})
	t.Run("nil recorder", func(t *testing.T) {
		if _, err := New(nil, Config{}); err == nil {
			t.Error("got nil, want an error")
		}
	})
}

func TestAttachedAsPublisher(t *testing.T) {
	rec, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	h, err := New(rec, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rec.StartEvent("extract", "t1")
	rec.EndEvent("t1", nil)
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ps := rec.PublisherStats()
	if len(ps) != 1 || ps[0].Name != "webview" || ps[0].Synchronous || ps[0].Published != 1 {
		t.Errorf("got publishers %+v, want webview, queued, 1 published", ps)
	}
	if h.Close() != nil || !errors.Is(h.Close(), ErrClosed) {
		t.Error("a second Close did not return ErrClosed")
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.run(t, "extract", "run-1/extract/1", 0, 2, nil)
	f.run(t, "load", "run-1/load/2", 30*time.Millisecond, 0, errors.New("warehouse: disk quota exceeded"))
	f.op(t, "run-1/load/2/call-1", "db.internal", 5432, 100, 4096, errors.New("connection reset"))
	if err := f.rec.StartEvent("transform", "run-1/transform/3"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path       string
		wantStatus int
		want       []string
		notWant    []string
	}{
		{"/", 200, []string{"Overview", "extract", "load", "webview", `chart/throughput.svg?v=`, "retried 2×"}, nil},
		{"/inflight", 200, []string{"1 runs in flight", "run-1/transform/3", "transform"}, nil},
		{"/failed", 200, []string{"warehouse: disk quota exceeded", "run-1/load/2"}, []string{"run-1/extract/1"}},
		{"/slow", 200, []string{"0 of the last 1000", `value="1s"`}, nil},
		{"/slow?threshold=10ms", 200, []string{"1 of the last 1000", "run-1/load/2"}, []string{"run-1/extract/1"}},
		{"/slow?threshold=soon", 400, []string{"is not a duration"}, nil},
		{"/network?threshold=0s", 200, []string{"db.internal:5432", "connection reset", "4.0 KiB"}, nil},
		{"/run?id=run-1/load/2", 200, []string{"disk quota exceeded", "db.internal:5432", "run-1/load/2/call-1"}, nil},
		{"/run?id=run-1/transform/3", 200, []string{"running for", "pending"}, nil},
		{"/run?id=nothing", 404, []string{"No run with this task id"}, nil},
		{"/run", 400, []string{"Give a task id"}, nil},
		{"/login", 200, []string{"needs no token"}, nil},
		{"/nothing", 404, nil, nil},
		{"/static/app.js", 200, []string{"EventSource"}, nil},
		{"/static/style.css", 200, []string{"body"}, nil},
		{"/static/nothing.js", 404, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.get(t, tc.path)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("got status %d, want %d:\n%s", resp.StatusCode, tc.wantStatus, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the page does not contain %q:\n%s", w, body)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("the page contains %q", w)
				}
			}
			h := resp.Header
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") == "" {
				t.Errorf("security headers missing: %v", h)
			}
			if tc.wantStatus == 200 && strings.HasPrefix(tc.path, "/") && !strings.HasPrefix(tc.path, "/static") {
				if got := h.Get("Content-Security-Policy"); got != pageCSP {
					t.Errorf("got CSP %q, want %q", got, pageCSP)
				}
				if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, " on") && strings.Contains(body, "onerror") {
					t.Errorf("the page has inline script or style:\n%s", body)
				}
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"/", "/failed", "/events", "/chart/throughput.svg"} {
			req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader("x"))
			resp, _ := do(t, req)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: got %d, want 405", method, path, resp.StatusCode)
			}
		}
	}
	for _, path := range []string{"/", "/events"} {
		req, _ := http.NewRequest(http.MethodHead, f.srv.URL+path, nil)
		if resp, _ := do(t, req); resp.StatusCode != 200 {
			t.Errorf("HEAD %s: got %d, want 200", path, resp.StatusCode)
		}
	}
}

// TestHTMLEscapes checks the HTML the view sends for hostile record text:
// escaped, and with controls made visible.
func TestHTMLEscapes(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	const name = `<img src=x onerror=alert(1)>`
	f.run(t, name, "t\u202e1\x1b[2J", 0, 0, errors.New("</script><script>alert(2)</script>\nline 2"))
	for _, path := range []string{"/", "/failed", "/slow?threshold=0s"} {
		_, body := f.get(t, path)
		for _, bad := range []string{"<img src=x", "</script><script>", "\u202e", "\x1b"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: the page contains %q", path, bad)
			}
		}
		if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s: the page does not show the escaped event name", path)
		}
		if path != "/" && !strings.Contains(body, `t\u202e1\x1b[2J`) {
			t.Errorf("%s: the task id's controls are not shown as escapes", path)
		}
	}
}

func TestCharts(t *testing.T) {
	c := newClock()
	f := newFixture(t, Config{}, c)
	names := []string{`<img src=x onerror=alert(1)>`, "a]]>b", "tab\there", "bad\xffutf8", strings.Repeat("long", 40)}
	for i, n := range names {
		f.run(t, n, "t"+string(rune('a'+i)), time.Millisecond, 0, nil)
		c.advance(3 * time.Second)
	}
	f.run(t, "load", "failed-1", 0, 0, errors.New("x"))
	for _, chart := range []string{"throughput.svg", "failures.svg", "durations.svg"} {
		t.Run(chart, func(t *testing.T) {
			resp, body := f.get(t, "/chart/"+chart+"?v=1")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || resp.Header.Get("Content-Security-Policy") != chartCSP {
				t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
			}
			texts := svgTexts(t, body)
			if chart == "durations.svg" {
				for _, want := range []string{`<img src=x onerror=alert(1)>`, "a]]>b", `tab\there`, `bad\xffutf8`, "longlonglonglonglonglongl…"} {
					if !contains(texts, want) {
						t.Errorf("no label %q in %q", want, texts)
					}
				}
			}
		})
	}
	if resp, _ := f.get(t, "/chart/other.svg"); resp.StatusCode != 404 {
		t.Errorf("an unknown chart: got %d, want 404", resp.StatusCode)
	}
}

// svgTexts parses the SVG document doc as XML and returns its texts.
func svgTexts(t *testing.T, doc string) []string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var texts []string
	var in bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not valid XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "script" || tok.Name.Local == "foreignObject" {
				t.Errorf("the chart has a %s element", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Name.Local, "on") || strings.Contains(a.Value, "javascript:") {
					t.Errorf("the chart has the attribute %s=%q", a.Name.Local, a.Value)
				}
			}
			in = tok.Name.Local == "text"
		case xml.CharData:
			if in {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			in = false
		}
	}
	return texts
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestToken(t *testing.T) {
	const token = "let-me-in"
	f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
	f.run(t, "extract", "secret-task", 0, 0, nil)

	tests := []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{"page without token", "/", nil, 401},
		{"stream without token", "/events", nil, 401},
		{"chart without token", "/chart/throughput.svg", nil, 401},
		{"run without token", "/run?id=secret-task", nil, 401},
		{"wrong token", "/", []string{"Authorization", "Bearer nope"}, 401},
		{"token as basic auth", "/", []string{"Authorization", "Basic bGV0LW1lLWlu"}, 401},
		{"wrong cookie", "/", []string{"Cookie", sessionCookieName(f.srv.Listener.Addr().String()) + "=" + token}, 401},
		{"bearer token", "/run?id=secret-task", []string{"Authorization", "Bearer " + token}, 200},
		// The scheme is case-insensitive, and one or more spaces follow
		// it (RFC 9110, section 11.4).
		{"lower-case scheme", "/", []string{"Authorization", "bearer " + token}, 200},
		{"upper-case scheme", "/", []string{"Authorization", "BEARER " + token}, 200},
		{"mixed-case scheme", "/", []string{"Authorization", "bEaReR " + token}, 200},
		{"spaces after the scheme", "/", []string{"Authorization", "Bearer   " + token}, 200},
		{"lower-case scheme, wrong token", "/", []string{"Authorization", "bearer nope"}, 401},
		{"tab after the scheme", "/", []string{"Authorization", "Bearer\t" + token}, 401},
		{"no space after the scheme", "/", []string{"Authorization", "Bearer" + token}, 401},
		{"empty bearer", "/", []string{"Authorization", "Bearer"}, 401},
		{"login page", "/login", nil, 200},
		{"static files", "/static/app.js", nil, 200},
		{"any host with a token", "/", []string{"Authorization", "Bearer " + token, "Host", "view.example"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+tc.path, nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				if tc.header[i] == "Host" {
					req.Host = tc.header[i+1]
				} else {
					req.Header.Set(tc.header[i], tc.header[i+1])
				}
			}
			resp, body := do(t, req)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 401 {
				if strings.Contains(body, "secret-task") || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("a 401 with records or without WWW-Authenticate: %v\n%s", resp.Header, body)
				}
			}
			if strings.Contains(body, token) {
				t.Errorf("the response shows the token")
			}
		})
	}

	t.Run("login", func(t *testing.T) {
		post := func(tok string) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := do(t, req)
			if strings.Contains(body, tok) {
				t.Errorf("the login answer shows the token")
			}
			return resp
		}
		if resp := post("wrong"); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("a wrong token: got %d and cookies %v, want 401 and none", resp.StatusCode, resp.Cookies())
		}
		resp := post(token)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "./" {
			t.Fatalf("got %d to %q, want 303 to ./", resp.StatusCode, resp.Header.Get("Location"))
		}
		cs := resp.Cookies()
		if len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Value == token || cs[0].Path != "" {
			t.Fatalf("got cookies %+v, want one HttpOnly, SameSite=Strict cookie without a path that is not the token", cs)
		}
		if r, _ := f.get(t, "/failed", "Cookie", cs[0].String()); r.StatusCode != 200 {
			t.Errorf("with the session cookie: got %d, want 200", r.StatusCode)
		}
	})
}

// TestHandlerNeverPrintsCredentials checks that no fmt verb on a Handler
// shows the token, the key of its sessions or a session cookie's value,
// which open the view as the token does.
func TestHandlerNeverPrintsCredentials(t *testing.T) {
	const token = "let-me-in"
	f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
	cookie := f.session(t, token).Value
	key := f.h.sessionKey.Reveal()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		for name, v := range map[string]any{"Handler": f.h, "session key": f.h.sessionKey} {
			s := fmt.Sprintf(verb, v)
			for _, secret := range []string{token, cookie, fmt.Sprintf("%x", token), fmt.Sprintf("%x", cookie), fmt.Sprintf("%x", key), strings.Trim(fmt.Sprintf("%q", key), `"`)} {
				if strings.Contains(strings.ToLower(s), secret) {
					t.Errorf("%s of the %s shows a credential: %.300s", verb, name, s)
				}
			}
		}
	}
}

// TestLoopbackOnlyWithoutToken: without a token the view answers only
// requests that name a loopback host, against DNS rebinding.
func TestLoopbackOnlyWithoutToken(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"localhost:8080", 200}, {"127.0.0.1", 200}, {"[::1]:80", 200}, {"app.localhost", 200}, {"127.1.2.3:9", 200},
		{"evil.example", 403}, {"evil.example:80", 403}, {"10.0.0.1", 403}, {"localhost.evil.example", 403},
	} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/", nil)
		req.Host = tc.host
		if resp, _ := do(t, req); resp.StatusCode != tc.want {
			t.Errorf("Host %q: got %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
	}
}

// TestStream checks the live updates: an update after a record, the limit
// of streams, and Close ending them.
func TestStream(t *testing.T) {
	f := newFixture(t, Config{MaxStreams: 1}, nil)
	f.h.tick = time.Hour // only records make updates
	resp, err := http.Get(f.srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "retry: 2000" {
		t.Errorf("got %q first, want the retry delay", got)
	}
	next()
	if r, _ := f.get(t, "/events"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a second stream over MaxStreams 1: got %d, want 503", r.StatusCode)
	}
	f.run(t, "extract", "t1", 0, 0, nil)
	if got := next(); got != "event: update" {
		t.Errorf("got %q, want an update event", got)
	}
	if got := next(); got != "data: 1" {
		t.Errorf("got %q, want data: 1 (one record)", got)
	}
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	next() // the blank line ending the event
	if lines.Scan() {
		t.Errorf("after Close the stream goes on: %q", lines.Text())
	}
	if r, _ := f.get(t, "/events"); r.StatusCode != http.StatusNoContent {
		t.Errorf("a stream after Close: got %d, want 204", r.StatusCode)
	}
}

// TestInFlightTakenAtMostEveryInterval checks that the runs in flight are
// taken from the Recorder at most once per PendingInterval.
func TestInFlightTakenAtMostEveryInterval(t *testing.T) {
	c := newClock()
	f := newFixture(t, Config{PendingInterval: 2 * time.Second}, c)
	if _, body := f.get(t, "/inflight"); !strings.Contains(body, "Nothing is running") {
		t.Errorf("got:\n%s", body)
	}
	f.rec.StartEvent("transform", "t1")
	if _, body := f.get(t, "/inflight"); !strings.Contains(body, "Nothing is running") {
		t.Errorf("within the interval: got a fresh list:\n%s", body)
	}
	c.advance(2 * time.Second)
	if _, body := f.get(t, "/inflight"); !strings.Contains(body, "1 runs in flight") || !strings.Contains(body, "t1") {
		t.Errorf("after the interval: got:\n%s", body)
	}
}

// stuckWriter is a ResponseWriter whose Write blocks until release is
// closed, as the write to a client that stopped reading does once the
// socket's buffers are full; entered is closed at the first Write.
type stuckWriter struct {
	header  http.Header
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(b), nil
}

// A client that does not read a chart holds up no one else's charts.
func TestChartSlowClient(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.run(t, "load", "t1", 0, 0, nil)
	for _, chart := range []string{"throughput.svg", "durations.svg"} {
		t.Run(chart, func(t *testing.T) {
			stuck := &stuckWriter{header: http.Header{}, entered: make(chan struct{}), release: make(chan struct{})}
			served := make(chan struct{})
			go func() {
				defer close(served)
				req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/chart/"+chart, nil)
				f.h.ServeHTTP(stuck, req)
			}()
			t.Cleanup(func() { close(stuck.release); <-served })
			<-stuck.entered

			got := make(chan int, 1)
			go func() {
				resp, err := http.Get(f.srv.URL + "/chart/" + chart)
				if err != nil {
					got <- 0
					return
				}
				resp.Body.Close()
				got <- resp.StatusCode
			}()
			select {
			case status := <-got:
				if status != http.StatusOK {
					t.Errorf("the other client: got status %d, want 200", status)
				}
			case <-time.After(30 * time.Second): // generous: it should take milliseconds
				t.Fatal("the other client got no chart while the first did not read its own")
			}
		})
	}
}

// TestTokenGuessesLimited: the view checks at most guess.Max wrong tokens
// (login form or bearer header) per guess.Window; beyond, it answers 429
// without checking, so that the token cannot be guessed by trying many.
// A session cookie still opens the view meanwhile.
func TestTokenGuessesLimited(t *testing.T) {
	const token = "let-me-in"
	c := newClock()
	f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, c)
	post := func(tok string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, _ := do(t, req)
		return resp
	}
	resp := post(token)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: got %d, want 303 with a cookie", resp.StatusCode)
	}
	cookie := resp.Cookies()[0].String()

	for i := range guess.Max {
		if resp := post(fmt.Sprintf("guess-%d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: got %d, want 401", i, resp.StatusCode)
		}
	}
	// The budget is spent: even the right token is not checked now.
	if resp := post(token); resp.StatusCode != http.StatusTooManyRequests || len(resp.Cookies()) != 0 {
		t.Errorf("login after %d wrong tokens: got %d with cookies %v, want 429 and none", guess.Max, resp.StatusCode, resp.Cookies())
	}
	if resp, _ := f.get(t, "/", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("bearer after %d wrong tokens: got %d, want 429", guess.Max, resp.StatusCode)
	}
	if resp, _ := f.get(t, "/", "Cookie", cookie); resp.StatusCode != http.StatusOK {
		t.Errorf("session cookie after %d wrong tokens: got %d, want 200", guess.Max, resp.StatusCode)
	}
	// The guesses came from 127.0.0.1: a client on another address is
	// not locked out.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	defer other.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := other.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("bearer from 127.0.0.2 after %d wrong tokens from 127.0.0.1: got %v, %v; want 200", guess.Max, resp, err)
	} else {
		resp.Body.Close()
	}

	c.advance(guess.Window)
	if resp, _ := f.get(t, "/", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK {
		t.Errorf("bearer a window later: got %d, want 200", resp.StatusCode)
	}
	// Right tokens do not spend the budget.
	for range 2 * guess.Max {
		if resp, _ := f.get(t, "/", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK {
			t.Fatalf("right bearer token: got %d, want 200", resp.StatusCode)
		}
	}
	for i := range guess.Max {
		if resp, _ := f.get(t, "/", "Authorization", fmt.Sprintf("Bearer guess-%d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong bearer %d: got %d, want 401", i, resp.StatusCode)
		}
	}
	if resp := post("one-more"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("login after %d wrong bearer tokens: got %d, want 429", guess.Max, resp.StatusCode)
	}
}

// TestPageNotReadHasDeadline: a client that asks for a page and stops
// reading it does not hold its connection (and the goroutine and buffer
// of the page) forever; the server the command starts has no
// WriteTimeout, which would end the live-update streams.
func TestPageNotReadHasDeadline(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.h.writeTimeout = 100 * time.Millisecond
	long := strings.Repeat("<", maxErrorText) // 4 bytes each once escaped
	for i := range 100 {
		f.run(t, "load", fmt.Sprintf("t%d", i), 0, 0, errors.New(long))
	}
	var mu sync.Mutex
	closed := 0
	srv := httptest.NewUnstartedServer(f.h)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.(*net.TCPConn).SetWriteBuffer(4096)
		}
		if s == http.StateClosed {
			mu.Lock()
			closed++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(conn, "GET /failed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The page (some 800 KB) does not fit in the sockets' buffers; the
	// client reads nothing.
	for deadline := time.Now().Add(browserTimeout); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := closed
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection of a page not read is still open after %v", browserTimeout)
		}
	}
}

// TestThresholdNotEchoed: a threshold that is not a duration is shown back
// in its input only (to be corrected) and quoted in the problem; the text
// of the page speaks of the threshold used, so that a link cannot put
// words (or hidden characters) of its choice into the page's sentences.
func TestThresholdNotEchoed(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.run(t, "load", "t1", 0, 0, nil)
	const bad = "2s\u202e. The view moved: log in at view.example"
	for _, page := range []string{"/slow", "/network"} {
		resp, body := f.get(t, page+"?threshold="+urlQuery(bad))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", page, resp.StatusCode)
		}
		if n := strings.Count(body, bad); n != 1 {
			t.Errorf("%s: the threshold given appears %d times, want once (its input):\n%s", page, n, body)
		}
		if want := "than " + telemetry.DefaultSlowThreshold.String(); !strings.Contains(body, want) {
			t.Errorf("%s: the page does not say it shows runs %s:\n%s", page, want, body)
		}
	}
}

// TestSecurityHeadersOnEveryAnswer: errors, refusals, the login page and
// the static files carry the same protective headers as the pages.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	open := newFixture(t, Config{MaxStreams: 1}, nil)
	guarded := newFixture(t, Config{Token: telemetry.NewSecret("let-me-in")}, nil)
	for range guess.Max {
		guarded.get(t, "/", "Authorization", "Bearer wrong")
	}
	// The one stream of open, held while the others are asked for.
	req, _ := http.NewRequest(http.MethodGet, open.srv.URL+"/events", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()

	for _, tc := range []struct {
		f      *fixture
		method string
		path   string
		host   string
		want   int
	}{
		{open, "GET", "/nothing", "", 404},
		{open, "DELETE", "/", "", 405},
		{open, "GET", "/", "evil.example", 403},
		{open, "GET", "/events", "", 503},
		{open, "GET", "/static/app.js", "", 200},
		{open, "GET", "/chart/nothing.svg", "", 404},
		{open, "GET", "/login", "", 200},
		{guarded, "GET", "/", "", 429},
		{guarded, "GET", "/failed", "", 401},
		{guarded, "POST", "/login", "", 429},
		{guarded, "GET", "/login", "", 200},
	} {
		req, _ := http.NewRequest(tc.method, tc.f.srv.URL+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.f == guarded && tc.want == 429 {
			req.Header.Set("Authorization", "Bearer let-me-in")
		}
		resp, _ := do(t, req)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": pageCSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin",
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s (%d): %s is %q, want %q", tc.method, tc.path, resp.StatusCode, k, got, v)
			}
		}
	}
}

// TestStreamOwnPagesOnly: a browser's request for the stream from a page
// of another origin is refused before it takes one of the streams.
func TestStreamOwnPagesOnly(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	status := func(site string) int {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/events", nil)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // a stream does not end by itself
		return resp.StatusCode
	}
	for _, site := range []string{"cross-site", "same-site", "none"} {
		if got := status(site); got != http.StatusForbidden {
			t.Errorf("Sec-Fetch-Site %s: got %d, want 403", site, got)
		}
		if n := f.h.streams.Load(); n != 0 {
			t.Errorf("Sec-Fetch-Site %s: %d streams open after the refusal", site, n)
		}
	}
	for _, site := range []string{"same-origin", ""} {
		if got := status(site); got != http.StatusOK {
			t.Errorf("Sec-Fetch-Site %q: got %d, want 200", site, got)
		}
	}
}
