package safetext

import (
	"net/url"
	"runtime"
	"strings"
	"testing"
	"unicode"
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
		{"ad\u200bmin", false, `ad\u200bmin`},                               // zero-width space
		{"\ufeffbom soft\u00adhyphen", false, `\ufeffbom soft\u00adhyphen`}, // byte-order mark, soft hyphen
		{"tag\U000E0041", false, `tag\U000e0041`},                           // tag character
		{"joined\u200dname", false, `joined\u200dname`},                     // zero-width joiner
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
			if r < 0x20 && !(keep && (r == '\n' || r == '\t')) || r == 0x7f || r == '\uFFFE' || unicode.Is(unicode.Cf, r) {
				t.Fatalf("Visible(%q) = %q keeps %U", s, got, r)
			}
		}
	})
}

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://otlp.example.com/otlp", "https://otlp.example.com/otlp"},
		{"https://u:pw@h/p?api_key=s3cret&x#frag", "https://u:xxxxx@h/p?api_key=xxxxx&xxxxx#xxxxx"},
		{"https://u@h/", "https://u@h/"},
		{"http://h:9/v1/metrics?token=s3cret", "http://h:9/v1/metrics?token=xxxxx"},
		{"http://h/?a=&b=1&&c", "http://h/?a=&b=xxxxx&&xxxxx"},
		{"http://h/?s3cret", "http://h/?xxxxx"},
		{"http://h/?", "http://h/?"},
		{"http://h/?a=%zz s3cret", "http://h/?a=xxxxx"},
		{"ftp://h/?key=s3cret", "ftp://h/?key=xxxxx"},
		// Unparsable: cut at the query or fragment, or say nothing.
		{"http://h:bad/?key=s3cret", "http://h:bad/?xxxxx"},
		{"http://h/%zz#s3cret", "http://h/%zz#xxxxx"},
		{"http://u:s3cret@h:bad/", "(invalid URL with credentials)"},
	}
	for _, tc := range tests {
		if got := URLString(tc.in); got != tc.want {
			t.Errorf("URLString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := URL(nil); got != "" {
		t.Errorf("URL(nil) = %q, want \"\"", got)
	}
}

// FuzzURLString checks that what URLString shows of a valid URL parses
// back to one whose password, query values and fragment are all redacted,
// with its scheme, host and path unchanged.
func FuzzURLString(f *testing.F) {
	f.Add("https://u:s3cretpw@h/p?api_key=s3cretkey#s3cretfrag")
	f.Add("http://h:bad/?token=s3cretkey")
	f.Add("http://h/?a=1;b=2&c")
	f.Fuzz(func(t *testing.T, s string) {
		got := URLString(s)
		u, err := url.Parse(s)
		if err != nil {
			i := strings.IndexAny(s, "?#")
			if i >= 0 && got != "(invalid URL with credentials)" && got != s[:i+1]+redacted {
				t.Errorf("URLString(%q) = %q, want what comes before the query or fragment", s, got)
			}
			return
		}
		g, err := url.Parse(got)
		if err != nil {
			t.Fatalf("URLString(%q) = %q, which does not parse: %v", s, got, err)
		}
		if pw, ok := g.User.Password(); ok && pw != redacted {
			t.Errorf("URLString(%q) = %q keeps the password", s, got)
		}
		if g.Fragment != "" && g.Fragment != redacted {
			t.Errorf("URLString(%q) = %q keeps the fragment", s, got)
		}
		for _, part := range strings.Split(g.RawQuery, "&") {
			if name, v, ok := strings.Cut(part, "="); ok && v != "" && v != redacted || !ok && part != "" && part != redacted {
				t.Errorf("URLString(%q) = %q keeps the query parameter %q (%q)", s, got, part, name)
			}
		}
		// As url.URL.String shows them (it may add "./" to a path).
		if u, err = url.Parse(u.String()); err != nil {
			return
		}
		if g.Scheme != u.Scheme || g.Host != u.Host || g.EscapedPath() != u.EscapedPath() {
			t.Errorf("URLString(%q) = %q changes the scheme, host or path", s, got)
		}
	})
}

func TestCut(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{strings.Repeat("x", 100), 40, strings.Repeat("x", 14) + "… [truncated, 100 bytes]"}, // the marker is 26 bytes
		{strings.Repeat("é", 50), 39, strings.Repeat("é", 6) + "… [truncated, 100 bytes]"},   // 13 bytes: 6 whole é
		{strings.Repeat("x", 100), 10, "… [trunc"},
		{strings.Repeat("x", 100), 2, ""}, // not even the "…"
		// Not UTF-8: no character boundary within 4 bytes, so cut at n.
		{strings.Repeat("\x80", 100), 40, strings.Repeat("\x80", 14) + "… [truncated, 100 bytes]"},
	}
	for _, tc := range tests {
		got := Cut(tc.s, tc.n)
		if got != tc.want || len(got) > max(tc.n, len(tc.s)) || utf8.ValidString(tc.s) && !utf8.ValidString(got) {
			t.Errorf("Cut(%.20q (%d bytes), %d) = %q, want %q", tc.s, len(tc.s), tc.n, got, tc.want)
		}
	}
}
func TestBody(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  not found\n", "not found"},
		{"bad\nline\x1b[31m", `bad\nline\x1b[31m`},
		{"\xffx", `\xffx`},
	} {
		if got := Body(tc.in); got != tc.want {
			t.Errorf("Body(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := Body(strings.Repeat("a\n", 10_000))
	if len(long) > MaxBody || !strings.HasPrefix(long, `a\na\n`) || !strings.HasSuffix(long, " bytes]") {
		t.Errorf("Body of 20,000 bytes: got %d bytes %.30q…, want at most %d, cut with its marker", len(long), long, MaxBody)
	}
}

// TestBodyMarkerAndCost checks that a Body cut says how long the
// server's text was, not how long it became once escaped, and that it
// escapes only the start of a long text: the OTLP exporters put up to
// 4 MiB of an answer into their error, which escaped whole would take 16
// MiB for a binary one.
func TestBodyMarkerAndCost(t *testing.T) {
	got := Body(strings.Repeat("a\n", 10_000))
	if want := "… [truncated, 19999 bytes]"; !strings.HasSuffix(got, want) {
		t.Errorf("Body of 19,999 bytes and a newline: got …%q, want the marker %q", got[max(0, len(got)-40):], want)
	}
	got = Body(strings.Repeat("é", 300))
	if want := "… [truncated, 600 bytes]"; !strings.HasPrefix(got, "éé") || !strings.HasSuffix(got, want) || len(got) > MaxBody {
		t.Errorf("Body of 600 bytes of é: got %q, want at most %d bytes ending in %q", got, MaxBody, want)
	}
	if testing.Short() {
		return
	}
	binary := strings.Repeat("\xff", 4<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got = Body(binary)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("Body of 4 MiB allocated %d bytes, want at most 64 KiB", n)
	}
	if want := "… [truncated, 4194304 bytes]"; !strings.HasPrefix(got, `\xff\xff`) || !strings.HasSuffix(got, want) || len(got) > MaxBody {
		t.Errorf("Body of 4 MiB of 0xff: got %q, want escapes ending in %q", got, want)
	}
}

// TestBodyStart checks BodyStart, for a text of which only the start
// was read: a marker with the whole length if there was more, none if
// not, white space at the ends of what was read not counting as more.
func TestBodyStart(t *testing.T) {
	for _, tc := range []struct {
		name, start string
		total       int
		want        string
	}{
		{"all read", "out of order\n", 13, "out of order"},
		{"more", "out of order\n", 2000, "out of order… [truncated, 2000 bytes]"},
		{"escaped", "a\x1bb", 3, `a\x1bb`},
		{"total too small", "abc", 1, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BodyStart(tc.start, tc.total); got != tc.want {
				t.Errorf("BodyStart(%q, %d) = %q, want %q", tc.start, tc.total, got, tc.want)
			}
		})
	}
}

// TestBodyStartAtLeast checks BodyStartAtLeast, for a text counted only
// in part: its marker says "at least", even when start is all there is
// to show.
func TestBodyStartAtLeast(t *testing.T) {
	long := strings.Repeat("x", 2*MaxBody)
	for _, tc := range []struct {
		name, start string
		total       int
		want        string
	}{
		{"more", "out of order\n", 2000, "out of order… [truncated, at least 2000 bytes]"},
		{"start only", "out of order", 12, "out of order… [truncated, at least 12 bytes]"},
		{"total too small", "abc", 1, "abc… [truncated, at least 3 bytes]"},
		{"long start", long, 1 << 20, long[:MaxBody-len("… [truncated, at least 1048576 bytes]")] + "… [truncated, at least 1048576 bytes]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BodyStartAtLeast(tc.start, tc.total)
			if got != tc.want || len(got) > MaxBody {
				t.Errorf("BodyStartAtLeast(%.40q, %d) = %q, want %q", tc.start, tc.total, got, tc.want)
			}
		})
	}
}
