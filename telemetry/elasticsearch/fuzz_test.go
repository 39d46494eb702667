package elasticsearch

import (
	"strings"
	"testing"
	"unicode/utf8"

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

// TestErrorSummaryCutsWholeCharacters: a long reason is cut at a character
// boundary, with its length, so errors and log lines stay valid UTF-8 and
// bounded; its control characters are escaped, so that a server's text
// cannot forge a log line.
func TestErrorSummaryCutsWholeCharacters(t *testing.T) {
	reason := `x\u001b[2J\n` + strings.Repeat("é", 400)
	got := errorSummary([]byte(`{"error":{"type":"mapper_parsing_exception","reason":"` + reason + `"}}`))
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "é… [truncated, 832 bytes]") || len(got) > 512 ||
		!strings.HasPrefix(got, `mapper_parsing_exception: x\x1b[2J\n`) {
		t.Errorf("got %q (%d bytes), want valid UTF-8, escaped, cut after a whole é with its length, at most 512 bytes", got, len(got))
	}
}
