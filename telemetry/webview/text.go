package webview

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// visible returns s with every character that could hide or disguise text
// replaced by its Go escape (as strconv.Quote writes it): C0 and C1
// controls and DEL (but newlines and tabs if keepLines), bidirectional
// controls, U+2028 and U+2029, and bytes that are not UTF-8 (as \xNN). The
// result is valid UTF-8 and valid in XML, so that it can go into an SVG
// document too. HTML escaping is done after it, by html/template or the SVG
// canvas.
func visible(s string, keepLines bool) string {
	hidden := func(r rune, w int) bool {
		switch {
		case r == utf8.RuneError && w == 1:
			return true
		case r == '\n' || r == '\t':
			return !keepLines
		case r < 0x80:
			return r < 0x20 || r == 0x7f
		}
		return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Bidi_Control, r) ||
			r == '\u2028' || r == '\u2029' || r == '\uFFFE' || r == '\uFFFF'
	}
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if hidden(r, w) {
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
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xf, 16))
		case hidden(r, w):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}
