package metricpush

import (
	"net/url"
	"strings"
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
