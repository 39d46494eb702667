package elasticsearch

import (
	"strconv"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
)

// FuzzIndexPrefix checks that every prefix the Config accepts makes index
// names (and template patterns) that the stand-in, which follows
// Elasticsearch's rules, accepts too.
func FuzzIndexPrefix(f *testing.F) {
	for _, s := range []string{"event-pipeline-metrics", "a", "Upper", "_x", "a b", "a:b", "é", "a\x00", ".", "..", "-x", "x*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkIndexPrefix(p) != nil {
			return
		}
		for _, name := range []string{p + eventIndexPart + "2026.01.01", p + networkIndexPart + "2026.01.01"} {
			if why := esfake.ValidIndexName(name); why != "" {
				t.Errorf("prefix %q accepted, but index %q is invalid: %s", p, name, why)
			}
		}
	})
}

// FuzzParseRetryAfter checks that any header value gives a wait that is
// never negative, and that a number of seconds is read back exactly.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "3", " 120 ", "-1", "1.5", "Sun, 01 Mar 2026 12:00:30 GMT", "garbage", "99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 {
			t.Errorf("parseRetryAfter(%q) = %v, want >= 0", v, d)
		}
		if n, err := strconv.ParseUint(v, 10, 32); err == nil && d != time.Duration(n)*time.Second {
			t.Errorf("parseRetryAfter(%q) = %v, want %ds", v, d, n)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"spaces", " 7 ", 7 * time.Second},
		{"date", "Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"past date", "Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"negative", "-1", 0},
		{"garbage", "soon", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorSummary(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"object", `{"error":{"type":"security_exception","reason":"missing credentials"},"status":401}`, "security_exception: missing credentials"},
		{"string", `{"error":"Content-Type header [text/plain] is not supported","status":406}`, "Content-Type header [text/plain] is not supported"},
		{"not JSON", "<html>bad gateway</html>", "<html>bad gateway</html>"},
		{"empty", "", "(empty body)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorSummary([]byte(tc.body)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
