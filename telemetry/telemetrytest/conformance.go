package telemetrytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestPublisher checks that the publishers made by newPublisher keep the
// contract of [telemetry.Publisher] when driven by a Recorder, and returns
// every violation joined in one error (nil if there is none), as
// testing/slogtest does. delivered returns the task ids of the event and
// network records the publisher made last has delivered, however the
// backend can tell (for example by reading back what a test server
// received). It checks that:
//   - every record of a Recorder is delivered, and Flush waits for it;
//   - publishing with an ended context returns within a second;
//   - if the publisher is a [telemetry.Closer], Close through the Recorder
//     works, a second Close returns an error, and publishing (and, for a
//     [telemetry.Observer], observing) after Close returns an error
//     wrapping [telemetry.ErrClosed].
//
// newPublisher is called once per check. If it returns an error, or a nil
// publisher (an error wrapping [telemetry.ErrNilPublisher]), TestPublisher
// returns that at once.
func TestPublisher(newPublisher func() (telemetry.Publisher, error), delivered func() (events, network []string)) error {
	var errs []error
	for _, check := range []struct {
		name string
		run  func(telemetry.Publisher) error
	}{
		{"delivers every record", func(p telemetry.Publisher) error { return checkDelivery(p, delivered) }},
		{"honours an ended context", checkContext},
		{"close", checkClose},
	} {
		p, err := newPublisher()
		if err != nil {
			return fmt.Errorf("telemetrytest: new publisher: %w", err)
		}
		// A nil publisher (or nil pointer) would crash the checks that
		// call it: NewCompositePublisher tells it as a Recorder does.
		if _, err := telemetry.NewCompositePublisher(p); errors.Is(err, telemetry.ErrNilPublisher) {
			return fmt.Errorf("telemetrytest: new publisher returned no error and %w", telemetry.ErrNilPublisher)
		}
		if err := check.run(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", check.name, err))
		}
		if c, ok := p.(telemetry.Closer); ok {
			c.Close(context.Background())
		}
	}
	return errors.Join(errs...)
}

const records = 100

func checkDelivery(p telemetry.Publisher, delivered func() (events, network []string)) error {
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithBatchTimeout(time.Hour))
	if err != nil {
		return err
	}
	defer r.Close(context.Background())
	var want []string
	for i := range records {
		id := fmt.Sprint("conformance-", i)
		want = append(want, id)
		var runErr error
		if i%2 == 1 {
			runErr = errors.New("failed on purpose")
		}
		r.StartEvent("conformance", id)
		r.RecordRetry(id)
		r.EndEvent(id, runErr)
		r.Network().StartOperation(id, "127.0.0.1", 9, "")
		r.Network().EndOperation(id, int64(i), int64(2*i), runErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	events, network := delivered()
	slices.Sort(want)
	var errs []error
	for _, got := range []struct {
		kind string
		ids  []string
	}{{"event", events}, {"network", network}} {
		ids := slices.Clone(got.ids)
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			errs = append(errs, fmt.Errorf("after Flush, %d %s records delivered, want the %d recorded", len(ids), got.kind, len(want)))
		}
	}
	for _, s := range r.PublisherStats() {
		if s.Dropped() != 0 {
			errs = append(errs, fmt.Errorf("publisher %s dropped %d records", s.Name, s.Dropped()))
		}
	}
	return errors.Join(errs...)
}

func checkContext(p telemetry.Publisher) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Now()
		p.PublishEventMetrics(ctx, telemetry.EventMetrics{EventName: "conformance", TaskID: "ctx", StartTime: now,
			EndTime: now, Status: telemetry.StatusCompleted})
	}()
	select {
	case <-done:
		return nil
	case <-time.After(time.Second):
		return errors.New("PublishEventMetrics with an ended context did not return within 1s")
	}
}

func checkClose(p telemetry.Publisher) error {
	c, ok := p.(telemetry.Closer)
	if !ok {
		return nil
	}
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(p))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if err := r.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("first Close: %w", err))
	}
	if err := c.Close(ctx); err == nil {
		errs = append(errs, errors.New("second Close returned nil, want an error"))
	}
	now := time.Now()
	err = p.PublishEventMetrics(ctx, telemetry.EventMetrics{EventName: "conformance", TaskID: "closed", StartTime: now,
		EndTime: now, Status: telemetry.StatusCompleted})
	if !errors.Is(err, telemetry.ErrClosed) {
		errs = append(errs, fmt.Errorf("publish after Close: got %v, want an error wrapping telemetry.ErrClosed", err))
	}
	if o, ok := p.(telemetry.Observer); ok {
		err := o.ObserveEvent(ctx, telemetry.EventObservation{EventName: "conformance", Status: telemetry.StatusCompleted})
		if !errors.Is(err, telemetry.ErrClosed) {
			errs = append(errs, fmt.Errorf("observe after Close: got %v, want an error wrapping telemetry.ErrClosed", err))
		}
	}
	return errors.Join(errs...)
}
