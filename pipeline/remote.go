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
	"strconv"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

// RemoteConfig says where and how a [RemoteEvent] calls its [Worker].
type RemoteConfig struct {
	// Host is the worker's host name or IP address. It must be set.
	Host string
	// Port is the worker's port, 1-65535. It must be set.
	Port int
	// Path is the path the Worker is served at. Empty means DefaultPath.
	Path string
	// TLS, if not nil, makes the calls over HTTPS with this configuration
	// (used as the TLS configuration of the transport made when Client is
	// nil). Nil means plain HTTP.
	TLS *tls.Config
	// Timeout bounds each call, from sending the request to reading the
	// answer. Zero means no bound beyond the context's.
	Timeout time.Duration
	// Client makes the calls; its Transport is wrapped to record them.
	// Nil means a client of its own, with a clone of
	// http.DefaultTransport.
	Client *http.Client
	// Operation is the operation name of the recorded network operations.
	// Empty means telemetry.DefaultOperation ("remote_call").
	Operation string
}

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
}

var _ Event = (*RemoteEvent)(nil)

// Remote returns an Event named name that runs on the Worker described by
// cfg. It returns the problems of cfg joined in one error.
func Remote(name string, cfg RemoteConfig) (*RemoteEvent, error) {
	var errs []error
	if name == "" {
		errs = append(errs, ErrEmptyEventName)
	}
	if cfg.Host == "" {
		errs = append(errs, errors.New("pipeline: remote: empty host"))
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("pipeline: remote: port must be 1-65535, got %d", cfg.Port))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("pipeline: remote: timeout must not be negative, got %v", cfg.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	path := cfg.Path
	if path == "" {
		path = DefaultPath
	} else if path[0] != '/' {
		path = "/" + path
	}
	e := &RemoteEvent{
		name:      name,
		url:       scheme + "://" + net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)) + path,
		timeout:   cfg.Timeout,
		client:    cfg.Client,
		operation: cfg.Operation,
	}
	if e.operation == "" {
		e.operation = telemetry.DefaultOperation
	}
	if e.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		e.client = &http.Client{Transport: tr}
	}
	e.base = e.client.Transport
	if e.base == nil {
		e.base = http.DefaultTransport
	}
	return e, nil
}

// Name returns the name of the event, the one the worker runs.
func (e *RemoteEvent) Name() string { return e.name }

// URL returns the URL the event posts to.
func (e *RemoteEvent) URL() string { return e.url }

// Process runs the event on the worker. It returns the decoded output, a
// [*RemoteError] when the worker answers with an error, or a network error
// wrapped with the event's name (a *url.Error, whose [net.Error] tells
// timeouts). It honours ctx and [RemoteConfig.Timeout].
func (e *RemoteEvent) Process(ctx context.Context, in any) (any, error) {
	input, err := json.Marshal(in)
	if err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: remote event %q: cannot encode input: %w", e.name, err))
	}
	call := callRequest{Event: e.name, Input: input}
	client := e.client
	if ex := executionFrom(ctx); ex != nil {
		call.TaskID, call.RunID, call.Attempt = ex.task.ID, ex.task.RunID, ex.task.Attempt
		callID := ex.task.ID + "/call-" + strconv.FormatUint(ex.calls.Add(1), 10)
		c := *e.client
		c.Transport = &nettrace.Transport{
			Base:      e.base,
			Network:   hookObserver{ex},
			Operation: e.operation,
			TaskID:    func(*http.Request) string { return callID },
		}
		client = &c
	}
	body, err := json.Marshal(call)
	if err != nil { // cannot happen: strings, an int and valid raw JSON
		return nil, fmt.Errorf("pipeline: remote event %q: %w", e.name, err)
	}
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: remote event %q: %w", e.name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pipeline: remote event %q: %w", e.name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("pipeline: remote event %q: reading the answer: %w", e.name, err)
	}
	if len(data) > MaxBodyBytes {
		return nil, fmt.Errorf("pipeline: remote event %q: answer larger than %d bytes", e.name, MaxBodyBytes)
	}
	var answer callResponse
	jerr := json.Unmarshal(data, &answer)
	if resp.StatusCode != http.StatusOK {
		msg := answer.Error
		if jerr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &RemoteError{Event: e.name, StatusCode: resp.StatusCode, Message: msg}
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

// A RemoteError is the error a [Worker] answered a [RemoteEvent] with:
// the event failed there, or the worker refused the call.
type RemoteError struct {
	Event      string // name of the event
	StatusCode int    // HTTP status of the answer
	Message    string // the worker's error text
}

// Error returns a message such as
// `pipeline: remote event "score" failed on the worker (500): model not loaded`.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("pipeline: remote event %q failed on the worker (%d): %s", e.Event, e.StatusCode, e.Message)
}

// hookObserver reports the operations of nettrace to a task's hooks.
type hookObserver struct{ ex *execution }

func (o hookObserver) StartOperation(callID, host string, port int, operation string) error {
	o.ex.hooks.RemoteCallStarted(o.ex.task, callID, host, port, operation)
	return nil
}

func (o hookObserver) EndOperation(callID string, sent, received int64, err error) error {
	o.ex.hooks.RemoteCallEnded(o.ex.task, callID, sent, received, err)
	return nil
}
