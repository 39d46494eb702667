package telemetry

import (
	"context"
	"errors"
)

// A CompositePublisher publishes every record to several publishers. One
// failing does not keep the others from getting the record; their errors
// are joined.
//
// Attached to a Recorder (with [Recorder.AddPublisher], [WithPublishers] or
// [MonitorEvents]), a CompositePublisher is replaced by its members, so each
// member gets its own queue, retries and [PublisherStats], and a retry of
// one never sends a record twice to another.
type CompositePublisher struct {
	pubs []Publisher
}

var (
	_ Publisher = (*CompositePublisher)(nil)
	_ Flusher   = (*CompositePublisher)(nil)
	_ Closer    = (*CompositePublisher)(nil)
)

// NewCompositePublisher returns a CompositePublisher of pubs, in that order.
// It returns an error wrapping [ErrNilPublisher] if one of them is nil, or
// a nil pointer (map, func or channel) of a publisher type; and one
// wrapping [ErrDuplicatePublisher], naming it, if a publisher is given
// twice, directly or as a member of two CompositePublishers among pubs: it
// would get every record twice.
func NewCompositePublisher(pubs ...Publisher) (*CompositePublisher, error) {
	if _, err := flatten(pubs); err != nil {
		return nil, callError("new composite publisher", err)
	}
	return &CompositePublisher{pubs: append([]Publisher(nil), pubs...)}, nil
}

// Publishers returns the members of c, in order.
func (c *CompositePublisher) Publishers() []Publisher {
	return append([]Publisher(nil), c.pubs...)
}

// PublishEventMetrics publishes m to every member and returns their errors
// joined.
func (c *CompositePublisher) PublishEventMetrics(ctx context.Context, m EventMetrics) error {
	return c.each(func(p Publisher) error { return p.PublishEventMetrics(ctx, m) })
}

// PublishNetworkMetrics publishes m to every member and returns their errors
// joined.
func (c *CompositePublisher) PublishNetworkMetrics(ctx context.Context, m NetworkMetrics) error {
	return c.each(func(p Publisher) error { return p.PublishNetworkMetrics(ctx, m) })
}

// Flush flushes every member that is a [Flusher] and returns their errors
// joined.
func (c *CompositePublisher) Flush(ctx context.Context) error {
	return c.each(func(p Publisher) error {
		if f, ok := p.(Flusher); ok {
			return f.Flush(ctx)
		}
		return nil
	})
}

// Close closes every member that is a [Closer] and returns their errors
// joined.
func (c *CompositePublisher) Close(ctx context.Context) error {
	return c.each(func(p Publisher) error {
		if cl, ok := p.(Closer); ok {
			return cl.Close(ctx)
		}
		return nil
	})
}

// each calls f on every member, even after one fails, and joins their
// errors. By [IsPermanent], the result is permanent only if every failure
// is, so a retry is not given up for a member that could still succeed.
func (c *CompositePublisher) each(f func(Publisher) error) error {
	var errs []error
	for _, p := range c.pubs {
		errs = append(errs, f(p))
	}
	return errors.Join(errs...)
}
