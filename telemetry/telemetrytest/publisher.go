package telemetrytest

import (
	"context"
	"slices"
	"sync"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Publisher is a [telemetry.Publisher] that keeps every record it is given,
// in memory, for tests to inspect. It is safe for concurrent use. The zero
// Publisher is ready to use.
type Publisher struct {
	// Fail, if not nil, is called before each publish with the number of
	// calls so far (1 for the first); a non-nil result is returned and the
	// record is not kept. Set it before use.
	Fail func(call int) error

	mu      sync.Mutex
	calls   int
	events  []telemetry.EventMetrics
	network []telemetry.NetworkMetrics
	closed  bool
}

var (
	_ telemetry.Publisher = (*Publisher)(nil)
	_ telemetry.Closer    = (*Publisher)(nil)
)

// PublishEventMetrics keeps m. It returns ctx.Err() if ctx has ended,
// Fail's error, or [telemetry.ErrClosed] after Close.
func (p *Publisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return p.keep(ctx, func() { p.events = append(p.events, m) })
}

// PublishNetworkMetrics keeps m, as PublishEventMetrics does.
func (p *Publisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return p.keep(ctx, func() { p.network = append(p.network, m) })
}

func (p *Publisher) keep(ctx context.Context, add func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return telemetry.ErrClosed
	}
	p.calls++
	if p.Fail != nil {
		if err := p.Fail(p.calls); err != nil {
			return err
		}
	}
	add()
	return nil
}

// Close makes later publish calls return [telemetry.ErrClosed]. A second
// Close returns an error wrapping it too.
func (p *Publisher) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return telemetry.ErrClosed
	}
	p.closed = true
	return nil
}

// Events returns a copy of the event records kept so far, in arrival order.
func (p *Publisher) Events() []telemetry.EventMetrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// Network returns a copy of the network records kept so far, in arrival
// order.
func (p *Publisher) Network() []telemetry.NetworkMetrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.network)
}

// Reset forgets the records kept so far.
func (p *Publisher) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events, p.network, p.calls = nil, nil, 0
}
