package webview

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Sessions. The login page, given the token, sets a cookie that opens the
// view in its stead until Config.SessionLifetime has passed. Its value is
// "ISSUED.MAC": the time of the login (Unix nanoseconds) and an HMAC-SHA256,
// under a key drawn at random for each Handler, of that time and of the
// Host the browser asked for. So a session
//
//   - ends: the time is the Handler's, checked on every request;
//   - is good for this Handler only, not for another one with the same
//     token (another port, or the same after a restart);
//   - is good for the Host it was opened for only, so that a copy of the
//     cookie replayed under another host name or port is refused;
//   - and never holds the token, which may open other doors.
//
// Browsers keep one set of cookies per host, whatever the port: the
// cookie's name carries the port (sessionCookieName), so that two views on
// two ports of 127.0.0.1 do not overwrite each other's session.

// sessionCookieBase is the name of the session cookie, before the port.
const sessionCookieBase = "eventpipeline_webview"

// maxClockStep is how far in the future a session's time of issue may be
// and still be taken: the wall clock may be stepped back a little (NTP)
// after a login.
const maxClockStep = time.Minute

// sessionCookieName returns the name of the session cookie for requests
// to host (a Host header): sessionCookieBase and the port, if host has a
// valid one, such as "eventpipeline_webview_8080".
func sessionCookieName(host string) string {
	_, port, err := net.SplitHostPort(host)
	if err != nil {
		return sessionCookieBase
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return sessionCookieBase
	}
	return sessionCookieBase + "_" + strconv.FormatUint(n, 10)
}

// newSessionKey returns a random key for the sessions' MACs.
func newSessionKey() telemetry.Secret {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	return telemetry.NewSecret(string(key))
}

// sessionMAC returns the MAC, in hex, of a session issued at the time
// issued (its text in the cookie) for requests to host.
func (h *Handler) sessionMAC(host, issued string) string {
	m := hmac.New(sha256.New, []byte(h.sessionKey.Reveal()))
	m.Write([]byte("eventpipeline webview session v2\n" + strings.ToLower(host) + "\n" + issued))
	return hex.EncodeToString(m.Sum(nil))
}

// newSession returns the cookie of a session opened now by the request r
// (whose token was right). It has no Path, so that it applies to the
// directory of the login page, wherever the view is mounted, and no
// Domain, so that it goes to this host only.
func (h *Handler) newSession(r *http.Request) *http.Cookie {
	issued := strconv.FormatInt(h.now().UnixNano(), 10)
	return &http.Cookie{
		Name:     sessionCookieName(r.Host),
		Value:    issued + "." + h.sessionMAC(r.Host, issued),
		MaxAge:   int(h.cfg.SessionLifetime / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil || browserOnHTTPS(r),
		SameSite: http.SameSiteStrictMode,
	}
}

// browserOnHTTPS reports whether the browser that sent r says, in its
// Origin header (or else its Referer, which Referrer-Policy: same-origin
// leaves it for the view's own pages), that it is on an https page: the
// view then serves behind a reverse proxy that serves HTTPS, and the
// session cookie must be Secure though r came over plain HTTP. Which
// origin sent r is for foreignRequest to check; a client that claims
// https over plain HTTP only gets a cookie that a browser would not keep.
func browserOnHTTPS(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		from = r.Header.Get("Referer")
	}
	u, err := url.Parse(from)
	return err == nil && u.Scheme == "https"
}

// validSession reports whether r carries a session cookie of this Handler,
// opened for r's Host, whose lifetime has not passed. The MACs are
// compared in constant time.
func (h *Handler) validSession(r *http.Request) bool {
	now := h.now()
	// A browser may hold two of that name (such as one of an older Path):
	// one good one is enough.
	for _, c := range r.CookiesNamed(sessionCookieName(r.Host)) {
		issued, mac, ok := strings.Cut(c.Value, ".")
		if !ok || !hmac.Equal([]byte(mac), []byte(h.sessionMAC(r.Host, issued))) {
			continue
		}
		n, err := strconv.ParseInt(issued, 10, 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, n)
		if now.Before(at.Add(h.cfg.SessionLifetime)) && !at.After(now.Add(maxClockStep)) {
			return true
		}
	}
	return false
}

// foreignRequest reports whether r is a browser's request made by a page
// of another origin, which the view refuses. Browsers say who asks in
// Sec-Fetch-Site (to loopback and HTTPS sites): anything but same-origin
// is refused, unless it is a GET or HEAD navigation (a link followed or an
// address typed, whose answer the other page cannot read). Without it,
// the Origin header, when there is one, must name the view's own host and
// port (whatever the scheme: a TLS proxy may be in front). Pages of other
// ports of the same host are of another origin but of the same site:
// SameSite=Strict does not keep the session cookie from their requests,
// this does. Clients other than browsers send neither header.
func foreignRequest(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return false
	case "":
		origin := r.Header.Get("Origin")
		if origin == "" {
			return false
		}
		u, err := url.Parse(origin)
		return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
	}
	navigation := r.Header.Get("Sec-Fetch-Mode") == "navigate"
	return !navigation || (r.Method != http.MethodGet && r.Method != http.MethodHead)
}
