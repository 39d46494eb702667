package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// slowFlusher is a memPublisher whose Flush signals entered, then waits
// until its ctx ends: a publisher that honours its ctx, with a flush that
// takes long (a backend that is down).
type slowFlusher struct {
	memPublisher
	entered chan struct{}
}

func (p *slowFlusher) Flush(ctx context.Context) error {
	close(p.entered)
	<-ctx.Done()
	return ctx.Err()
}

// A Flush whose ctx never ends, in progress in the publisher's Flush, must
// not keep Close from returning when Close's ctx ends: the publisher's
// Flush is cut short as a publish call is.
func TestCloseCutsShortAFlushInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &slowFlusher{entered: make(chan struct{})}
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
		must(t, err)
		record(t, r, "t", 3)
		flushed := make(chan error, 1)
		go func() { flushed <- r.Flush(context.Background()) }()
		<-p.entered
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.Close(ctx); err != context.DeadlineExceeded {
			t.Errorf("Close: got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Close returned after %v, want at its 1s deadline", d)
		}
		// The Flush that Close cut short says the Recorder was closed,
		// not that a ctx of its caller ended.
		if err := <-flushed; !errors.Is(err, telemetry.ErrClosed) {
			t.Errorf("Flush cut short by Close: got %v, want ErrClosed", err)
		}
		if s := r.PublisherStats()[0]; s.Published != 6 || s.Queued != 0 || s.Dropped() != 0 {
			t.Errorf("after Close: got %+v, want the 6 records published before the flush", s)
		}
	})
}

// A Flush that Close overtakes, before the worker took its request, does
// not report success: the records it waited for were dropped by Close (its
// ctx ended) and the publisher did not flush for it.
func TestFlushOvertakenByCloseReturnsErrClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &memPublisher{block: make(chan struct{})}
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet),
			telemetry.WithPublishTimeout(time.Hour))
		must(t, err)
		record(t, r, "t", 3)
		synctest.Wait() // the worker holds a record, in a call that waits for p.block
		flushed := make(chan error, 1)
		go func() { flushed <- r.Flush(context.Background()) }()
		synctest.Wait() // the Flush waits for the worker to take its request
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.Close(ctx); err != context.DeadlineExceeded {
			t.Errorf("Close: got %v, want context.DeadlineExceeded", err)
		}
		if err := <-flushed; !errors.Is(err, telemetry.ErrClosed) {
			t.Errorf("Flush overtaken by Close: got %v, want ErrClosed", err)
		}
		if s := r.PublisherStats()[0]; s.DroppedClosed != 6 || s.Published != 0 || s.Queued != 0 {
			t.Errorf("after Close: got %+v, want the 6 records dropped as closed before delivery", s)
		}
		if p.flushes != 0 {
			t.Errorf("the publisher flushed %d times, want 0", p.flushes)
		}
	})
}

// stubbornPublisher ignores its ctx: each call waits until release is
// closed.
type stubbornPublisher struct {
	release chan struct{}
	calls   atomic.Int32
}

func (p *stubbornPublisher) publish() error {
	p.calls.Add(1)
	<-p.release
	return nil
}

func (p *stubbornPublisher) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	return p.publish()
}

func (p *stubbornPublisher) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return p.publish()
}

// A publisher that ignores its ctx (and so breaks the Publisher contract)
// holds Close up until it returns, as Recorder.Close documents: Close then
// returns ctx.Err(), with the call that returned counted as it ended and
// everything else dropped as closed before delivery, and no other call
// made after Close's ctx ended.
func TestCloseWaitsForAPublisherThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &stubbornPublisher{release: make(chan struct{})}
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
		must(t, err)
		record(t, r, "t", 5)
		synctest.Wait()
		start := time.Now()
		time.AfterFunc(10*time.Second, func() { close(p.release) })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.Close(ctx); err != context.DeadlineExceeded {
			t.Errorf("Close: got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("Close returned after %v, want when the publisher returned, after 10s", d)
		}
		s := r.PublisherStats()[0]
		if s.Published != 1 || s.DroppedClosed != 9 || s.Queued != 0 || p.calls.Load() != 1 {
			t.Errorf("after Close: got %+v and %d calls, want 1 call, its record published, and 9 dropped", s, p.calls.Load())
		}
	})
}

// slowBatchPublisher is a batchPublisher whose calls take 1ms.
type slowBatchPublisher struct{ batchPublisher }

func (p *slowBatchPublisher) PublishBatch(ctx context.Context, b *telemetry.Batch) error {
	time.Sleep(time.Millisecond)
	return p.batchPublisher.PublishBatch(ctx, b)
}

// TestFlushAndCloseConcurrentSafe: Flushes from many goroutines, while
// records are made and Close runs, each return nil or ErrClosed, and
// after Close every record is published.
func TestFlushAndCloseConcurrentSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &slowBatchPublisher{}
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
		must(t, err)
		var wg sync.WaitGroup
		var recorded, closedFlushes atomic.Int64
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					id := fmt.Sprint("g", g, "-", i)
					if r.StartEvent("e", id) == nil && r.EndEvent(id, nil) == nil {
						recorded.Add(1)
					}
					if err := r.Flush(context.Background()); errors.Is(err, telemetry.ErrClosed) {
						closedFlushes.Add(1)
					} else if err != nil {
						t.Errorf("Flush: got %v, want nil or ErrClosed", err)
					}
				}
			})
		}
		time.Sleep(5 * time.Millisecond)
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
		t.Logf("%d records, %d Flushes returned ErrClosed", recorded.Load(), closedFlushes.Load())
		s := r.PublisherStats()[0]
		events, _, _ := p.counts()
		if int64(s.Published) != recorded.Load() || int64(events) != recorded.Load() || s.Dropped() != 0 || s.Queued != 0 {
			t.Errorf("after Close: got %+v and %d records published, want the %d recorded", s, events, recorded.Load())
		}
	})
}
