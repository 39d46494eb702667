// Package guess bounds the guessing of a secret token sent over HTTP, for
// the servers of the module that check one (the web view, the pipeline
// worker): a [Budget] of wrong tokens per minute for each client and for
// all together,
// the parsing of a bearer token ([BearerToken]) and a comparison whose
// time tells nothing of the secret ([SameSecret]). It imports the standard
// library only.
package guess

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bounds of a [Budget]: at most Max wrong tokens per Window from each
// client; at most GlobalMax per Window from all clients together, but for
// those that sent a right token within TrustFor; and at most MaxClients
// clients with a budget of their own.
const (
	Max        = 10
	GlobalMax  = 100
	Window     = time.Minute
	TrustFor   = time.Hour
	MaxClients = 4096
)

// RetryAfter is the Retry-After header value (in seconds) of an answer to
// a token not checked because the budget is empty: the time in which a
// client's budget gets one check back, 6.
var RetryAfter = strconv.Itoa(int((Window / Max).Seconds()))

// A Budget bounds how many wrong tokens a server checks: [Max] per
// [Window] from each client (a bucket that refills at that rate), so that
// a guesser locks out only itself, not the clients that know the token
// (unless they share its address, as behind one proxy); and [GlobalMax]
// per Window from all clients together, so that a guesser with many
// addresses gains little. A client that sent a right token within
// [TrustFor] is not held to GlobalMax: a guesser with many addresses
// cannot lock out the clients in use, only new ones while it guesses.
// With a budget empty, tokens are not checked at all, right ones
// included, so that the answer tells a guesser nothing; a server answers
// them 429 Too Many Requests with Retry-After: [RetryAfter]. A client is
// what [Client] makes of a request's address ([ClientBehind] behind a
// trusted proxy).
//
// A Budget keeps the buckets of at most [MaxClients] clients, forgetting
// those that are full again and not trusted; while that many are in use,
// further clients share one bucket. The zero Budget is ready to use; it is
// safe for concurrent use.
type Budget struct {
	mu      sync.Mutex
	clients map[string]*bucket
	shared  bucket    // of the clients beyond MaxClients
	global  bucket    // of all untrusted clients together, GlobalMax
	pruned  time.Time // when full buckets were last forgotten
}

// A bucket holds the checks left to one client, or to those sharing it,
// as the time they take to come back: a check of a bucket of capacity
// max costs Window/max, and the time passing adds to left up to Window
// (full). Counted in whole nanoseconds, not in fractions of a check, so
// that no rounding, over however many calls, brings a check back early.
type bucket struct {
	left  time.Duration
	at    time.Time // when left was last refilled; zero: full
	right time.Time // when a right token last came; zero: never
}

// refill adds to k the time passed since k.at, and reports whether k is
// then full. A now before k.at (callers read the clock before they take
// the lock, so calls can come in out of order) adds nothing and leaves
// k.at as it is, so that no time is counted twice.
func (k *bucket) refill(now time.Time) bool {
	if k.at.IsZero() {
		k.left = Window
		k.at = now
	} else if d := now.Sub(k.at); d > 0 {
		k.left = min(Window, k.left+d)
		k.at = now
	}
	return k.left >= Window
}

// The cost of a check, of a client's bucket and of the global one.
const (
	clientCost = Window / Max
	globalCost = Window / GlobalMax
)

// trusted reports whether the client of k sent a right token within
// TrustFor of now.
func (k *bucket) trusted(now time.Time) bool {
	return !k.right.IsZero() && now.Sub(k.right) < TrustFor
}

// Check checks a token that client sent at now, if the budgets allow it:
// right compares the token with the secret (in constant time, such as
// with [SameSecret]). It returns checked false if the token was not
// checked (right was not called), and otherwise whether it is right. A
// wrong token takes one check from the budgets; a right one takes none,
// so that any number of right tokens sent at once are all checked.
func (b *Budget) Check(client string, now time.Time, right func() bool) (checked, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.bucket(client, now)
	k.refill(now)
	trusted := k.trusted(now)
	if !trusted {
		b.global.refill(now)
	}
	if k.left < clientCost || !trusted && b.global.left < globalCost {
		return false, false
	}
	if right() {
		if k != &b.shared { // clients beyond MaxClients are not told apart
			k.right = now
		}
		return true, true
	}
	k.left -= clientCost
	if !trusted {
		b.global.left -= globalCost
	}
	return true, false
}

// bucket returns the bucket of client at now: its own, a new one, or the
// shared one if MaxClients clients have buckets that are not full or are
// trusted. It forgets the others, at most once a second, when there are
// MaxClients. b.mu is held.
func (b *Budget) bucket(client string, now time.Time) *bucket {
	if k := b.clients[client]; k != nil {
		return k
	}
	if b.clients == nil {
		b.clients = make(map[string]*bucket)
	}
	if len(b.clients) >= MaxClients && now.Sub(b.pruned) >= time.Second {
		b.pruned = now
		for c, k := range b.clients {
			if k.refill(now) && !k.trusted(now) {
				delete(b.clients, c)
			}
		}
	}
	if len(b.clients) >= MaxClients {
		return &b.shared
	}
	k := new(bucket)
	b.clients[client] = k
	return k
}

// Client returns the client of r that a [Budget] counts wrong tokens
// for: the IP address of r.RemoteAddr (an IP address and port, or an IP
// address alone, as middleware that takes the address from a proxy's
// header leaves it), an IPv4-mapped IPv6 address as its IPv4 address, an
// IPv6 address by its /64 prefix (one machine usually has a whole /64),
// or r.RemoteAddr as it is if it is none of these.
func Client(r *http.Request) string {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return r.RemoteAddr
	}
	return addrClient(a)
}

// BearerToken returns the token of the Authorization header value auth if
// its scheme is Bearer: the scheme is case-insensitive, and one or more
// spaces separate it from the token (RFC 9110, section 11.4). The token may
// be empty.
func BearerToken(auth string) (token string, ok bool) {
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}

// SameSecret reports whether a and b are equal, in a time that depends on
// neither their contents nor their lengths: it compares their SHA-256
// sums with crypto/subtle.ConstantTimeCompare.
func SameSecret(a, b string) bool { return SumOf(a).Same(SumOf(b)) }

// A Sum is the SHA-256 sum of a secret or of a token sent for it. A server
// takes the sum of a token before [Budget.Check], so that the time the
// budget's lock is held does not grow with the token's length.
type Sum [sha256.Size]byte

// SumOf returns the Sum of s.
func SumOf(s string) Sum { return sha256.Sum256([]byte(s)) }

// Same reports whether s and t are equal, in constant time.
func (s Sum) Same(t Sum) bool { return subtle.ConstantTimeCompare(s[:], t[:]) == 1 }

// Format prints a Sum as REDACTED with every verb: the sum of a short
// secret would give it away to a search.
func (Sum) Format(f fmt.State, _ rune) { io.WriteString(f, "REDACTED") }
