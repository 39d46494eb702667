package guess_test

import (
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
)

func TestBudget(t *testing.T) {
	var b guess.Budget
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range guess.Max {
		if !b.Take(start) {
			t.Fatalf("check %d of a full budget refused", i+1)
		}
	}
	if b.Take(start) {
		t.Fatalf("check %d allowed, want the budget empty after %d", guess.Max+1, guess.Max)
	}
	// One check comes back every Window/Max, exactly.
	step := guess.Window / guess.Max
	if b.Take(start.Add(step - time.Nanosecond)) {
		t.Errorf("check allowed %v after the budget emptied, want refused until %v", step-time.Nanosecond, step)
	}
	if !b.Take(start.Add(step)) {
		t.Errorf("check refused %v after the budget emptied, want one back", step)
	}
	if b.Take(start.Add(step)) {
		t.Errorf("second check allowed at %v, want one only", step)
	}
	// A right token gives its check back.
	b.GiveBack()
	if !b.Take(start.Add(step)) {
		t.Errorf("check refused after GiveBack, want allowed")
	}
	// After a whole window, the budget is full again, not fuller.
	later := start.Add(step + 10*guess.Window)
	for i := range guess.Max {
		if !b.Take(later) {
			t.Fatalf("check %d after a long pause refused", i+1)
		}
	}
	if b.Take(later) {
		t.Errorf("check %d after a long pause allowed, want at most %d", guess.Max+1, guess.Max)
	}
	if guess.RetryAfter != "6" {
		t.Errorf("RetryAfter = %q, want 6", guess.RetryAfter)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name, auth, want string
		wantOK           bool
	}{
		{"bearer", "Bearer abc", "abc", true},
		{"lower case", "bearer abc", "abc", true},
		{"upper case", "BEARER abc", "abc", true},
		{"spaces", "Bearer   abc", "abc", true},
		{"empty token", "Bearer ", "", true},
		{"no space", "Bearerabc", "", false},
		{"basic", "Basic abc", "", false},
		{"empty", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := guess.BearerToken(tc.auth)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestSameSecret(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"s3cret", "s3cret", true}, {"s3cret", "s3creT", false}, {"s3cret", "s3cre", false}, {"", "", true}, {"a", "", false}} {
		if got := guess.SameSecret(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSecret(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
