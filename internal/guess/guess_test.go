package guess_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
)

// wrong and right are the comparisons of a wrong and a right token.
func wrong() bool { return false }
func right() bool { return true }

// check is Budget.Check as one result: "not checked", "wrong" or "right".
func check(b *guess.Budget, client string, now time.Time, cmp func() bool) string {
	switch checked, ok := b.Check(client, now, cmp); {
	case !checked:
		return "not checked"
	case ok:
		return "right"
	}
	return "wrong"
}

func TestBudget(t *testing.T) {
	var b guess.Budget
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range guess.Max {
		if got := check(&b, "c", start, wrong); got != "wrong" {
			t.Fatalf("wrong token %d of a full budget: %s", i+1, got)
		}
	}
	for _, cmp := range []func() bool{wrong, right} {
		if got := check(&b, "c", start, cmp); got != "not checked" {
			t.Fatalf("token after %d wrong ones: %s, want not checked", guess.Max, got)
		}
	}
	// One check comes back every Window/Max, exactly.
	step := guess.Window / guess.Max
	if got := check(&b, "c", start.Add(step-time.Nanosecond), wrong); got != "not checked" {
		t.Errorf("%v after the budget emptied: %s, want not checked until %v", step-time.Nanosecond, got, step)
	}
	if got := check(&b, "c", start.Add(step), wrong); got != "wrong" {
		t.Errorf("%v after the budget emptied: %s, want one check back", step, got)
	}
	if got := check(&b, "c", start.Add(step), wrong); got != "not checked" {
		t.Errorf("second check at %v: %s, want one only", step, got)
	}
	// Right tokens take no check.
	later := start.Add(step + 10*guess.Window)
	for i := range 3 * guess.Max {
		if got := check(&b, "c", later, right); got != "right" {
			t.Fatalf("right token %d: %s", i+1, got)
		}
	}
	// After a long pause, the budget is full again, not fuller.
	for i := range guess.Max {
		if got := check(&b, "c", later, wrong); got != "wrong" {
			t.Fatalf("wrong token %d after a long pause: %s", i+1, got)
		}
	}
	if got := check(&b, "c", later, wrong); got != "not checked" {
		t.Errorf("wrong token %d after a long pause: %s, want at most %d", guess.Max+1, got, guess.Max)
	}
	if guess.RetryAfter != "6" {
		t.Errorf("RetryAfter = %q, want 6", guess.RetryAfter)
	}
}

// TestBudgetRightTokensAtOnce checks that right tokens sent at once from
// one client are all checked: a check of a right token takes nothing from
// the budget, even for a moment.
func TestBudgetRightTokensAtOnce(t *testing.T) {
	var b guess.Budget
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var wg sync.WaitGroup
	var notChecked atomic.Int64
	for range 50 {
		wg.Go(func() {
			for range 20 {
				if checked, ok := b.Check("c", now, right); !checked || !ok {
					notChecked.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := notChecked.Load(); n != 0 {
		t.Errorf("%d of 1,000 right tokens sent at once were not checked", n)
	}
}

// TestBudgetGlobal checks the ceiling of wrong tokens from all clients
// together, and that clients that sent a right token lately are not held
// to it.
func TestBudgetGlobal(t *testing.T) {
	var b guess.Budget
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := check(&b, "trusted", now, right); got != "right" {
		t.Fatalf("a right token: %s", got)
	}
	for i := range guess.GlobalMax / guess.Max {
		for range guess.Max {
			if got := check(&b, fmt.Sprintf("10.0.0.%d", i), now, wrong); got != "wrong" {
				t.Fatalf("guesser %d: %s, want checked within the ceiling", i, got)
			}
		}
	}
	for _, cmp := range []func() bool{wrong, right} {
		if got := check(&b, "new", now, cmp); got != "not checked" {
			t.Errorf("a new client after %d wrong tokens from all: %s, want not checked", guess.GlobalMax, got)
		}
	}
	if got := check(&b, "trusted", now, right); got != "right" {
		t.Errorf("a client that sent a right token: %s, want right", got)
	}
	if got := check(&b, "trusted", now, wrong); got != "wrong" {
		t.Errorf("a wrong token from a trusted client: %s, want checked against its own budget", got)
	}
	// One global check comes back every Window/GlobalMax.
	if got := check(&b, "new", now.Add(guess.Window/guess.GlobalMax), right); got != "right" {
		t.Errorf("a new client %v later: %s, want right", guess.Window/guess.GlobalMax, got)
	}
	// Trust lasts TrustFor from the last right token (the one above).
	end := now.Add(guess.TrustFor)
	for _, at := range []time.Time{end.Add(-time.Nanosecond), end} {
		for i := range guess.GlobalMax / guess.Max { // the ceiling reached at that time
			for range guess.Max {
				check(&b, fmt.Sprintf("10.%d.%d.1", at.Nanosecond()%2, i), at, wrong)
			}
		}
	}
	if got := check(&b, "trusted", end.Add(-time.Nanosecond), wrong); got != "wrong" {
		t.Errorf("a trusted client just before its trust ends, the ceiling reached: %s, want checked", got)
	}
	if got := check(&b, "trusted", end, right); got != "not checked" {
		t.Errorf("a client TrustFor after its last right token, the ceiling reached: %s, want not checked", got)
	}
}

// TestBudgetPerClient checks that each client has a budget of its own, so
// that a guesser cannot lock out the clients that know the token; that an
// IPv6 client is known by its /64, which one machine usually has whole;
// and that beyond MaxClients, clients share one budget until the budgets
// of others are full again.
func TestBudgetPerClient(t *testing.T) {
	var b guess.Budget
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	guesser := "198.51.100.7"
	for range guess.Max {
		check(&b, guesser, now, wrong)
	}
	if got := check(&b, guesser, now, wrong); got != "not checked" {
		t.Fatalf("the guesser after Max wrong tokens: %s", got)
	}
	if got := check(&b, "192.0.2.1", now, wrong); got != "wrong" {
		t.Errorf("another client: %s, want checked: budgets are per client", got)
	}
	v6 := func(a string) string { return guess.Client(&http.Request{RemoteAddr: "[" + a + "]:443"}) }
	for range guess.Max {
		check(&b, v6("2001:db8:1:2::1"), now, wrong)
	}
	if got := check(&b, v6("2001:db8:1:2:ffff::9"), now, wrong); got != "not checked" {
		t.Errorf("another address of the same /64: %s, want not checked", got)
	}
	if got := check(&b, v6("2001:db8:1:3::1"), now, wrong); got != "wrong" {
		t.Errorf("a client of another /64: %s, want checked", got)
	}
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1"},
		{"[::1]:80", "::/64"},
		{"", ""},
		{"not an address", "not an address"},
	} {
		if got := guess.Client(&http.Request{RemoteAddr: tc.remote}); got != tc.want {
			t.Errorf("Client(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// TestBudgetMaxClients checks that beyond MaxClients clients in use,
// further clients share one budget, and that clients are forgotten once
// their budgets are full and their trust has ended.
func TestBudgetMaxClients(t *testing.T) {
	var b guess.Budget
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range guess.MaxClients {
		check(&b, fmt.Sprintf("10.%d.%d.1", i>>8, i&255), now, right)
	}
	for i := range guess.Max {
		if got := check(&b, fmt.Sprintf("172.16.0.%d", i), now, wrong); got != "wrong" {
			t.Fatalf("overflow client %d: %s", i+1, got)
		}
	}
	if got := check(&b, "172.16.1.1", now, right); got != "not checked" {
		t.Errorf("a client beyond MaxClients after the shared budget's %d wrong tokens: %s, want not checked", guess.Max, got)
	}
	step := guess.Window / guess.Max
	if got := check(&b, "172.16.1.1", now.Add(step), right); got != "right" {
		t.Errorf("a client beyond MaxClients, a check later: %s, want right", got)
	}
	// Once trust has ended and the budgets are full, the clients are
	// forgotten, and a new client gets a budget of its own.
	forgotten := now.Add(guess.TrustFor + guess.Window)
	if got := check(&b, "192.0.2.99", forgotten, wrong); got != "wrong" {
		t.Errorf("a new client after the others were forgotten: %s, want wrong", got)
	}
	for range guess.Max - 1 {
		check(&b, "192.0.2.99", forgotten, wrong)
	}
	if got := check(&b, "192.0.2.100", forgotten, wrong); got != "wrong" {
		t.Errorf("a second new client: %s, want a budget of its own", got)
	}
}

// TestClientWithoutPort checks that a RemoteAddr that is an IP address
// without a port, as middleware that takes the client's address from a
// proxy's header leaves it (chi's RealIP, for one), is read as one: an
// IPv6 address by its /64 and an IPv4-mapped one as its IPv4 address, so
// that a guesser cannot get a budget for each address of its /64, nor
// two for one IPv4 address.
func TestClientWithoutPort(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := guess.Client(&http.Request{RemoteAddr: tc.remote}); got != tc.want {
			t.Errorf("Client(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// TestBudgetTimeBackwards checks that a check with an earlier time than
// one before it gives no checks back: callers read the clock before they
// take the budget's lock, so concurrent calls can come in out of order,
// and a bucket whose refill time went back would later count the same
// time twice.
func TestBudgetTimeBackwards(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	step := guess.Window / guess.Max
	for _, tc := range []struct {
		name    string
		earlier time.Duration // how much earlier the out-of-order call's time is
	}{
		{"a little", time.Second},
		{"a window", guess.Window},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b guess.Budget
			for range guess.Max {
				check(&b, "c", start, wrong)
			}
			if got := check(&b, "c", start.Add(-tc.earlier), wrong); got != "not checked" {
				t.Fatalf("a call from before the budget emptied: %s, want not checked", got)
			}
			if got := check(&b, "c", start.Add(step-time.Nanosecond), wrong); got != "not checked" {
				t.Errorf("%v after the budget emptied, after an out-of-order call: %s, want not checked until %v", step-time.Nanosecond, got, step)
			}
			if got := check(&b, "c", start.Add(step), wrong); got != "wrong" {
				t.Errorf("%v after the budget emptied: %s, want one check back", step, got)
			}
		})
	}
	// The global budget likewise.
	var b guess.Budget
	for i := range guess.GlobalMax / guess.Max {
		for range guess.Max {
			check(&b, fmt.Sprintf("10.0.0.%d", i), start, wrong)
		}
	}
	check(&b, "late", start.Add(-guess.Window), wrong)
	if got := check(&b, "new", start.Add(guess.Window/guess.GlobalMax-time.Nanosecond), wrong); got != "not checked" {
		t.Errorf("a new client just before a global check came back, after an out-of-order call: %s, want not checked", got)
	}
}

// TestBudgetManySmallRefills checks that checks come back at exactly
// their rate however many calls the time is split into: a guesser whose
// own budget is empty still makes each of its calls refill the global
// one, and sums of many small fractions of a check, each rounded, must
// not add up to a check before its time.
func TestBudgetManySmallRefills(t *testing.T) {
	var b guess.Budget
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for range guess.Max {
		check(&b, "guesser", start, wrong)
	}
	// Until a global check comes back, in calls 2.42µs apart (a step
	// at which rounding added up, with the budget kept in float64).
	step := guess.Window / guess.GlobalMax
	end := start.Add(step - time.Nanosecond)
	for at := start; at.Before(end); at = at.Add(2420 * time.Nanosecond) {
		b.Check("guesser", at, wrong)
	}
	n := 0
	for i := range guess.GlobalMax {
		if check(&b, fmt.Sprintf("10.0.%d.%d", i/guess.Max, i%guess.Max), end, wrong) == "wrong" {
			n++
		}
	}
	if want := guess.GlobalMax - guess.Max; n != want {
		t.Errorf("wrong tokens checked from all clients %v after %d were: %d, want %d (no check back before %v)", step-time.Nanosecond, guess.Max, n, want, step)
	}
}

// TestSum checks that sums compare as their secrets do and never print.
func TestSum(t *testing.T) {
	a, b := guess.SumOf("s3cret"), guess.SumOf("s3cret")
	if !a.Same(b) || a.Same(guess.SumOf("s3creT")) {
		t.Error("Same does not compare as the secrets do")
	}
	hexSum := fmt.Sprintf("%x", [32]byte(a))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		if got := fmt.Sprintf(verb, a); got != "REDACTED" {
			t.Errorf("%s of a Sum: %q, want REDACTED", verb, got)
		}
		if got := fmt.Sprintf(verb, struct{ S guess.Sum }{a}); strings.Contains(got, hexSum[:8]) || strings.Contains(got, fmt.Sprint(a[0])+" ") {
			t.Errorf("%s of a struct holding a Sum: %q shows it", verb, got)
		}
	}
}
