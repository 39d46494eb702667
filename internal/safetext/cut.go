package safetext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Cut returns s if it has at most n bytes. Otherwise it returns s cut at
// a UTF-8 character boundary and followed by a marker giving the length of
// s, "… [truncated, 1048576 bytes]", in n bytes at most; if n cannot hold
// the marker, the marker alone, cut to n. The telemetry Recorder cuts the
// error text of a record with it (telemetry.WithMaxErrorLength), so that an
// error text cut elsewhere, such as on a span, matches the record's.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	marker := "… [truncated, " + strconv.Itoa(len(s)) + " bytes]"
	if n < len(marker) {
		return cutAtRune(marker, max(n, 0))
	}
	return cutAtRune(s, n-len(marker)) + marker
}

// cutAtRune returns the longest prefix of s of at most n bytes that ends
// at a character boundary. Where s is not valid UTF-8, it cuts at n.
func cutAtRune(s string, n int) string {
	if n >= len(s) { // not reached from Cut, which cuts only what is longer
		return s
	}
	for i := n; i >= 0 && i > n-utf8.UTFMax; i-- {
		if i == 0 || utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

// MaxBody is how many bytes of a server's answer an error keeps ([Body]).
const MaxBody = 512

// Body returns the start of a server's answer body, or of an error text
// that holds one, as an error of the module keeps it for diagnosis:
// trimmed of white space, on one line with every character that
// [Visible] escapes escaped, and cut to MaxBody bytes, with a marker that
// gives the length of the trimmed text as the server sent it, as [Cut]
// writes it. A server's text can then neither fill memory nor forge log
// lines or rewrite a terminal. Only the start of a long text is escaped:
// the work is bounded by MaxBody, not by the length of s.
func Body(s string) string {
	s = strings.TrimSpace(s)
	return BodyStart(s, len(s))
}

// BodyStart is [Body] for a text of which the caller read only the
// start, such as the first MaxBody bytes of an answer: total is the
// length of the whole text, which the marker gives if start is cut or
// total is longer than start. When the caller could not count the whole
// text, [BodyStartAtLeast] says so.
func BodyStart(start string, total int) string {
	return bodyStart(start, total, false)
}

// BodyStartAtLeast is [BodyStart] for a text that the caller counted
// only in part, up to a bound or up to a read error: total is the number
// of bytes counted, a lower bound of its length, and the marker says so
// ("… [truncated, at least 1048577 bytes]"), even if start is all the
// caller read. The marker then never claims a length that was not
// measured.
func BodyStartAtLeast(start string, total int) string {
	return bodyStart(start, total, true)
}

// bodyStart is [BodyStart], or [BodyStartAtLeast] if atLeast.
func bodyStart(start string, total int, atLeast bool) string {
	more := total > len(start) || atLeast
	start = strings.TrimSpace(start)
	total = max(total, len(start))
	if len(start) > MaxBody {
		// Each byte escapes to one byte or more: MaxBody of them fill
		// the answer. A character cut at the end is escaped byte by
		// byte, beyond what the marker leaves.
		start, more = start[:MaxBody], true
	}
	v := Visible(start, false)
	if !more && len(v) <= MaxBody {
		return v
	}
	marker := "… [truncated, " + strconv.Itoa(total) + " bytes]"
	if atLeast {
		marker = "… [truncated, at least " + strconv.Itoa(total) + " bytes]"
	}
	return cutAtRune(v, MaxBody-len(marker)) + marker
}
