package asynq

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"testing"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: refused
	}{
		{"1", 1},
		{"1764079200123456789", 1764079200123456789},
		{maxInt64, 1<<63 - 1},
		{"9223372036854775808", 0}, // one over
		{"9999999999999999999", 0},
		{"0000000000000000001", 1},
		{"0000000000000000000", 0},
		{"a764079200123456789", 0},
		{"17a4079200123456789", 0},
		{"1764079200123456 89", 0},
		{"176407920012345678/", 0},
		{"1764079:00123456789", 0},
		{"09223372036854775807", 0},
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"+5", 0},
		{"12a", 0},
		{" 12", 0},
	}
	for _, tc := range tests {
		got, ok := parseTime(tc.in)
		if tc.want == 0 {
			if ok {
				t.Errorf("parseTime(%q): got %v, want refused", tc.in, got)
			}
			continue
		}
		if !ok || got.UnixNano() != tc.want {
			t.Errorf("parseTime(%q): got %v, %v; want %d", tc.in, got.UnixNano(), ok, tc.want)
		}
	}
}

// FuzzParseTime checks parseTime against strconv.ParseInt, and the round
// trip of formatTime.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1", "1764079200123456789", maxInt64, "9223372036854775808", "", "0", "-1", "1e9", "00012"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTime(s)
		n, err := strconv.ParseInt(s, 10, 64)
		digitsOnly := s != "" && s[0] != '+' && s[0] != '-'
		want := err == nil && n > 0 && digitsOnly && len(s) <= len(maxInt64)
		if ok != want || (ok && got.UnixNano() != n) {
			t.Fatalf("parseTime(%q) = %v, %v; strconv says %d, %v", s, got.UnixNano(), ok, n, err)
		}
		if ok {
			if back, _ := parseTime(formatTime(got)); !back.Equal(got) {
				t.Fatalf("round trip of %q: got %v", s, back)
			}
		}
	})
}

// TestParseEight checks parseEight against strconv on every byte value at
// every position of an eight-digit word.
func TestParseEight(t *testing.T) {
	base := []byte("31415926")
	for pos := range 8 {
		for c := range 256 {
			b := slices.Clone(base)
			b[pos] = byte(c)
			got, ok := parseEight(binary.LittleEndian.Uint64(b))
			want, err := strconv.ParseUint(string(b), 10, 64)
			isDigits := !bytes.ContainsFunc(b, func(r rune) bool { return r < '0' || r > '9' })
			if ok != isDigits || (ok && (err != nil || got != want)) {
				t.Fatalf("parseEight(%q) = %d, %v; want %d, %v", b, got, ok, want, isDigits)
			}
		}
	}
}
