package safetext

import (
	"testing"
	"unicode/utf8"
)

func TestVisible(t *testing.T) {
	tests := []struct {
		in        string
		keepLines bool
		want      string
	}{
		{"plain text, with \\ and é", false, "plain text, with \\ and é"},
		{"a\nb\tc", false, `a\nb\tc`},
		{"a\nb\tc", true, "a\nb\tc"},
		{"\x1b[2Jcleared", false, `\x1b[2Jcleared`},
		{"bad \x9b byte", false, `bad \x9b byte`},
		{"rtl \u202eevil", false, `rtl \u202eevil`},
		{"line\u2028sep\u2029", false, `line\u2028sep\u2029`},
		{"del\x7f c1\u0085", false, `del\x7f c1\u0085`},
		{"non\uFFFEchar", false, `non\ufffechar`},
		{"\r", true, `\r`},
	}
	for _, tc := range tests {
		got := Visible(tc.in, tc.keepLines)
		if got != tc.want {
			t.Errorf("Visible(%q, %v) = %q, want %q", tc.in, tc.keepLines, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Visible(%q) is not valid UTF-8", tc.in)
		}
	}
}

func FuzzVisible(f *testing.F) {
	f.Add("a\x1b\u202e\xff", false)
	f.Fuzz(func(t *testing.T, s string, keep bool) {
		got := Visible(s, keep)
		if !utf8.ValidString(got) {
			t.Fatalf("Visible(%q) = %q, not valid UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 && !(keep && (r == '\n' || r == '\t')) || r == 0x7f || r == '\u202e' || r == '\uFFFE' {
				t.Fatalf("Visible(%q) = %q keeps %U", s, got, r)
			}
		}
	})
}
