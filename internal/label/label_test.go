package label

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValue(t *testing.T) {
	long := strings.Repeat("a", 256*1024)
	tests := []struct {
		name string
		in   string
		same bool // returned unchanged
	}{
		{"short", "load_orders", true},
		{"empty", "", true},
		{"max", strings.Repeat("x", MaxLen), true},
		{"one over", strings.Repeat("x", MaxLen+1), false},
		{"huge", long, false},
		{"invalid utf-8", "bad\xffname", false},
		{"multibyte at the cut", strings.Repeat("é", MaxLen), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Value(tc.in)
			if tc.same && got != tc.in {
				t.Fatalf("Value(%q) = %q, want it unchanged", tc.in, got)
			}
			if len(got) > MaxLen || !utf8.ValidString(got) {
				t.Fatalf("Value gave %d bytes, valid UTF-8 %v; want at most %d valid bytes", len(got), utf8.ValidString(got), MaxLen)
			}
			if again := Value(tc.in); again != got {
				t.Fatalf("Value is not stable: %q then %q", got, again)
			}
		})
	}
}

func TestValueKeepsDistinct(t *testing.T) {
	a, b := strings.Repeat("a", 300)+"1", strings.Repeat("a", 300)+"2"
	if Value(a) == Value(b) {
		t.Errorf("two long values that differ at the end give the same label %q", Value(a))
	}
	if Value("x\xff") == Value("x\xfe") {
		t.Errorf("values that differ only in invalid bytes give the same label %q", Value("x\xff"))
	}
	if Value("x\xff") == "x\uFFFD" {
		t.Error("an invalid value gives the same label as the valid value it is repaired to")
	}
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{"", "a", "bad\xff", strings.Repeat("é", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Value(s)
		if len(got) > MaxLen || !utf8.ValidString(got) {
			t.Fatalf("Value(%q) = %q: %d bytes, valid %v", s, got, len(got), utf8.ValidString(got))
		}
		if len(s) <= MaxLen && utf8.ValidString(s) && got != s {
			t.Fatalf("Value(%q) = %q, want it unchanged", s, got)
		}
	})
}

func BenchmarkValueUnchanged(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Value("load_orders")
	}
}
