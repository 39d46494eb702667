package webview

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// login posts token to the login form of f (with the headers given, in
// pairs) and returns the answer.
func (f *fixture) login(t testing.TB, token string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, _ := do(t, req)
	return resp
}

// session logs in to f with token and returns the one cookie set.
func (f *fixture) session(t testing.TB, token string) *http.Cookie {
	t.Helper()
	resp := f.login(t, token)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: got %d with cookies %v, want 303 with one cookie", resp.StatusCode, resp.Cookies())
	}
	return resp.Cookies()[0]
}

// port returns the port of f's server.
func (f *fixture) port(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// status requests path from f with the cookie c (nil: none) and the
// headers given in pairs ("Host" sets the request's Host), and returns
// the status.
func (f *fixture) status(t testing.TB, path string, c *http.Cookie, header ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		req.AddCookie(c)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, _ := do(t, req)
	return resp.StatusCode
}

// TestSessionCookie checks the cookie the login sets: named after the
// view's port, HttpOnly, SameSite=Strict, with a Max-Age of the session's
// lifetime, a value that is not the token, and good for this server only.
func TestSessionCookie(t *testing.T) {
	const token = "let-me-in"
	f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
	c := f.session(t, token)
	if want := "eventpipeline_webview_" + f.port(t); c.Name != want {
		t.Errorf("cookie name %q, want %q", c.Name, want)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", c)
	}
	if c.Path != "" || c.Domain != "" {
		t.Errorf("cookie path %q and domain %q: want neither, so that it stays with the view's directory and host", c.Path, c.Domain)
	}
	if want := int(DefaultSessionLifetime / time.Second); c.MaxAge != want {
		t.Errorf("cookie Max-Age %d, want %d", c.MaxAge, want)
	}
	if strings.Contains(c.Value, token) {
		t.Errorf("the cookie holds the token")
	}
	if got := f.status(t, "/failed", c); got != http.StatusOK {
		t.Errorf("with the cookie: got %d, want 200", got)
	}

	t.Run("another name", func(t *testing.T) {
		// The value under another view's name does not open this one.
		other := &http.Cookie{Name: "eventpipeline_webview_1", Value: c.Value}
		if got := f.status(t, "/", other); got != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", got)
		}
	})
	t.Run("another host", func(t *testing.T) {
		// The session is bound to the Host it was opened for.
		for _, host := range []string{"localhost:" + f.port(t), "127.0.0.2:" + f.port(t), "LOCALHOST:" + f.port(t)} {
			if got := f.status(t, "/", c, "Host", host); got != http.StatusUnauthorized {
				t.Errorf("Host %s: got %d, want 401", host, got)
			}
		}
	})
	t.Run("tampered", func(t *testing.T) {
		issued, mac, ok := strings.Cut(c.Value, ".")
		if !ok {
			t.Fatalf("cookie value %q: want ISSUED.MAC", c.Value)
		}
		n, err := strconv.ParseInt(issued, 10, 64)
		if err != nil {
			t.Fatalf("cookie value %q: %v", c.Value, err)
		}
		for _, v := range []string{
			strconv.FormatInt(n+int64(time.Hour), 10) + "." + mac, // a later issue time
			issued + "." + strings.Repeat("0", len(mac)),
			issued, "", "." + mac, issued + "." + mac + "0",
		} {
			if got := f.status(t, "/", &http.Cookie{Name: c.Name, Value: v}); got != http.StatusUnauthorized {
				t.Errorf("value %q: got %d, want 401", v, got)
			}
		}
	})
	t.Run("another server with the same token", func(t *testing.T) {
		g := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
		// The cookie of f, renamed for g and sent with f's Host: as a
		// copy of f's cookie replayed to g would be.
		replayed := &http.Cookie{Name: "eventpipeline_webview_" + g.port(t), Value: c.Value}
		if got := g.status(t, "/", replayed, "Host", "127.0.0.1:"+f.port(t)); got != http.StatusUnauthorized {
			t.Errorf("f's session at g: got %d, want 401", got)
		}
		if got := g.status(t, "/", replayed); got != http.StatusUnauthorized {
			t.Errorf("f's session at g, g's Host: got %d, want 401", got)
		}
	})
	t.Run("over TLS", func(t *testing.T) {
		srv := httptest.NewTLSServer(f.h)
		t.Cleanup(srv.Close)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
			t.Errorf("over TLS: got cookies %+v, want one Secure cookie", cs)
		}
	})
}

// TestSessionExpires checks that a session opens the view until just
// before its lifetime has passed, and not at or after it; then the token
// is needed again, and a new login opens a new session.
func TestSessionExpires(t *testing.T) {
	const token = "let-me-in"
	for _, lifetime := range []time.Duration{0, time.Minute, 90 * time.Second} {
		t.Run(lifetime.String(), func(t *testing.T) {
			c := newClock()
			f := newFixture(t, Config{Token: telemetry.NewSecret(token), SessionLifetime: lifetime}, c)
			want := lifetime
			if want == 0 {
				want = DefaultSessionLifetime
			}
			cookie := f.session(t, token)
			if cookie.MaxAge != int(want/time.Second) {
				t.Errorf("Max-Age %d, want %d", cookie.MaxAge, int(want/time.Second))
			}
			c.advance(want - time.Nanosecond)
			for _, path := range []string{"/", "/chart/throughput.svg"} {
				if got := f.status(t, path, cookie); got != http.StatusOK {
					t.Errorf("%s a nanosecond before expiry: got %d, want 200", path, got)
				}
			}
			c.advance(time.Nanosecond)
			for _, path := range []string{"/", "/chart/throughput.svg", "/events"} {
				if got := f.status(t, path, cookie); got != http.StatusUnauthorized {
					t.Errorf("%s at expiry: got %d, want 401", path, got)
				}
			}
			c.advance(time.Hour)
			if got := f.status(t, "/", cookie); got != http.StatusUnauthorized {
				t.Errorf("an hour after expiry: got %d, want 401", got)
			}
			fresh := f.session(t, token)
			if fresh.Value == cookie.Value {
				t.Errorf("a new login gave the expired session again")
			}
			if got := f.status(t, "/", fresh); got != http.StatusOK {
				t.Errorf("after a new login: got %d, want 200", got)
			}
		})
	}
}

// TestSessionOwnOriginOnly: a request with the session cookie made by a
// page of another origin (as a page of another port of the same host can:
// the cookie goes with it) is refused; the view's own pages, the user's
// own navigation and a link followed from elsewhere are served.
func TestSessionOwnOriginOnly(t *testing.T) {
	const token = "let-me-in"
	f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
	c := f.session(t, token)
	own := "http://127.0.0.1:" + f.port(t)
	other := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{"no browser headers (a script with the cookie)", "/", nil, 200},
		{"own page's fetch", "/failed", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Origin", own}, 200},
		{"own page's image", "/chart/throughput.svg", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "no-cors"}, 200},
		{"typed into the address bar", "/", []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate"}, 200},
		{"a link on another port's page", "/failed", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate"}, 200},
		{"another port's image", "/chart/throughput.svg", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}, 403},
		{"another port's fetch", "/failed", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors", "Origin", other}, 403},
		{"another port's no-cors fetch", "/run?id=x", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}, 403},
		{"another origin, no fetch metadata", "/", []string{"Origin", other}, 403},
		{"an opaque origin", "/", []string{"Origin", "null"}, 403},
		{"own origin, another scheme (a TLS proxy in front)", "/", []string{"Origin", "https://127.0.0.1:" + f.port(t)}, 200},
		{"another port's stream", "/events", []string{"Sec-Fetch-Site", "same-site"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.status(t, tc.path, c, tc.header...); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("login from another origin", func(t *testing.T) {
		resp := f.login(t, token, "Origin", other, "Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate")
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("got %d with cookies %v, want 403 and none", resp.StatusCode, resp.Cookies())
		}
		resp = f.login(t, token, "Origin", own, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate")
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
			t.Errorf("from the own login page: got %d with cookies %v, want 303 and one", resp.StatusCode, resp.Cookies())
		}
	})
}

// TestSessionCookieName: the cookie's name carries the port of the Host
// the browser asked, so that views on two ports of one host keep their
// own cookies (browsers share cookies between the ports of a host).
func TestSessionCookieName(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1:8081":     "eventpipeline_webview_8081",
		"127.0.0.1:8082":     "eventpipeline_webview_8082",
		"[::1]:9000":         "eventpipeline_webview_9000",
		"localhost":          "eventpipeline_webview",
		"view.example:443":   "eventpipeline_webview_443",
		"view.example:x":     "eventpipeline_webview",
		"view.example:99999": "eventpipeline_webview",
	} {
		if got := sessionCookieName(host); got != want {
			t.Errorf("%s: got %q, want %q", host, got, want)
		}
	}
}

// TestSessionEndsStream: a live-update stream opened with a session ends
// when the session does: it sends updates until just before the lifetime
// has passed, and at the first wake-up after, it ends without one. A
// stream opened with the bearer token goes on.
func TestSessionEndsStream(t *testing.T) {
	const token = "let-me-in"
	c := newClock()
	f := newFixture(t, Config{Token: telemetry.NewSecret(token), SessionLifetime: time.Minute}, c)
	f.h.tick = time.Hour // only records make updates
	cookie := f.session(t, token)
	open := func(header ...string) (next func() (string, bool), stop func()) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/events", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the stream: got %d, want 200", resp.StatusCode)
		}
		lines := bufio.NewScanner(resp.Body)
		return func() (string, bool) {
			if !lines.Scan() {
				return "", false
			}
			return lines.Text(), true
		}, func() { resp.Body.Close() }
	}
	withSession, stopSession := open("Cookie", cookie.String())
	defer stopSession()
	withBearer, stopBearer := open("Authorization", "Bearer "+token)
	defer stopBearer()
	for _, next := range []func() (string, bool){withSession, withBearer} {
		next() // retry: 2000
		next() // blank line
	}
	c.advance(time.Minute - time.Nanosecond)
	f.run(t, "extract", "before", 0, 0, nil)
	for name, next := range map[string]func() (string, bool){"session": withSession, "bearer": withBearer} {
		if got, _ := next(); got != "event: update" {
			t.Errorf("%s, just before expiry: got %q, want an update", name, got)
		}
		next() // data
		next() // blank line
	}
	c.advance(time.Nanosecond)
	f.run(t, "extract", "at", 0, 0, nil)
	if got, ok := withSession(); ok {
		t.Errorf("session, at expiry: got %q, want the stream's end", got)
	}
	if got, _ := withBearer(); got != "event: update" {
		t.Errorf("bearer, after the session's expiry: got %q, want an update", got)
	}
}

// TestSessionCookieSecureBehindHTTPSProxy checks that the session cookie
// is Secure when the browser logs in over HTTPS through a reverse proxy
// that serves it (the view itself gets plain HTTP): the login form's
// Origin says https. Without Secure, the browser would send the cookie
// over plain HTTP to the host as well. Over plain HTTP, it is not Secure
// (a browser would not keep it).
func TestSessionCookieSecureBehindHTTPSProxy(t *testing.T) {
	const token = "let-me-in"
	f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
	for _, tc := range []struct {
		name, host, origin string
		want               bool
	}{
		{"https proxy", "view.example.com", "https://view.example.com", true},
		{"https proxy, Origin in upper case", "view.example.com", "HTTPS://view.example.com", true},
		{"plain http", "view.example.com", "http://view.example.com", false},
		{"no Origin", "view.example.com", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, _ := do(t, req)
			if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
				t.Fatalf("login: got %d with cookies %v, want 303 with one cookie", resp.StatusCode, resp.Cookies())
			}
			if got := resp.Cookies()[0].Secure; got != tc.want {
				t.Errorf("got Secure %v, want %v", got, tc.want)
			}
		})
	}
}
