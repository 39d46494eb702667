package retry

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"spaces", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"huge", "99999999999", 24 * time.Hour},
		{"date", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"far date", now.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
		{"past date", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"fraction", "1.5", 0},
		{"garbage", "soon", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("ParseRetryAfter(%q): got %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseRetryAfter checks that any header value gives a wait between 0
// and 24 hours, and that a number of seconds is read back exactly.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "3", " 120 ", "-1", "1.5", "Sun, 01 Mar 2026 12:00:30 GMT", "garbage", "99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := ParseRetryAfter(v, now)
		if d < 0 || d > 24*time.Hour {
			t.Errorf("ParseRetryAfter(%q) = %v, want 0 to 24h", v, d)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n <= 86400 && d != time.Duration(n)*time.Second {
			t.Errorf("ParseRetryAfter(%q) = %v, want %ds", v, d, n)
		}
	})
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second} {
		for range 100 {
			if got := Backoff(100*time.Millisecond, time.Second, n); got < want/2 || got > want {
				t.Fatalf("Backoff(100ms, 1s, %d) = %v, want %v to %v", n, got, want/2, want)
			}
		}
	}
	if got := Backoff(0, time.Second, 3); got != 0 {
		t.Errorf("Backoff with no initial wait = %v, want 0", got)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep(1ms) did not wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Error("Sleep with an ended context waited")
	}
}

func TestRetryableStatus(t *testing.T) {
	for code, want := range map[int]bool{200: false, 400: false, 401: false, 408: true, 404: false, 429: true, 500: true, 503: true, 599: true} {
		if got := RetryableStatus(code); got != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestBackoffJitter(t *testing.T) {
	none := func(time.Duration) time.Duration { return 0 }
	most := func(b time.Duration) time.Duration { return b - 1 }
	wild := func(b time.Duration) time.Duration { return 10 * b }
	tests := []struct {
		name   string
		n      int
		jitter func(time.Duration) time.Duration
		want   time.Duration
	}{
		{"first retry, no jitter", 1, none, 100 * time.Millisecond},
		{"second retry doubles", 2, none, 200 * time.Millisecond},
		{"capped at max", 10, none, time.Second},
		{"most jitter takes half off", 2, most, 100 * time.Millisecond},
		{"out-of-range jitter is clamped", 2, wild, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BackoffJitter(100*time.Millisecond, time.Second, tc.n, tc.jitter); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := BackoffJitter(0, time.Second, 1, none); got != 0 {
		t.Errorf("zero initial: got %v, want 0", got)
	}
}

func TestPolicyNext(t *testing.T) {
	const ms = time.Millisecond
	none := func(time.Duration) time.Duration { return 0 }
	p := Policy{InitialBackoff: 10 * ms, MaxBackoff: 50 * ms, MaxElapsed: 100 * ms}
	tests := []struct {
		name          string
		p             Policy
		n             int
		elapsed, hint time.Duration
		want          time.Duration
		again         bool
	}{
		{"first retry", p, 1, 0, 0, 10 * ms, true},
		{"doubling", p, 3, 30 * ms, 0, 40 * ms, true},
		{"capped", p, 5, 60 * ms, 0, 40 * ms, true},
		{"cut at the deadline", p, 4, 90 * ms, 0, 10 * ms, true},
		{"deadline passed", p, 4, 100 * ms, 0, 0, false},
		{"hint", p, 1, 0, 30 * ms, 30 * ms, true},
		{"hint capped", p, 1, 0, time.Second, 50 * ms, true},
		{"hint cut at the deadline", p, 2, 80 * ms, time.Second, 20 * ms, true},
		{"max attempts", Policy{MaxAttempts: 2}, 2, 0, 0, 0, false},
		{"below max attempts", Policy{MaxAttempts: 2}, 1, 0, 0, DefaultInitialBackoff, true},
		{"defaults", Policy{}, 7, 0, 0, DefaultMaxBackoff, true},
		{"default window", Policy{}, 1, DefaultMaxElapsed, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, again := tc.p.Next(tc.n, tc.elapsed, tc.hint, none)
			if got != tc.want || again != tc.again {
				t.Errorf("Next(%d, %v, %v) = %v, %v; want %v, %v", tc.n, tc.elapsed, tc.hint, got, again, tc.want, tc.again)
			}
		})
	}
}

// TestBackoffNoOverflow checks that the backoff never shrinks as retries
// go on, up to a limit that doubling would overflow (a MaxBackoff of
// math.MaxInt64, meaning "no cap"): the doubling wrapped around and gave
// waits of 0 from the 38th retry of 100ms on, and from the 2nd of an
// initial wait over half the limit.
func TestBackoffNoOverflow(t *testing.T) {
	none := func(time.Duration) time.Duration { return 0 }
	for _, initial := range []time.Duration{100 * time.Millisecond, math.MaxInt64/2 + 1, math.MaxInt64} {
		prev := time.Duration(0)
		for n := 1; n <= 100; n++ {
			got := BackoffJitter(initial, math.MaxInt64, n, none)
			if got < prev {
				t.Fatalf("BackoffJitter(%v, MaxInt64, %d) = %v, want at least %v, the wait of retry %d", initial, n, got, prev, n-1)
			}
			prev = got
		}
		if prev != math.MaxInt64 {
			t.Errorf("BackoffJitter(%v, MaxInt64, 100) = %v, want the limit", initial, prev)
		}
	}
	if got, _ := (Policy{MaxBackoff: math.MaxInt64, MaxElapsed: math.MaxInt64}).Next(40, time.Minute, 0, none); got <= 0 {
		t.Errorf("Next after retry 40 with no cap: got %v, want a positive wait", got)
	}
}
