package webview

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Defaults of the zero fields of [Config].
const (
	DefaultRecentRuns      = 1000             // finished event runs, and network operations, kept for the lists
	DefaultRecentFailures  = 200              // failed ones kept besides
	DefaultWindow          = 10 * time.Minute // span of the charts
	DefaultMaxEventNames   = 100              // event names with percentiles of their own
	DefaultMaxStreams      = 16               // live-update streams open at once
	DefaultPendingInterval = 2 * time.Second  // how old the list of runs in flight may be
	DefaultSessionLifetime = 12 * time.Hour   // how long a login lasts
)

// ErrClosed is returned by [Handler.Close] when called again.
var ErrClosed = errors.New("webview: closed")

// Config configures a [Handler]. The zero Config serves the view without a
// token, to loopback clients only, with the defaults above.
type Config struct {
	// Token, if not zero, is required from every request but those of the
	// login page and the static files: as the header "Authorization:
	// Bearer <token>", or as the session cookie that the login page sets
	// once the token has been typed into it. Zero means no token; the view
	// then answers only requests whose Host is localhost or a loopback
	// address.
	Token telemetry.Secret
	// RecentRuns is how many recent finished event runs, and how many
	// network operations, the view keeps for its lists (recent, slow, a
	// run's network operations). Zero means DefaultRecentRuns.
	RecentRuns int
	// RecentFailures is how many recent failed event runs, and failed
	// network operations, the view keeps besides, so that a burst of
	// successes does not hide them. Zero means DefaultRecentFailures.
	RecentFailures int
	// Window is the span of the charts, a whole number of minutes from 1
	// to 60. Zero means DefaultWindow.
	Window time.Duration
	// SlowThreshold is the threshold of the slow lists when the page does
	// not set one. Zero means [telemetry.DefaultSlowThreshold].
	SlowThreshold time.Duration
	// MaxEventNames is how many distinct event names get counts and
	// percentiles of their own; the runs of further names are counted
	// together as "other names". Zero means DefaultMaxEventNames.
	MaxEventNames int
	// MaxStreams is how many live-update streams may be open at once; one
	// more is refused with 503 and the page tries again later. Zero means
	// DefaultMaxStreams.
	MaxStreams int
	// PendingInterval is how often, at most, the list of runs in flight is
	// taken from the Recorder (with [telemetry.Recorder.PendingEvents], which
	// reads the pending runs only). Zero means DefaultPendingInterval.
	PendingInterval time.Duration
	// Logger receives the view's problems (a page or chart that could not
	// be drawn), at level Warn; never a token. Nil means slog.Default() at
	// the time of logging.
	Logger *slog.Logger
	// SessionLifetime is how long a session opened by the login page
	// lasts: from the login on, not from the last request. Once it has
	// passed, the view asks for the token again. Zero means
	// DefaultSessionLifetime.
	SessionLifetime time.Duration
	// TrustedProxies are the addresses of the reverse proxies in front of
	// the server whose X-Forwarded-For header is believed, for the budget
	// of wrong tokens only. A request whose connection comes from one of
	// them counts its wrong tokens against the client that the header
	// names: its rightmost address that is not itself in TrustedProxies
	// (the entries left of it could be forged by the client), an IPv6 one
	// by its /64; if the header is missing or malformed, against the
	// proxy's own address. So the proxies must append to X-Forwarded-For
	// the address that reached them (as httputil.ReverseProxy, nginx's
	// $proxy_add_x_forwarded_for, Caddy and HAProxy's option forwardfor
	// do); trust no address that clients could connect from, since a
	// program there could name any client. Only X-Forwarded-For is read,
	// not Forwarded (RFC 7239), and never from a request that comes from
	// another address. A prefix that is not valid (the zero netip.Prefix)
	// is refused. Nil means none: the client is the address of the
	// connection, and all the clients of a proxy share its budget, so that
	// a guesser behind it locks them all out.
	TrustedProxies []netip.Prefix
}

// withDefaults returns cfg with its zero fields set to their defaults, or
// an error naming each invalid field.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	positive := func(name string, v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			errs = append(errs, fmt.Errorf("webview: %s must not be negative, got %d", name, *v))
		}
	}
	positive("RecentRuns", &cfg.RecentRuns, DefaultRecentRuns)
	positive("RecentFailures", &cfg.RecentFailures, DefaultRecentFailures)
	positive("MaxEventNames", &cfg.MaxEventNames, DefaultMaxEventNames)
	positive("MaxStreams", &cfg.MaxStreams, DefaultMaxStreams)
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Window < time.Minute || cfg.Window > time.Hour || cfg.Window%time.Minute != 0 {
		errs = append(errs, fmt.Errorf("webview: Window must be a whole number of minutes from 1m to 1h, got %v", cfg.Window))
	}
	if cfg.SlowThreshold == 0 {
		cfg.SlowThreshold = telemetry.DefaultSlowThreshold
	}
	if cfg.SlowThreshold < 0 {
		errs = append(errs, fmt.Errorf("webview: SlowThreshold must not be negative, got %v", cfg.SlowThreshold))
	}
	if cfg.PendingInterval == 0 {
		cfg.PendingInterval = DefaultPendingInterval
	}
	if cfg.PendingInterval < 0 {
		errs = append(errs, fmt.Errorf("webview: PendingInterval must not be negative, got %v", cfg.PendingInterval))
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.SessionLifetime < time.Second {
		errs = append(errs, fmt.Errorf("webview: SessionLifetime must be at least 1s, got %v", cfg.SessionLifetime))
	}
	for i, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("webview: TrustedProxies[%d] is not a valid prefix", i))
		}
	}
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	return cfg, errors.Join(errs...)
}

// A Handler serves the web view of a Recorder: an [net/http.Handler] of
// read-only pages that update themselves while records arrive. Create one
// with [New]; see the package documentation for its pages, its security
// and its cost.
type Handler struct {
	rec   *telemetry.Recorder
	cfg   Config
	col   *collector
	now   func() time.Time
	since time.Time // when it was attached
	mux   *http.ServeMux
	// sessionKey is the key of the sessions' MACs, random for each
	// Handler, zero without a token. With it, anyone can make a session
	// that opens the view, so it is a Secret, which no fmt verb shows.
	sessionKey telemetry.Secret

	// live updates
	streams  atomic.Int64
	done     chan struct{} // closed by Close
	closed   atomic.Bool
	tick     time.Duration // an update at least this often, so that ages and charts move
	throttle time.Duration // at most one update per stream this often
	// writeTimeout bounds each write of a response (and each write to a
	// live-update stream), so that a client that stopped reading does not
	// hold its connection forever.
	writeTimeout time.Duration

	pending  pendingCache
	charts   chartCache
	guesses  guess.Budget
	tokenSum guess.Sum // of Config.Token, which bearer tokens and the login form are compared with
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler that shows rec, and attaches to rec the publisher
// through which the view learns of each finished record (named "webview"
// in [telemetry.Recorder.PublisherStats]); records finished before New are
// in the view only through the Recorder's counters. It returns an error
// for a nil rec, one naming each invalid field of cfg, or the error of
// [telemetry.Recorder.AddPublisher] (such as one wrapping
// [telemetry.ErrClosed]).
func New(rec *telemetry.Recorder, cfg Config) (*Handler, error) {
	if rec == nil {
		return nil, errors.New("webview: nil Recorder")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := newHandler(rec, cfg, time.Now)
	if err := rec.AddPublisher(h.col); err != nil {
		return nil, fmt.Errorf("webview: %w", err)
	}
	return h, nil
}

// newHandler returns a Handler of rec, with the clock now, not attached.
func newHandler(rec *telemetry.Recorder, cfg Config, now func() time.Time) *Handler {
	h := &Handler{
		rec:      rec,
		cfg:      cfg,
		col:      newCollector(&cfg, now),
		now:      now,
		since:    now(),
		done:     make(chan struct{}),
		tick:     5 * time.Second,
		throttle: 250 * time.Millisecond,

		writeTimeout: 10 * time.Second,
	}
	if !cfg.Token.IsZero() {
		h.sessionKey = newSessionKey()
		h.tokenSum = guess.SumOf(cfg.Token.Reveal())
	}
	h.mux = h.routes()
	return h
}

// Close ends the live-update streams that are open, so that an
// [net/http.Server] can shut down (its Shutdown waits for them otherwise;
// register Close with its RegisterOnShutdown), and refuses new ones; the
// pages are still served, and the view's publisher stays attached until
// the Recorder closes. A second call returns [ErrClosed].
func (h *Handler) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(h.done)
	return nil
}

// ServeHTTP serves the view's pages, charts, live updates and static
// files, answering GET and HEAD requests (and POST to the login page).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer, a browser sends
	// "Origin: null" with the login form, which foreignRequest must
	// refuse when the browser sends no Sec-Fetch-Site.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	// A deadline for writing the response, which a server without
	// WriteTimeout (as it must be for the streams) does not set: a client
	// that stops reading a page must not hold it forever. The stream sets
	// its own before each write. An error: the writer cannot have one.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.writeTimeout))
	if h.sessionKey.IsZero() && !loopbackHost(r.Host) {
		// Without a token, a page of another site could read the view
		// through a DNS name it points at 127.0.0.1 (DNS rebinding).
		http.Error(w, "webview: without a token this view answers only requests to localhost or a loopback address", http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// pageCSP is the Content-Security-Policy of every response but the charts:
// the view's own script and style only, nothing inline, no frames.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// chartCSP is the policy of the SVG charts, which style their shapes
// inline and have no script.
const chartCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /static/{file}", serveStatic)
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	for path, page := range map[string]func(*http.Request, *pageData) int{
		"/{$}":      h.overview,
		"/inflight": h.inFlightPage,
		"/failed":   h.failedPage,
		"/slow":     h.slowPage,
		"/network":  h.networkPage,
		"/run":      h.runPage,
	} {
		mux.Handle("GET "+path, h.authorized(h.page(page)))
	}
	mux.Handle("GET /chart/{name}", h.authorized(http.HandlerFunc(h.chart)))
	mux.Handle("GET /events", h.authorized(http.HandlerFunc(h.stream)))
	return mux
}

// authorized serves next to requests that carry the token (or the session
// cookie) when one is set, and 401 to the others. Whether a token is set
// or not, a browser's request that another origin's page made is refused
// with 403, except a navigation (see foreignRequest).
func (h *Handler) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if foreignRequest(r) {
			http.Error(w, "webview: this view answers only its own pages and navigations to it", http.StatusForbidden)
			return
		}
		if h.sessionKey.IsZero() {
			next.ServeHTTP(w, r)
			return
		}
		switch h.hasToken(r) {
		case tokenRight:
			next.ServeHTTP(w, r)
			return
		case tokenNotChecked:
			tooManyGuesses(w)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventpipeline webview"`)
		d := h.newPage("unauthorized")
		d.Title = "Token needed"
		h.render(w, http.StatusUnauthorized, d)
	})
}

// The answers of hasToken and checkToken.
const (
	tokenWrong      = iota // missing or wrong
	tokenRight             // the token or the session cookie
	tokenNotChecked        // too many wrong tokens lately: not checked
)

// hasToken reports whether r carries the token, as a bearer token, or a
// session cookie of this Handler that is still good (validSession). Both
// are compared in constant time; a bearer token only within the budget of
// guesses.
func (h *Handler) hasToken(r *http.Request) int {
	if token, ok := guess.BearerToken(r.Header.Get("Authorization")); ok {
		return h.checkToken(r, token)
	}
	if h.validSession(r) {
		return tokenRight
	}
	return tokenWrong
}

// checkToken compares token, sent by r, with the view's, if the budget of
// guesses of r's client allows a check.
func (h *Handler) checkToken(r *http.Request, token string) int {
	sum := guess.SumOf(token) // before Check: hashing a long token would hold the budget's lock
	checked, ok := h.guesses.Check(guess.ClientBehind(r, h.cfg.TrustedProxies), h.now(), func() bool { return sum.Same(h.tokenSum) })
	switch {
	case !checked:
		return tokenNotChecked
	case !ok:
		return tokenWrong
	}
	return tokenRight
}

// tooManyGuesses answers a request whose token was not checked.
func tooManyGuesses(w http.ResponseWriter) {
	w.Header().Set("Retry-After", guess.RetryAfter)
	http.Error(w, "webview: too many wrong tokens lately; try again later", http.StatusTooManyRequests)
}

// loginPage shows the form that asks for the token.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	d := h.newPage("login")
	d.Title, d.NeedsToken = "Log in", !h.sessionKey.IsZero()
	h.render(w, http.StatusOK, d)
}

// login checks the token typed into the login form and, if it is right,
// sets the session cookie and sends the browser to the overview.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if foreignRequest(r) {
		// A form of another origin's page: it could spend the budget
		// of guesses, or log the browser in unasked.
		http.Error(w, "webview: log in from the view's own login page", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "webview: bad login form", http.StatusBadRequest)
		return
	}
	if !h.sessionKey.IsZero() {
		switch h.checkToken(r, r.PostForm.Get("token")) {
		case tokenNotChecked:
			d := h.newPage("login")
			d.Title, d.NeedsToken, d.Problem = "Log in", true, "Too many wrong tokens lately: try again in a minute."
			w.Header().Set("Retry-After", guess.RetryAfter)
			h.render(w, http.StatusTooManyRequests, d)
			return
		case tokenWrong:
			d := h.newPage("login")
			d.Title, d.NeedsToken, d.Problem = "Log in", true, "That is not the token."
			h.render(w, http.StatusUnauthorized, d)
			return
		}
		http.SetCookie(w, h.newSession(r))
	}
	// A relative Location, resolved by the browser against the URL it
	// used: http.Redirect would resolve it against r.URL, which lacks the
	// prefix of a view mounted with http.StripPrefix.
	w.Header().Set("Location", "./")
	w.WriteHeader(http.StatusSeeOther)
}

// loopbackHost reports whether the host of a Host header is localhost or a
// loopback IP address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// logger returns the Logger of the configuration or slog.Default().
func (h *Handler) logger() *slog.Logger {
	if h.cfg.Logger != nil {
		return h.cfg.Logger
	}
	return slog.Default()
}

// pendingCache holds the runs in flight, taken at most every
// Config.PendingInterval.
type pendingCache struct {
	mu    sync.Mutex
	at    time.Time
	runs  []telemetry.EventMetrics // the oldest maxInFlight, by start time
	total int
}

// chartCache holds the last drawing of each chart, drawn again once a
// second has passed.
type chartCache struct {
	mu    sync.Mutex
	byKey map[string]cachedChart
}

type cachedChart struct {
	second int64 // Unix second of the drawing
	svg    []byte
}
