// Package guess bounds the guessing of a secret token sent over HTTP, for
// the servers of the module that check one (the web view, the pipeline
// worker): a [Budget] of wrong tokens per minute for each client,
// the parsing of a bearer token ([BearerToken]) and a comparison whose
// time tells nothing of the secret ([SameSecret]). It imports the standard
// library only.
package guess

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bounds of a [Budget]: at most Max wrong tokens per Window from each
// client, and at most MaxClients clients with a budget of their own.
const (
	Max        = 10
	Window     = time.Minute
	MaxClients = 4096
)

// RetryAfter is the Retry-After header value (in seconds) of an answer to
// a token not checked because the budget is empty: the time in which the
// budget gets one check back, 6.
var RetryAfter = strconv.Itoa(int((Window / Max).Seconds()))

// A Budget bounds how many wrong tokens a server checks from each client:
// a bucket of [Max] checks per client that refills at Max per [Window].
// Each check takes one ([Budget.Take]); a right token gives it back
// ([Budget.GiveBack]). With a client's bucket empty, its tokens are not
// checked at all, right ones included, so that the answer tells a guesser
// nothing; a server answers them 429 Too Many Requests with Retry-After:
// [RetryAfter]. A client is what [Client] makes of a request's address,
// so a guesser locks out only itself, not the clients that know the
// token (unless they share its address, as behind one proxy).
//
// A Budget keeps the buckets of at most [MaxClients] clients, forgetting
// those that are full again; while that many are in use, further clients
// share one bucket. The zero Budget is ready to use; it is safe for
// concurrent use.
type Budget struct {
	mu      sync.Mutex
	clients map[string]*bucket
	shared  bucket    // of the clients beyond MaxClients
	pruned  time.Time // when full buckets were last forgotten
}

// A bucket holds the checks left to one client, or to those sharing it.
type bucket struct {
	left float64
	at   time.Time // when left was last refilled; zero: full
}

// refill adds to k the checks that came back by now, and reports whether
// k is then full.
func (k *bucket) refill(now time.Time) bool {
	if k.at.IsZero() {
		k.left = Max
	} else if d := now.Sub(k.at); d > 0 {
		k.left = min(Max, k.left+Max*d.Seconds()/Window.Seconds())
	}
	k.at = now
	return k.left >= Max
}

// Take takes one check from the budget of client at now, and reports
// whether there was one.
func (b *Budget) Take(client string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.bucket(client, now)
	k.refill(now)
	if k.left < 1 {
		return false
	}
	k.left--
	return true
}

// GiveBack gives back to client the check of a right token.
func (b *Budget) GiveBack(client string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.clients[client]
	if k == nil {
		k = &b.shared
	}
	k.left = min(Max, k.left+1)
}

// bucket returns the bucket of client at now: its own, a new one, or the
// shared one if MaxClients clients have buckets that are not full. It
// forgets the full buckets, at most once a second, when there are
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
			if k.refill(now) {
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
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
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
func SameSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
