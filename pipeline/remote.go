package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/propagation"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

// RemoteConfig says where and how a [RemoteEvent] calls its [Worker]. Its
// zero fields have the defaults their comments give; Host and Port must be
// set.
type RemoteConfig struct {
	// Host is the worker's host name or IP address, without brackets,
	// port, scheme, path or user info: a host containing '/', '?', '#',
	// '@', '[', ']', a backslash, a space or a control character is rejected, since
	// the call would go somewhere else. It must be set.
	Host string
	// Port is the worker's port, 1-65535. It must be set.
	Port int
	// Path is the path the Worker is served at. Empty means DefaultPath.
	Path string
	// Scheme is "http" or "https". Empty means "https" if TLS is set and
	// "http" otherwise. Set it to "https" when Client carries the TLS
	// configuration.
	Scheme string
	// TLS, if not nil, makes the calls over HTTPS with this configuration,
	// as the TLS configuration of the transport made for them: set
	// RootCAs for a worker with a private certificate authority and
	// Certificates for a worker that asks for client certificates. TLS
	// cannot be combined with Client (configure the Client's transport
	// instead); Remote returns an error if both are set. Nil means plain
	// HTTP, unless Scheme says "https".
	TLS *tls.Config
	// Token, if not zero, is sent with every call as the header
	// "Authorization: Bearer <token>", for a Worker whose
	// WorkerConfig.Token is the same. It never appears in errors or logs.
	// Remote refuses to send it in clear text (plain HTTP) to a host other
	// than localhost or a loopback address unless AllowInsecure is set,
	// and refuses a token with white space at an end or a control
	// character, which no header can carry.
	Token telemetry.Secret
	// AllowInsecure allows sending Token over plain HTTP to a host other
	// than localhost or a loopback address, where anyone on the path can
	// read it.
	AllowInsecure bool
	// Timeout bounds each call, from sending the request to reading the
	// answer. A call that takes longer fails with an error that wraps
	// context.DeadlineExceeded (and a net.Error whose Timeout method
	// reports true), marked as a transient failure of that attempt, which
	// DefaultRetryable retries, as it retries a worker's 408 or 500. The
	// end of the caller's context (cancellation, or a deadline earlier
	// than Timeout) is not so marked and is never retried. Zero means no
	// bound beyond the context's.
	Timeout time.Duration
	// Client makes the calls; its Transport is wrapped to record them.
	// Nil means a client of its own, with a clone of
	// http.DefaultTransport and the TLS configuration of TLS. Redirects
	// are never followed, whatever the Client's CheckRedirect: a worker
	// does not redirect, and the token would go along; a 3xx answer fails
	// the call with a RemoteError, which is not retried.
	Client *http.Client
	// Operation is the operation name of the recorded network operations.
	// Empty means telemetry.DefaultOperation ("remote_call").
	Operation string
	// MaxResponseBytes bounds the answer read from the worker; a larger
	// one fails the call. Zero means DefaultMaxResponseBytes (8 MiB).
	MaxResponseBytes int64
}

// maxRemoteErrorBytes bounds the [RemoteError.Message] of an answer.
const maxRemoteErrorBytes = 8 << 10

// DefaultMaxResponseBytes is the largest answer a [RemoteEvent] reads from
// its worker when [RemoteConfig.MaxResponseBytes] is zero: 8 MiB.
const DefaultMaxResponseBytes = 8 << 20

// A RemoteEvent is an Event that runs on a [Worker] over HTTP: its Process
// posts the input, as JSON, to the worker, which runs the event of the same
// name and sends back its output or its error.
//
// Run by a pipeline, each call is reported to the pipeline's hooks as a
// remote call, and so recorded as a network operation: host and port of
// the worker, the operation of [RemoteConfig], latency, the bytes of the
// request and response bodies, and the network error if any. The call id
// is "<task id>/call-<n>". Called outside a pipeline, nothing is recorded.
type RemoteEvent struct {
	name      string
	url       string
	timeout   time.Duration
	client    *http.Client
	base      http.RoundTripper
	operation string
	token     telemetry.Secret
	maxResp   int64
}

var _ Event = (*RemoteEvent)(nil)

// Remote returns an Event named name that runs on the Worker described by
// cfg. It returns the problems of cfg joined in one error.
func Remote(name string, cfg RemoteConfig) (*RemoteEvent, error) {
	var errs []error
	if name == "" {
		errs = append(errs, ErrEmptyEventName)
	}
	switch {
	case cfg.Host == "":
		errs = append(errs, errors.New("pipeline: remote: empty host"))
	case strings.ContainsAny(cfg.Host, "/?#@[] \\") || strings.ContainsFunc(cfg.Host, unicode.IsControl):
		errs = append(errs, fmt.Errorf("pipeline: remote: host %q must be a host name or IP address only, without brackets, port, scheme, path or user info", cfg.Host))
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("pipeline: remote: port must be 1-65535, got %d", cfg.Port))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("pipeline: remote: timeout must not be negative, got %v", cfg.Timeout))
	}
	if cfg.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("pipeline: remote: max response bytes must not be negative, got %d", cfg.MaxResponseBytes))
	}
	if cfg.TLS != nil && cfg.Client != nil {
		errs = append(errs, errors.New("pipeline: remote: TLS and Client are both set: TLS would be ignored; set the TLS configuration in the Client's transport and Scheme to \"https\""))
	}
	scheme := cfg.Scheme
	switch {
	case scheme == "" && cfg.TLS != nil:
		scheme = "https"
	case scheme == "":
		scheme = "http"
	case scheme == "http" && cfg.TLS != nil:
		errs = append(errs, errors.New("pipeline: remote: Scheme is \"http\" but TLS is set"))
	case scheme != "http" && scheme != "https":
		errs = append(errs, fmt.Errorf("pipeline: remote: Scheme must be \"http\" or \"https\", got %q", scheme))
	}
	if err := checkToken(cfg.Token); err != nil {
		errs = append(errs, fmt.Errorf("pipeline: remote: %w", err))
	}
	if scheme == "http" && !cfg.Token.IsZero() && !cfg.AllowInsecure && !isLoopback(cfg.Host) {
		errs = append(errs, fmt.Errorf("pipeline: remote: the token would be sent in clear text to %s: use TLS (or set AllowInsecure)", cfg.Host))
	}
	path := cfg.Path
	if path == "" {
		path = DefaultPath
	} else if path[0] != '/' {
		path = "/" + path
	}
	var u *url.URL
	if len(errs) == 0 {
		port := strconv.Itoa(cfg.Port)
		u = &url.URL{Scheme: scheme, Host: net.JoinHostPort(cfg.Host, port), Path: path}
		// The URL must name the host and port given, and nothing else.
		if back, err := url.Parse(u.String()); err != nil || back.Hostname() != cfg.Host || back.Port() != port || back.User != nil {
			errs = append(errs, fmt.Errorf("pipeline: remote: host %q and port %d do not make a valid URL", cfg.Host, cfg.Port))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e := &RemoteEvent{
		name:      name,
		url:       u.String(),
		timeout:   cfg.Timeout,
		client:    cfg.Client,
		operation: cfg.Operation,
		token:     cfg.Token,
		maxResp:   cfg.MaxResponseBytes,
	}
	if e.maxResp == 0 {
		e.maxResp = DefaultMaxResponseBytes
	}
	if e.operation == "" {
		e.operation = telemetry.DefaultOperation
	}
	if e.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		e.client = &http.Client{Transport: tr}
	} else {
		c := *e.client
		e.client = &c
	}
	// A worker never redirects, and net/http would send the token and the
	// input on to another port of the same host, over plain HTTP too.
	e.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.base = e.client.Transport
	if e.base == nil {
		e.base = http.DefaultTransport
	}
	return e, nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Name returns the name of the event, the one the worker runs.
func (e *RemoteEvent) Name() string { return e.name }

// URL returns the URL the event posts to.
func (e *RemoteEvent) URL() string { return e.url }

// CloseIdleConnections closes the connections that earlier calls left
// open to be used again, sitting idle in a "keep-alive" state, as
// [net/http.Client.CloseIdleConnections] does for the event's client: the
// connections of its own transport, or with [RemoteConfig.Client] those of
// that client's Transport, to every host it calls. It does not interrupt
// calls in progress, and the event remains usable: a later call opens a
// new connection. Call it when you are done with a RemoteEvent that has a
// transport of its own, so that its connections do not stay open until
// the worker's idle timeout ([WorkerConfig.IdleTimeout]).
func (e *RemoteEvent) CloseIdleConnections() { e.client.CloseIdleConnections() }

// Process runs the event on the worker. It returns the decoded output, a
// [*RemoteError] when the worker answers with an error, or a network error
// wrapped with the event's name (a *url.Error, whose [net.Error] tells
// timeouts). It honours ctx and [RemoteConfig.Timeout].
func (e *RemoteEvent) Process(ctx context.Context, in any) (any, error) {
	input, err := json.Marshal(in)
	if err != nil {
		return nil, telemetry.Permanent(fmt.Errorf("pipeline: remote event %q: cannot encode input: %w", e.name, err))
	}
	call := callRequest{Event: e.name, Input: input}
	client := e.client
	if ex := executionFrom(ctx); ex != nil {
		call.TaskID, call.RunID, call.Attempt = ex.task.ID, ex.task.RunID, ex.task.Attempt
		callID := ex.task.ID + "/call-" + strconv.FormatUint(ex.calls.Add(1), 10)
		call.CallID = callID
		c := *e.client
		var obs nettrace.Observer = hookObserver{ex}
		if ex.tracer != nil {
			obs = tracedObserver{hookObserver{ex}}
		}
		c.Transport = &nettrace.Transport{
			Base:      e.base,
			Network:   obs,
			Operation: e.operation,
			TaskID:    func(*http.Request) string { return callID },
		}
		client = &c
	}
	body, err := json.Marshal(call)
	if err != nil { // cannot happen: strings, an int and valid raw JSON
		return nil, fmt.Errorf("pipeline: remote event %q: %w", e.name, err)
	}
	parent := ctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, telemetry.Permanent(fmt.Errorf("pipeline: remote event %q: %w", e.name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if ex := executionFrom(ctx); ex != nil && ex.prop != nil && ex.tracer == nil {
		// Untraced here, but the caller's span (if any) and baggage still
		// go to the worker. Traced, the transport injects its client span.
		ex.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	if !e.token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+e.token.Reveal())
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, e.timedOut(parent, ctx, fmt.Errorf("pipeline: remote event %q: %w", e.name, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, e.maxResp+1))
	if err != nil {
		return nil, e.timedOut(parent, ctx, fmt.Errorf("pipeline: remote event %q: reading the answer: %w", e.name, err))
	}
	if int64(len(data)) > e.maxResp {
		return nil, fmt.Errorf("pipeline: remote event %q: answer larger than %d bytes", e.name, e.maxResp)
	}
	var answer callResponse
	jerr := json.Unmarshal(data, &answer)
	if resp.StatusCode != http.StatusOK {
		msg := safetext.Cut(safetext.Visible(answer.Error, false), maxRemoteErrorBytes)
		if jerr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &RemoteError{Event: e.name, StatusCode: resp.StatusCode, Message: msg,
			RetryAfter: retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if jerr != nil {
		return nil, fmt.Errorf("pipeline: remote event %q: bad answer: %w", e.name, jerr)
	}
	var out any
	if len(answer.Output) > 0 {
		if err := json.Unmarshal(answer.Output, &out); err != nil {
			return nil, fmt.Errorf("pipeline: remote event %q: bad output: %w", e.name, err)
		}
	}
	return out, nil
}

// timedOut returns err, the failure of a call made with ctx, a context of
// parent, marked by [AttemptTimeout] if the call's own timeout
// ([RemoteConfig.Timeout]) ended it: ctx's deadline has passed. An error
// of parent's own end (cancellation or deadline) is returned as it is.
func (e *RemoteEvent) timedOut(parent, ctx context.Context, err error) error {
	if e.timeout <= 0 || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return AttemptTimeout(parent, err)
}

// AttemptTimeout returns err marked as the timeout of one attempt, which
// [DefaultRetryable] retries, if err is a deadline error (it wraps
// context.DeadlineExceeded) and run, the context of the event's run, has
// not ended: a timeout of the attempt's own, shorter than the run's, ended
// it, as [RemoteConfig.Timeout] ends a call. Otherwise it returns err as
// it is (also if run is nil): the end of the run's own context is never
// retried. The marked error has err's text, and [errors.Is] and
// [errors.As] see through it.
//
// An event with a timeout of its own per attempt, such as a remote event
// of another transport, returns its error through AttemptTimeout so that
// it is retried as the HTTP remote event's is.
func AttemptTimeout(run context.Context, err error) error {
	if run == nil || err == nil || !errors.Is(err, context.DeadlineExceeded) || run.Err() != nil {
		return err
	}
	return &attemptTimeoutError{err: err}
}

// IsAttemptTimeout reports whether err, or an error it wraps, was marked
// by [AttemptTimeout]: the timeout of one attempt, not the end of the
// run's context. A Retryable function of your own can retry those as
// [DefaultRetryable] does.
func IsAttemptTimeout(err error) bool {
	var at *attemptTimeoutError
	return errors.As(err, &at)
}

// An attemptTimeoutError is the error of an attempt that outlasted a
// timeout of its own, made by [AttemptTimeout].
type attemptTimeoutError struct{ err error }

func (e *attemptTimeoutError) Error() string { return e.err.Error() }
func (e *attemptTimeoutError) Unwrap() error { return e.err }

// A RemoteError is the error a [Worker] answered a [RemoteEvent] with:
// the event failed there, or the worker refused the call (401 without
// valid credentials, 503 when busy, and so on). [DefaultRetryable] retries
// it when its status is 408, 429 or 5xx. Message comes from the worker,
// made safe to print: its control and format characters (newlines
// included) and invalid bytes are escaped as Go escapes them, and it is
// cut to 8 KiB.
type RemoteError struct {
	Event      string        // name of the event
	StatusCode int           // HTTP status of the answer
	Message    string        // the worker's error text, escaped and cut
	RetryAfter time.Duration // the wait the answer's Retry-After header asks for; 0 if none
}

// Error returns a message such as
// `pipeline: remote event "score" failed on the worker (500): model not loaded`.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("pipeline: remote event %q failed on the worker (%d): %s", e.Event, e.StatusCode, e.Message)
}

// hookObserver reports the operations of nettrace to a task's hooks.
type hookObserver struct{ ex *execution }

func (o hookObserver) StartOperation(callID, host string, port int, operation string, _ ...telemetry.StartOption) error {
	o.ex.hooks.RemoteCallStarted(o.ex.task, callID, host, port, operation)
	return nil
}

func (o hookObserver) EndOperation(callID string, sent, received int64, err error) error {
	o.ex.hooks.RemoteCallEnded(o.ex.task, callID, sent, received, err)
	return nil
}

// tracedObserver records the remote calls of a traced pipeline: each is
// recorded and traced by the pipeline's Tracer as a client span, with the
// span's context injected into the request, and the user's hooks are
// called as usual.
type tracedObserver struct{ hookObserver }

var _ nettrace.RequestTracer = tracedObserver{}

func (o tracedObserver) StartRequest(req *http.Request, callID, host string, port int, operation string) (*http.Request, func(int64, int64, error) error, error) {
	out, end, err := o.ex.tracer.Network().StartRequest(req, callID, host, port, operation)
	o.ex.hooks.RemoteCallStarted(o.ex.task, callID, host, port, operation)
	if err != nil {
		o.ex.telemetryFailed(err)
	}
	return out, func(sent, received int64, err error) error {
		if end != nil {
			o.ex.telemetryFailed(end(sent, received, err))
		}
		o.ex.hooks.RemoteCallEnded(o.ex.task, callID, sent, received, err)
		return nil
	}, nil
}
