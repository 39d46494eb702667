package metricpush

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// FuzzParseURL checks that any URL is either rejected, with an error that
// names the setting and does not repeat a password it holds, or accepted
// as an http(s) URL with a host and without credentials.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:4318", "https://otlp.example.com/otlp", "https://u:s3cretpassword@example.com/",
		"https://u:s3cretpassword@example.com:bad/", "grpc://x:4317", "127.0.0.1:4318", "http:///x", "http://x/#f", "%zz", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL("Endpoint", s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "Endpoint") {
				t.Errorf("error %q does not name the setting", err)
			}
			if pu, perr := url.Parse(s); perr == nil && pu.User != nil {
				if pw, ok := pu.User.Password(); ok && len(pw) >= 6 && !strings.Contains(pu.Redacted(), pw) && strings.Contains(err.Error(), pw) {
					t.Errorf("error %q reveals the password of %q", err, s)
				}
			}
			return
		}
		if u.User != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			t.Errorf("%q: accepted %s", s, u.Redacted())
		}
	})
}

func TestCheckHeader(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"Authorization", "Bearer x", true},
		{"X-Scope-OrgID", "tenant\t1", true},
		{"", "x", false},
		{"X Y", "x", false},
		{"X:Y", "x", false},
		{"X", "a\r\nInjected: 1", false},
	} {
		if msg := CheckHeader("Headers", tc.name, tc.value); (msg == "") != tc.ok || strings.Contains(msg, tc.value) && tc.value != "x" {
			t.Errorf("%q: %q: got %q, want ok %v and the value not quoted", tc.name, tc.value, msg, tc.ok)
		}
	}
}

// TestNewClientRedirects checks that the client of pushes follows a
// redirect within the origin of the request, headers included, and returns
// a redirect elsewhere as the response instead of following it.
func TestNewClientRedirects(t *testing.T) {
	var gotKey atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey.Store(r.Header.Get("X-Api-Key"))
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/push", http.StatusPermanentRedirect)
		case "/away":
			http.Redirect(w, r, other.URL+"/push", http.StatusTemporaryRedirect)
		default:
			w.Header().Set("X-Key-Seen", r.Header.Get("X-Api-Key"))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("body"))
		req.Header.Set("X-Api-Key", "k3y")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("/moved"); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Key-Seen") != "k3y" {
		t.Errorf("same origin: got status %d and key %q, want 200 and the key", resp.StatusCode, resp.Header.Get("X-Key-Seen"))
	}
	if resp := post("/away"); resp.StatusCode != http.StatusTemporaryRedirect || gotKey.Load() != nil {
		t.Errorf("other origin: got status %d and key %v there, want 307 and nothing sent there", resp.StatusCode, gotKey.Load())
	}
}
