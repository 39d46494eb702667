package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/guess"
	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// Errors of the worker.
var (
	// ErrDuplicateEvent is returned by [NewWorker] when two events have
	// the same name.
	ErrDuplicateEvent = errors.New("pipeline: duplicate event name")
	// ErrNoAuthentication is returned by [Worker.Serve] for a listener on
	// an address other than a loopback one when the worker has no
	// authentication (neither [WorkerConfig.Token] nor client
	// certificates) and [WorkerConfig.AllowUnauthenticated] is not set.
	ErrNoAuthentication = errors.New("pipeline: worker: no authentication configured for a non-loopback address")
)

// The defaults of [WorkerConfig].
const (
	// DefaultMaxBodyBytes is the largest request body a Worker accepts:
	// 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxInputValues is the largest number of JSON values an input
	// may hold: 10,000.
	DefaultMaxInputValues = 10_000
	// DefaultMaxInFlight is the number of requests a Worker handles at
	// once: 32.
	DefaultMaxInFlight = 32
	// DefaultMaxErrorTextBytes bounds the error text the default
	// [WorkerConfig.ErrorText] sends back: 1 KiB.
	DefaultMaxErrorTextBytes = 1 << 10
	// DefaultEventTimeout bounds the run of an event on a Worker: 1 minute.
	DefaultEventTimeout = time.Minute
	// DefaultReadHeaderTimeout bounds the reading of a request's header by
	// [Worker.Serve]: 5 seconds.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds the reading of a whole request by
	// [Worker.Serve]: 30 seconds.
	DefaultReadTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long [Worker.Serve] keeps an idle
	// connection open: 1 minute.
	DefaultIdleTimeout = time.Minute
)

// MaxCallerIDBytes bounds the task id, call id and run id a [Worker]
// accepts from a caller: 1 KiB. A recording worker keeps them in its
// records; a request with a longer one gets 400.
const MaxCallerIDBytes = 1 << 10

// maxHeaderBytes bounds the request header read by [Worker.Serve].
const maxHeaderBytes = 64 << 10

// maxLoggedErrorBytes bounds the error text of a failed event in the
// worker's log.
const maxLoggedErrorBytes = 8 << 10

// authRealm is the realm of the worker's WWW-Authenticate challenge.
const authRealm = `Bearer realm="eventpipeline-worker"`

// WorkerConfig configures a [Worker]: who may call it, what one call may
// cost, and how it logs. The zero WorkerConfig gives a worker without
// authentication, which serves requests to loopback addresses only
// (see AllowUnauthenticated), with the limits of the Default constants.
type WorkerConfig struct {
	// Token, if not zero, is a shared secret that every request must
	// carry as "Authorization: Bearer <token>" (see RemoteConfig.Token).
	// It is compared in constant time. A request without it, or with
	// another, gets 401 Unauthorized with a WWW-Authenticate: Bearer
	// challenge. At most 10 wrong tokens a minute are checked from each
	// caller's address (an IPv6 one by its /64; behind TrustedProxies,
	// the one they forward; a right one does not count), and 100 from all
	// callers together but those that sent the right token within the
	// hour: beyond, a request from that address
	// with a token, right or wrong, gets 429 Too Many Requests with
	// "Retry-After: 6" (which a RemoteEvent honours when it retries),
	// until a check comes back, one every 6 seconds. NewWorker refuses a
	// token with white space at an end or a control character, which no
	// header could carry. Zero means no token is asked for.
	Token telemetry.Secret
	// TLS, if not nil, is the TLS configuration of Worker.Serve, which then
	// serves HTTPS: it must hold a certificate (Certificates,
	// GetCertificate or GetConfigForClient). Set ClientCAs to ask for
	// client certificates signed by one of them: if ClientAuth is then
	// zero, it becomes tls.RequireAndVerifyClientCert, so that a client
	// without such a certificate fails the TLS handshake; with
	// tls.VerifyClientCertIfGiven, a request without a verified client
	// certificate gets 401; a ClientAuth that does not verify
	// (tls.RequestClientCert, tls.RequireAnyClientCert) makes NewWorker
	// fail. With ClientCAs set, every request must come
	// over TLS with a verified client certificate, also when the Worker is
	// mounted in a server of your own. Nil means plain HTTP and no client
	// certificates. The Worker keeps a clone.
	TLS *tls.Config
	// AllowUnauthenticated lets a worker without Token and without client
	// certificates serve requests that come in on an address other than a
	// loopback one. Without it, Serve refuses such a listener with
	// ErrNoAuthentication, and a Worker mounted in a server of your own
	// answers 403 Forbidden to a request whose connection is on such an
	// address (http.LocalAddrContextKey): anyone who reaches the port
	// could run any registered event with any input.
	AllowUnauthenticated bool
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

	// MaxBodyBytes is the largest request body accepted; a larger one gets
	// 413. Zero means DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// MaxInputValues is the largest number of JSON values an input may
	// hold: the input itself, and every array element and object member
	// value at any depth (so [1,[2]] holds 4), since decoding an input
	// into an any costs
	// up to about 250 bytes of memory per value whatever their size on
	// the wire; a request over it gets 413 before the input is decoded.
	// Zero means DefaultMaxInputValues (10,000).
	MaxInputValues int
	// MaxInFlight is the number of requests handled at once; a request
	// beyond it gets 503 Service Unavailable with "Retry-After: 1" (which
	// a RemoteEvent honours when it retries). Zero means
	// DefaultMaxInFlight (32).
	MaxInFlight int
	// EventTimeout bounds each run of an event: its context ends after
	// it, and an event that honours its context then fails with
	// context.DeadlineExceeded. Zero means DefaultEventTimeout (1 minute).
	EventTimeout time.Duration

	// ReadHeaderTimeout bounds, in Worker.Serve, the reading of a
	// request's header, from the start of the request. Zero means
	// DefaultReadHeaderTimeout (5s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds, in Worker.Serve, the reading of a whole request,
	// body included, from its start: a client that sends slowly is cut
	// off. Zero means DefaultReadTimeout (30s).
	ReadTimeout time.Duration
	// WriteTimeout bounds, in Worker.Serve, a request from the end of its
	// header to the end of the answer, the event's run included. Zero
	// means ReadTimeout + EventTimeout + 10s, so that an event that uses
	// all of EventTimeout still gets its answer written.
	WriteTimeout time.Duration
	// IdleTimeout is how long Worker.Serve keeps open a connection that
	// waits for its next request. Zero means DefaultIdleTimeout (1 minute).
	IdleTimeout time.Duration

	// Logger receives the worker's log: an event's panic, with its value
	// and stack, at Error; failed events at Debug, with their error text
	// (up to 8 KiB, whatever ErrorText sends); the server's own errors
	// (such as TLS handshake failures) at Warn, at most 10 a minute, the
	// count of those left out logged with the next one. Event names and task ids are bounded with the module's label
	// rules. Nil means slog.Default(), looked up at each log call.
	Logger *slog.Logger
	// ErrorText returns the text sent back to the caller, in the "error"
	// field of a 500 or 422 answer, for an event that failed with err;
	// use it to keep internal details (host names, SQL, file paths) on the
	// worker. Its result is sent as it is. Nil means DefaultErrorText. A
	// panic is never sent back: the caller gets a fixed text, and the
	// panic is logged.
	ErrorText func(err error) string

	// Recorder, if not nil, records every event run the worker serves, with
	// every publisher attached to it, and the remote calls those events
	// make. The task id of a run is the caller's call id (the caller's
	// task id followed by "/call-N", which is also the task id of the
	// caller's network operation), or, from a caller that sends none, its
	// task id, else "worker/EVENT/N", followed by "#N" if a run of that
	// id is in progress; its pipeline id is the caller's run id and its
	// process id the worker's. Nil means the worker records
	// nothing.
	Recorder *telemetry.Recorder
	// TracerProvider, if not nil, traces every event run as a span, a
	// child of the caller's span (extracted from the request with
	// Propagator), so that a pipeline run is one trace across processes.
	// It needs a Recorder: the runs are recorded through a
	// telemetry/oteltrace Tracer on it. Nil means no spans.
	TracerProvider trace.TracerProvider
	// Propagator extracts the caller's trace context and baggage from the
	// request's headers (and injects them into the remote calls of the
	// worker's events). Nil means otel.GetTextMapPropagator(), looked up
	// by NewWorker.
	Propagator propagation.TextMapPropagator
}

// DefaultErrorText returns the text of err cut to at most
// [DefaultMaxErrorTextBytes] bytes: longer texts are cut at a UTF-8
// boundary and end with "...[truncated]". It is the error text a Worker
// sends back when [WorkerConfig.ErrorText] is nil.
func DefaultErrorText(err error) string {
	return truncate(err.Error(), DefaultMaxErrorTextBytes)
}

// truncate returns s if it has at most limit bytes, else its start, cut at
// a rune boundary, and a marker, in limit bytes.
func truncate(s string, limit int) string {
	const marker = "...[truncated]"
	if len(s) <= limit {
		return s
	}
	keep := max(limit-len(marker), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + marker
}

// A Worker is an http.Handler that runs the events it was given for remote
// callers ([RemoteEvent]): the worker process of remote execution.
// [Worker.Serve] serves it with the timeouts and TLS configuration of its
// [WorkerConfig]; mounted in a server of your own, it still checks
// credentials and applies the limits on bodies, inputs and requests in
// flight, and the server's timeouts are yours to set.
//
// It answers POST requests whose body is the JSON document
// {"event": name, "input": value, "task_id": id, "call_id": id, "run_id": id,
// "attempt": n}
// by running the event once on the decoded input, with the request's
// context bounded by [WorkerConfig.EventTimeout], and answers, in this
// order of checks:
//
//   - 401 (with a WWW-Authenticate challenge when a token is configured)
//     for a request without valid credentials; 429 with Retry-After: 6
//     for a request with a token after too many wrong ones (see
//     [WorkerConfig.Token]); 403 for a request that came in on an
//     address other than a loopback one to a worker without credentials
//     (see [WorkerConfig.AllowUnauthenticated]); after these three, the
//     connection is closed;
//   - 405 for another method (with Allow: POST);
//   - 503 with Retry-After: 1 when [WorkerConfig.MaxInFlight] requests are
//     being handled;
//   - 413 for a body over [WorkerConfig.MaxBodyBytes] or an input of more
//     than [WorkerConfig.MaxInputValues] JSON values;
//   - 400 for a body that is not such a document, or one with an id
//     longer than [MaxCallerIDBytes], 404 for an unknown event;
//   - 200 and {"output": value} when the event succeeds;
//   - 422 and {"error": text} when it fails with an error marked with
//     [telemetry.Permanent], so that callers do not retry it; 500 and
//     {"error": text} for another error, text being what
//     [WorkerConfig.ErrorText] makes of it;
//   - 500 and a fixed text when the event panics: the panic's value and
//     stack are logged on the worker, never sent.
//
// Every answer is JSON, {"error": text} for all but 200. Inputs and
// outputs cross the wire as JSON: the event gets what encoding/json
// decodes into an any (map[string]any, []any, float64, string, bool or
// nil). Inside Process, [TaskFrom] gives the caller's task id, run id and
// attempt, and the worker's process id. The caller records the call;
// the Worker records the runs it serves only with a
// [WorkerConfig.Recorder].
type Worker struct {
	events   map[string]Event
	pid      int
	cfg      WorkerConfig  // defaults applied
	tls      *tls.Config   // a clone of cfg.TLS, ClientAuth set
	wantCert bool          // every request needs a verified client certificate
	sem      chan struct{} // one element per request in flight
	srv      *http.Server
	prop     propagation.TextMapPropagator
	tel      *TelemetryHooks   // nil without a Recorder
	tracer   *oteltrace.Tracer // nil without a TracerProvider
	runs     atomic.Uint64     // numbers the runs of callers without ids
	// tokenHash is the SHA-256 sum of cfg.Token, which requests' tokens
	// are compared with. Unsalted, it would let a weak token be found
	// offline, so it is a Secret, which no fmt verb shows.
	tokenHash telemetry.Secret
	guesses   guess.Budget     // of wrong tokens
	now       func() time.Time // time.Now, but in tests
}

var _ http.Handler = (*Worker)(nil)

// compareTokens compares the hashes of two tokens; a variable so that a
// test can check that it is used.
var compareTokens = subtle.ConstantTimeCompare

// NewWorker returns a Worker configured by cfg that runs events. It
// returns the problems joined in one error: [ErrNilEvent],
// [ErrEmptyEventName], [ErrDuplicateEvent], a negative limit or timeout, a
// Token with white space at an end or a control character (which no
// request could carry), a
// TLS configuration without a certificate, one with ClientCAs whose
// ClientAuth does not verify client certificates, or a TrustedProxies
// prefix that is not valid.
func NewWorker(cfg WorkerConfig, events ...Event) (*Worker, error) {
	w := &Worker{events: make(map[string]Event, len(events)), pid: os.Getpid(), now: time.Now}
	var errs []error
	for i, ev := range events {
		switch {
		case isNil(ev):
			errs = append(errs, at(fmt.Sprintf("worker event %d", i+1), ErrNilEvent))
		case ev.Name() == "":
			errs = append(errs, at(fmt.Sprintf("worker event %d", i+1), ErrEmptyEventName))
		case w.events[ev.Name()] != nil:
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateEvent, label.Value(ev.Name())))
		default:
			w.events[ev.Name()] = ev
		}
	}
	for _, lim := range []struct {
		name string
		v    int64
	}{
		{"max body bytes", cfg.MaxBodyBytes}, {"max input values", int64(cfg.MaxInputValues)},
		{"max in flight", int64(cfg.MaxInFlight)}, {"event timeout", int64(cfg.EventTimeout)},
		{"read header timeout", int64(cfg.ReadHeaderTimeout)}, {"read timeout", int64(cfg.ReadTimeout)},
		{"write timeout", int64(cfg.WriteTimeout)}, {"idle timeout", int64(cfg.IdleTimeout)},
	} {
		if lim.v < 0 {
			errs = append(errs, fmt.Errorf("pipeline: worker: %s must not be negative", lim.name))
		}
	}
	if t := cfg.TLS; t != nil {
		if len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
			errs = append(errs, errors.New("pipeline: worker: TLS configuration has no certificate"))
		}
		w.tls = t.Clone()
		switch ca := w.tls.ClientCAs != nil; {
		case ca && w.tls.ClientAuth == tls.NoClientCert:
			w.tls.ClientAuth = tls.RequireAndVerifyClientCert
		case ca && (w.tls.ClientAuth == tls.RequestClientCert || w.tls.ClientAuth == tls.RequireAnyClientCert):
			// The certificates would not be verified, and the worker
			// would run the events of anyone.
			errs = append(errs, fmt.Errorf("pipeline: worker: TLS has ClientCAs but ClientAuth %v does not verify client certificates: use tls.RequireAndVerifyClientCert or tls.VerifyClientCertIfGiven", w.tls.ClientAuth))
		}
		w.wantCert = w.tls.ClientCAs != nil &&
			(w.tls.ClientAuth == tls.VerifyClientCertIfGiven || w.tls.ClientAuth == tls.RequireAndVerifyClientCert)
	}
	for i, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("pipeline: worker: TrustedProxies[%d] is not a valid prefix", i))
		}
	}
	if err := checkToken(cfg.Token); err != nil {
		errs = append(errs, fmt.Errorf("pipeline: worker: %w", err))
	}
	if cfg.TracerProvider != nil && cfg.Recorder == nil {
		errs = append(errs, errors.New("pipeline: worker: a TracerProvider needs a Recorder"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w.prop = cfg.Propagator
	if w.prop == nil {
		w.prop = otel.GetTextMapPropagator()
	}
	if cfg.Recorder != nil {
		w.tel = NewTelemetryHooks(cfg.Recorder)
	}
	if cfg.TracerProvider != nil {
		tr, err := oteltrace.New(cfg.Recorder, oteltrace.Config{TracerProvider: cfg.TracerProvider, Propagator: w.prop})
		if err != nil {
			return nil, fmt.Errorf("pipeline: worker: %w", err)
		}
		w.tracer = tr
	}
	cfg.TLS = nil // w.tls is the one used
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	setDefault(&cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&cfg.MaxInputValues, DefaultMaxInputValues)
	setDefault(&cfg.MaxInFlight, DefaultMaxInFlight)
	setDefault(&cfg.EventTimeout, DefaultEventTimeout)
	setDefault(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&cfg.ReadTimeout, DefaultReadTimeout)
	setDefault(&cfg.WriteTimeout, cfg.ReadTimeout+cfg.EventTimeout+10*time.Second)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	if !cfg.Token.IsZero() {
		sum := sha256.Sum256([]byte(cfg.Token.Reveal()))
		w.tokenHash = telemetry.NewSecret(string(sum[:]))
	}
	w.cfg = cfg
	w.sem = make(chan struct{}, cfg.MaxInFlight)
	w.srv = &http.Server{
		Handler:           w,
		TLSConfig:         w.tls,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(&serverLog{w: w}, "", 0),
	}
	return w, nil
}

// checkToken returns an error if an Authorization header cannot carry
// token as it is: net/http trims the white space at the ends of header
// values, and refuses control characters. The error does not show it.
func checkToken(token telemetry.Secret) error {
	t := token.Reveal()
	if strings.TrimSpace(t) != t || strings.ContainsFunc(t, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }) {
		return errors.New("the Token has white space at an end or a control character, which no request can carry")
	}
	return nil
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

func (w *Worker) logger() *slog.Logger {
	if w.cfg.Logger != nil {
		return w.cfg.Logger
	}
	return slog.Default()
}

// The bound of the server's error log: at most maxServerLogs lines per
// serverLogWindow.
const (
	maxServerLogs   = 10
	serverLogWindow = time.Minute
)

// serverLog writes the http.Server's error log to the worker's Logger, at
// most maxServerLogs lines per serverLogWindow: anyone who reaches the
// port can make the server log (a TLS handshake that fails) as often as
// they connect. The count of the lines left out is logged with the next
// one logged.
type serverLog struct {
	w       *Worker
	mu      sync.Mutex
	start   time.Time // of the current window; zero before the first line
	logged  int       // in the current window
	dropped int       // in the current window
}

func (l *serverLog) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	dropped := 0
	if l.start.IsZero() || now.Sub(l.start) >= serverLogWindow {
		dropped = l.dropped
		l.start, l.logged, l.dropped = now, 0, 0
	}
	ok := l.logged < maxServerLogs
	if ok {
		l.logged++
	} else {
		l.dropped++
	}
	l.mu.Unlock()
	if !ok {
		return len(p), nil
	}
	ctx, logger := context.Background(), l.w.logger()
	if dropped > 0 {
		logger.LogAttrs(ctx, slog.LevelWarn, "pipeline: worker server errors not logged", slog.Int("count", dropped))
	}
	logger.LogAttrs(ctx, slog.LevelWarn, "pipeline: worker server error",
		slog.String("error", truncate(strings.TrimSpace(string(p)), DefaultMaxErrorTextBytes)))
	return len(p), nil
}

// authenticated reports whether requests must carry credentials.
func (w *Worker) authenticated() bool { return !w.cfg.Token.IsZero() || w.wantCert }

// Serve accepts connections on ln and serves the worker on every path,
// over TLS if [WorkerConfig.TLS] is set, with the timeouts of its
// WorkerConfig and a request header of at most 64 KiB. It returns when ln
// fails or after [Worker.Shutdown] or [Worker.Close], then with
// http.ErrServerClosed, and closes ln. It may be called for several
// listeners. It refuses (closing ln) a listener on an address other than a
// loopback one or a Unix socket when the worker asks for no credentials,
// with an error wrapping [ErrNoAuthentication], unless
// [WorkerConfig.AllowUnauthenticated] is set.
func (w *Worker) Serve(ln net.Listener) error {
	if !w.authenticated() && !w.cfg.AllowUnauthenticated && !isLocalAddr(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("%w: %s (set a token or client certificates)", ErrNoAuthentication, ln.Addr())
	}
	if w.tls != nil {
		return w.srv.ServeTLS(ln, "", "")
	}
	return w.srv.Serve(ln)
}

// Shutdown stops [Worker.Serve] gracefully, as http.Server.Shutdown does:
// it closes the listeners and idle connections, then waits for the
// requests being handled to end, or for ctx to end, when it returns
// ctx.Err().
func (w *Worker) Shutdown(ctx context.Context) error { return w.srv.Shutdown(ctx) }

// Close stops [Worker.Serve] at once, closing its listeners and
// connections, as http.Server.Close does.
func (w *Worker) Close() error { return w.srv.Close() }

// isLocalAddr reports whether a is a loopback TCP address or a Unix
// socket.
func isLocalAddr(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// ServeHTTP runs the event a request names; see [Worker].
func (w *Worker) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if !w.authorize(rw, req) {
		return
	}
	if req.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		answer(rw, http.StatusMethodNotAllowed, callResponse{Error: "pipeline: worker: method " + label.Value(req.Method) + " not allowed, use POST"})
		return
	}
	select {
	case w.sem <- struct{}{}:
		defer func() { <-w.sem }()
	default:
		rw.Header().Set("Retry-After", "1")
		answer(rw, http.StatusServiceUnavailable, callResponse{Error: fmt.Sprintf("pipeline: worker: busy, %d requests in flight", w.cfg.MaxInFlight)})
		return
	}
	call, err := decodeCall(http.MaxBytesReader(rw, req.Body, w.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(rw, http.StatusRequestEntityTooLarge, callResponse{Error: fmt.Sprintf("pipeline: worker: request body larger than %d bytes", tooBig.Limit)})
			return
		}
		answer(rw, http.StatusBadRequest, callResponse{Error: "pipeline: worker: bad request body: " + truncate(err.Error(), DefaultMaxErrorTextBytes)})
		return
	}
	if call.Event == "" {
		answer(rw, http.StatusBadRequest, callResponse{Error: "pipeline: worker: request names no event"})
		return
	}
	for _, id := range []struct{ name, v string }{{"task_id", call.TaskID}, {"call_id", call.CallID}, {"run_id", call.RunID}} {
		if len(id.v) > MaxCallerIDBytes {
			answer(rw, http.StatusBadRequest, callResponse{Error: fmt.Sprintf("pipeline: worker: %s longer than %d bytes", id.name, MaxCallerIDBytes)})
			return
		}
	}
	ev := w.events[call.Event]
	if ev == nil {
		answer(rw, http.StatusNotFound, callResponse{Error: fmt.Sprintf("pipeline: worker: unknown event %q", label.Value(call.Event))})
		return
	}
	var in any
	if len(call.Input) > 0 {
		if tooManyValues(call.Input, w.cfg.MaxInputValues) {
			answer(rw, http.StatusRequestEntityTooLarge, callResponse{Error: fmt.Sprintf("pipeline: worker: input holds more than %d JSON values", w.cfg.MaxInputValues)})
			return
		}
		if err := json.Unmarshal(call.Input, &in); err != nil {
			answer(rw, http.StatusBadRequest, callResponse{Error: "pipeline: worker: bad input: " + truncate(err.Error(), DefaultMaxErrorTextBytes)})
			return
		}
		call.Input = nil // let it go before the event runs
	}
	ctx, cancel := context.WithTimeout(req.Context(), w.cfg.EventTimeout)
	defer cancel()
	ctx = w.prop.Extract(ctx, propagation.HeaderCarrier(req.Header))
	ex := &execution{
		task:   Task{ID: call.TaskID, Event: call.Event, RunID: call.RunID, ProcessID: w.pid, Attempt: max(call.Attempt, 1)},
		hooks:  NopHooks{},
		calls:  new(atomic.Uint64),
		tracer: w.tracer,
		prop:   w.prop,
		tel:    w.tel,
	}
	ctx, end := w.record(ctx, ex, &call)
	out, err := process(withExecution(ctx, ex), &step{ev: ev, name: call.Event}, in, func() { end(errGoexit) })
	end(err)
	if err != nil {
		w.answerError(ctx, rw, &call, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		w.answerError(ctx, rw, &call, fmt.Errorf("pipeline: worker: event %q: cannot encode output: %w", label.Value(call.Event), err))
		return
	}
	answer(rw, http.StatusOK, callResponse{Output: b})
}

// record starts the record (and span) of the run of call, if the worker
// records, and returns the ctx to run it with and the func that ends it.
// ex's task id becomes the run's task id, so that the remote calls of the
// event are numbered under it: the caller's id, followed by "#N" if a run
// of that id is in progress.
func (w *Worker) record(ctx context.Context, ex *execution, call *callRequest) (context.Context, func(error)) {
	if w.tel == nil {
		return ctx, func(error) {}
	}
	id := call.CallID
	if id == "" {
		id = call.TaskID
	}
	if id == "" {
		id = "worker/" + call.Event + "/" + strconv.FormatUint(w.runs.Add(1), 10)
	}
	opts := []telemetry.StartOption{telemetry.WithProcessID(w.pid)}
	if call.RunID != "" {
		opts = append(opts, telemetry.WithPipelineID(call.RunID))
	}
	rec := w.tel.Recorder()
	start := func(id string) (context.Context, error) {
		if w.tracer != nil {
			return w.tracer.StartEvent(ctx, call.Event, id, opts...)
		}
		return ctx, rec.StartEvent(call.Event, id, opts...)
	}
	// A run of the caller's id is in progress (a call retried while the
	// first still runs, or ids chosen badly): this one gets an id of its
	// own, rather than ending the other's record. A traced worker looks
	// for it first, so that its start does not leave a failed span of the
	// refused start in the trace; a start refused all the same (the other
	// run began in between) is tried again.
	callerID := id
	other := func() string { return callerID + "#" + strconv.FormatUint(w.runs.Add(1), 10) }
	if w.tracer != nil {
		if m, ok := rec.Metrics(id); ok && m.Status == telemetry.StatusPending {
			id = other()
		}
	}
	rctx, err := start(id)
	if errors.Is(err, telemetry.ErrAlreadyStarted) {
		id = other()
		rctx, err = start(id)
	}
	ex.task.ID = id
	w.tel.check(err)
	if w.tracer == nil {
		ex.hooks = w.tel // records the event's remote calls
	}
	if err != nil { // never end a run this request did not start
		return rctx, func(error) {}
	}
	if w.tracer != nil {
		return rctx, func(err error) { w.tel.check(w.tracer.EndEvent(rctx, id, err)) }
	}
	return rctx, func(err error) { w.tel.check(rec.EndEvent(id, err)) }
}

// Telemetry returns the hooks through which the worker records, with the
// count and first of its recording errors; nil without
// [WorkerConfig.Recorder].
func (w *Worker) Telemetry() *TelemetryHooks { return w.tel }

// authorize checks the credentials of req. If they are missing or wrong,
// it answers 401 (or 429, or 403 for a worker without credentials that may
// not serve req), closing the connection, and returns false.
func (w *Worker) authorize(rw http.ResponseWriter, req *http.Request) bool {
	if w.wantCert && (req.TLS == nil || len(req.TLS.VerifiedChains) == 0) {
		if !w.cfg.Token.IsZero() {
			rw.Header().Set("WWW-Authenticate", authRealm)
		}
		refuse(rw, http.StatusUnauthorized, "pipeline: worker: unauthorized: a verified client certificate is required")
		return false
	}
	if !w.authenticated() && !w.cfg.AllowUnauthenticated && !w.servedLocally(req) {
		refuse(rw, http.StatusForbidden, "pipeline: worker: no credentials configured: only requests to a loopback address are served (set a token, client certificates or AllowUnauthenticated)")
		return false
	}
	if w.cfg.Token.IsZero() {
		return true
	}
	token, ok := guess.BearerToken(req.Header.Get("Authorization"))
	if token = strings.TrimSpace(token); !ok || token == "" {
		rw.Header().Set("WWW-Authenticate", authRealm)
		refuse(rw, http.StatusUnauthorized, "pipeline: worker: unauthorized: a bearer token is required")
		return false
	}
	got := sha256.Sum256([]byte(token))
	checked, ok := w.guesses.Check(guess.ClientBehind(req, w.cfg.TrustedProxies), w.now(), func() bool {
		return compareTokens(got[:], []byte(w.tokenHash.Reveal())) == 1
	})
	if !checked {
		// Not checked, so that a guesser learns nothing.
		rw.Header().Set("Retry-After", guess.RetryAfter)
		refuse(rw, http.StatusTooManyRequests, "pipeline: worker: too many wrong tokens lately, try again later")
		return false
	}
	if !ok {
		rw.Header().Set("WWW-Authenticate", authRealm+`, error="invalid_token"`)
		refuse(rw, http.StatusUnauthorized, "pipeline: worker: unauthorized: invalid token")
		return false
	}
	return true
}

// servedLocally reports whether req may be served by a worker without
// credentials: it came through [Worker.Serve], which checked its listener,
// or in on a loopback address or a Unix socket, or from a caller that does
// not say where (a direct call of ServeHTTP).
func (w *Worker) servedLocally(req *http.Request) bool {
	ctx := req.Context()
	if srv, _ := ctx.Value(http.ServerContextKey).(*http.Server); srv == w.srv {
		return true
	}
	local, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	return !ok || isLocalAddr(local)
}

// refuse answers a request without valid credentials with status and
// text, and closes its connection: one who has no credentials cannot hold
// connections open with one cheap request each.
func refuse(rw http.ResponseWriter, status int, text string) {
	rw.Header().Set("Connection", "close")
	answer(rw, status, callResponse{Error: text})
}

// answerError answers a failed run of call's event: a panic is logged and
// answered with a fixed text; another error with what ErrorText makes of
// it.
func (w *Worker) answerError(ctx context.Context, rw http.ResponseWriter, call *callRequest, err error) {
	name := label.Value(call.Event)
	var pe *PanicError
	if errors.As(err, &pe) {
		w.logger().LogAttrs(ctx, slog.LevelError, "pipeline: worker event panicked",
			slog.String("event_name", name), slog.String("task_id", label.Value(call.TaskID)),
			slog.String("run_id", label.Value(call.RunID)),
			slog.String("panic", truncate(fmt.Sprint(pe.Value), DefaultMaxErrorTextBytes)),
			slog.String("stack", string(pe.Stack)))
		answer(rw, http.StatusInternalServerError, callResponse{Error: fmt.Sprintf("pipeline: worker: event %q panicked (logged on the worker)", name)})
		return
	}
	w.logger().LogAttrs(ctx, slog.LevelDebug, "pipeline: worker event failed",
		slog.String("event_name", name), slog.String("task_id", label.Value(call.TaskID)),
		slog.Bool("permanent", telemetry.IsPermanent(err)), slog.String("error", truncate(err.Error(), maxLoggedErrorBytes)))
	status := http.StatusInternalServerError
	if telemetry.IsPermanent(err) {
		status = http.StatusUnprocessableEntity
	}
	text := DefaultErrorText
	if w.cfg.ErrorText != nil {
		text = w.cfg.ErrorText
	}
	answer(rw, status, callResponse{Error: text(err)})
}

// tooManyValues reports whether the valid JSON document data holds more
// than limit values: the document itself, and each element of every array
// and each member of every object, at any depth.
func tooManyValues(data []byte, limit int) bool {
	n := 1 // the document
	inString, escaped, first := false, false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if first { // the first thing after '[' or '{'
			first = false
			if c != ']' && c != '}' {
				n++
			}
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			first = true
		case ',':
			n++
		}
		if n > limit {
			return true
		}
	}
	return false
}

func answer(rw http.ResponseWriter, status int, r callResponse) {
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(r) // cannot fail: a string and raw JSON
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	rw.WriteHeader(status)
	rw.Write(buf.Bytes())
}
