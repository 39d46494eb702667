// Package guess bounds the guessing of a secret token sent over HTTP, for
// the servers of the module that check one (the web view, the pipeline
// worker): a [Budget] of wrong tokens per minute shared by all clients,
// the parsing of a bearer token ([BearerToken]) and a comparison whose
// time tells nothing of the secret ([SameSecret]). It imports the standard
// library only.
package guess

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bounds of a [Budget]: at most Max wrong tokens per Window, from all
// clients together.
const (
	Max    = 10
	Window = time.Minute
)

// RetryAfter is the Retry-After header value (in seconds) of an answer to
// a token not checked because the budget is empty: the time in which the
// budget gets one check back, 6.
var RetryAfter = strconv.Itoa(int((Window / Max).Seconds()))

// A Budget bounds how many wrong tokens a server checks: a bucket of
// [Max] checks that refills at Max per [Window]. Each check takes one
// ([Budget.Take]); a right token gives it back ([Budget.GiveBack]). With
// the bucket empty, tokens are not checked at all, right ones included, so
// that the answer tells a guesser nothing; a server answers them 429 Too
// Many Requests with Retry-After: [RetryAfter]. The zero Budget is full and
// ready to use; it is safe for concurrent use.
type Budget struct {
	mu   sync.Mutex
	left float64
	at   time.Time // when left was last refilled; zero: full
}

// Take takes one check from the budget at now, and reports whether there
// was one.
func (b *Budget) Take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.at.IsZero() {
		b.left = Max
	} else if d := now.Sub(b.at); d > 0 {
		b.left = min(Max, b.left+Max*d.Seconds()/Window.Seconds())
	}
	b.at = now
	if b.left < 1 {
		return false
	}
	b.left--
	return true
}

// GiveBack gives back the check of a right token.
func (b *Budget) GiveBack() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left = min(Max, b.left+1)
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
