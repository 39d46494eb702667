package main

import (
	"context"
	"flag"
	"net"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A backend is a telemetry publisher that `demo` can also publish to, turned
// on by its own flags. Every backend is wired here and nowhere else: to add
// one (Prometheus, Elasticsearch, Grafana Cloud), append it to backends in
// an init function of a file of its own (backend_<name>.go), and the demo's
// flags, help, publishing, shutdown and waiting follow.
//
// The JSON-lines file is not a backend: the demo always writes it.
type backend struct {
	// name names the backend in messages, such as "prometheus".
	name string
	// flags registers the backend's flags on fs and returns a function
	// that reports whether they ask for the backend.
	flags func(fs *flag.FlagSet) (enabled func() bool)
	// open returns the backend's publisher, to be attached to r (which it
	// may also observe, as the Prometheus backend exports r's delivery
	// counters). getenv looks up secrets (API keys, passwords), which are
	// never given as flags. serving, if not empty, says what the backend
	// serves (such as a /metrics URL): the demo then keeps running until
	// interrupted.
	open func(ctx context.Context, r *telemetry.Recorder, getenv func(string) string) (pub telemetry.Publisher, serving string, err error)
	// listens, if not nil, returns the address the backend listens on
	// once open, and what anyone who reaches it can do: the demo warns
	// when that address is not loopback.
	listens func() (addr net.Addr, risk string)
}

// backends are the backends compiled into this program.
var backends []backend

// registerBackends registers the flags of every backend on fs and returns a
// function that opens the backends the parsed flags ask for.
func registerBackends(fs *flag.FlagSet) func(ctx context.Context, r *telemetry.Recorder, getenv func(string) string) ([]opened, error) {
	enabled := make([]func() bool, len(backends))
	for i, b := range backends {
		enabled[i] = b.flags(fs)
	}
	return func(ctx context.Context, r *telemetry.Recorder, getenv func(string) string) ([]opened, error) {
		var open []opened
		for i, b := range backends {
			if !enabled[i]() {
				continue
			}
			pub, serving, err := b.open(ctx, r, getenv)
			if err != nil {
				return open, &backendError{name: b.name, err: err}
			}
			o := opened{name: b.name, pub: pub, serving: serving}
			if b.listens != nil {
				o.listens, o.risk = b.listens()
			}
			open = append(open, o)
		}
		return open, nil
	}
}

// opened is a backend the demo publishes to.
type opened struct {
	name    string
	pub     telemetry.Publisher
	serving string
	listens net.Addr // where it listens, if it serves
	risk    string   // what anyone who reaches it can do
}

// backendError is a backend that could not start: a runtime failure.
type backendError struct {
	name string
	err  error
}

func (e *backendError) Error() string { return e.name + ": " + e.err.Error() }
func (e *backendError) Unwrap() error { return e.err }
