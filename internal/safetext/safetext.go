// Package safetext makes text taken from records safe to show: on a
// terminal, in a table, in an HTML page or an SVG document; and URLs safe
// to show in logs and errors ([URL]), without the secrets they may hold.
// It imports the standard library only.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Visible returns s with every character that could hide or disguise text
// replaced by its Go escape, as strconv.QuoteRune writes it: C0 and C1
// controls and DEL (newlines and tabs too, unless keepLines), format
// characters (Unicode category Cf: bidirectional controls, zero-width
// spaces and joiners, the byte-order mark, soft hyphens, tag characters),
// U+2028 and U+2029, the noncharacters U+FFFE and U+FFFF, and each byte
// that is not valid UTF-8 (as \xNN). So a name, a task id or an error text
// is shown on one line (unless keepLines), cannot clear a screen, move a
// cursor, forge a row, reverse the text after it or pass for another name
// with an invisible difference, and is valid UTF-8 and valid in XML. Other characters, backslashes included,
// are kept; s is returned unchanged when it has nothing to escape. HTML
// escaping, where needed, comes after it.
func Visible(s string, keepLines bool) string {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if Hidden(r, w, keepLines) {
			break
		}
		i += w
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			const hexDigits = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[s[i]>>4])
			b.WriteByte(hexDigits[s[i]&0xf])
		case Hidden(r, w, keepLines):
			q := strconv.QuoteRune(r) // such as '\n', '\x1b' or '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}

// Hidden reports whether Visible escapes the rune r, decoded from size
// bytes (a size of 1 with utf8.RuneError is a byte that is not UTF-8).
func Hidden(r rune, size int, keepLines bool) bool {
	switch {
	case r == utf8.RuneError && size == 1: // a byte that is not UTF-8, such as a lone 0x9b (CSI)
		return true
	case r == '\n' || r == '\t':
		return !keepLines
	case r < 0x80:
		return r < 0x20 || r == 0x7f
	}
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r) ||
		r == '\u2028' || r == '\u2029' || r == '\uFFFE' || r == '\uFFFF'
}
