package guess_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
)

func TestBudget(t *testing.T) {
	var b guess.Budget
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range guess.Max {
		if !b.Take("c", start) {
			t.Fatalf("check %d of a full budget refused", i+1)
		}
	}
	if b.Take("c", start) {
		t.Fatalf("check %d allowed, want the budget empty after %d", guess.Max+1, guess.Max)
	}
	// One check comes back every Window/Max, exactly.
	step := guess.Window / guess.Max
	if b.Take("c", start.Add(step-time.Nanosecond)) {
		t.Errorf("check allowed %v after the budget emptied, want refused until %v", step-time.Nanosecond, step)
	}
	if !b.Take("c", start.Add(step)) {
		t.Errorf("check refused %v after the budget emptied, want one back", step)
	}
	if b.Take("c", start.Add(step)) {
		t.Errorf("second check allowed at %v, want one only", step)
	}
	// A right token gives its check back.
	b.GiveBack("c")
	if !b.Take("c", start.Add(step)) {
		t.Errorf("check refused after GiveBack, want allowed")
	}
	// After a whole window, the budget is full again, not fuller.
	later := start.Add(step + 10*guess.Window)
	for i := range guess.Max {
		if !b.Take("c", later) {
			t.Fatalf("check %d after a long pause refused", i+1)
		}
	}
	if b.Take("c", later) {
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
		b.Take(guesser, now)
	}
	if b.Take(guesser, now) {
		t.Fatal("the guesser's budget is not empty after Max checks")
	}
	if !b.Take("192.0.2.1", now) {
		t.Error("another client was refused: budgets are not per client")
	}
	v6 := func(a string) string { return guess.Client(&http.Request{RemoteAddr: "[" + a + "]:443"}) }
	for range guess.Max {
		b.Take(v6("2001:db8:1:2::1"), now)
	}
	if b.Take(v6("2001:db8:1:2:ffff::9"), now) {
		t.Error("another address of the same /64 got a budget of its own")
	}
	if !b.Take(v6("2001:db8:1:3::1"), now) {
		t.Error("a client of another /64 was refused")
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

	// MaxClients clients with a guess each: the next new client shares the
	// overflow budget with the ones after it.
	var c guess.Budget
	for i := range guess.MaxClients {
		c.Take(fmt.Sprintf("10.%d.%d.1", i>>8, i&255), now)
	}
	for i := range guess.Max {
		if !c.Take(fmt.Sprintf("172.16.0.%d", i), now) {
			t.Fatalf("overflow check %d refused", i+1)
		}
	}
	if c.Take("172.16.1.1", now) {
		t.Error("a client beyond MaxClients got a budget of its own while the others are in use")
	}
	// Once the others' budgets are full again (a check back per
	// Window/Max each: one Window/Max for one guess), they are forgotten,
	// and a new client gets a budget of its own.
	later := now.Add(guess.Window / guess.Max)
	if !c.Take("172.16.1.1", later) {
		t.Error("a new client refused after the other clients' budgets refilled")
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
