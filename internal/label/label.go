// Package label bounds text taken from records (event names, operations,
// statuses) before it becomes a metric label value or a log attribute, so
// that one huge or malformed name cannot blow up every series and log line
// that carries it. It depends on the standard library only and is not part
// of the module's API.
package label

import (
	"hash/fnv"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest value, in bytes, that [Value] returns.
const MaxLen = 128

// hashLen is the length of the suffix that keeps bounded values distinct:
// "~" and 16 hex digits of a 64-bit FNV-1a hash of the original bytes.
const hashLen = 1 + 16

// Value returns s if it is valid UTF-8 of at most [MaxLen] bytes. Otherwise
// it returns a valid UTF-8 string of at most MaxLen bytes: s with invalid
// bytes replaced by U+FFFD, cut at a rune boundary, followed by "~" and a
// hash of the original bytes, so that two different inputs stay different
// (up to a 64-bit hash collision) and the same input always gives the same
// value. Value allocates only when it changes s.
func Value(s string) string {
	if len(s) <= MaxLen && utf8.ValidString(s) {
		return s
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	sum := h.Sum64()
	valid := strings.ToValidUTF8(s, "\uFFFD")
	keep := MaxLen - hashLen
	if len(valid) < keep {
		keep = len(valid)
	}
	for keep > 0 && keep < len(valid) && !utf8.RuneStart(valid[keep]) {
		keep--
	}
	var b strings.Builder
	b.Grow(keep + hashLen)
	b.WriteString(valid[:keep])
	b.WriteByte('~')
	hex := strconv.FormatUint(sum, 16)
	for range 16 - len(hex) {
		b.WriteByte('0')
	}
	b.WriteString(hex)
	return b.String()
}
