package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// record makes n event runs and n network operations with ids prefix0...
func record(t testing.TB, r *telemetry.Recorder, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprint(prefix, i)
		var err error
		if i%3 == 0 {
			err = errTransient
		}
		runEvent(t, r, "step", id, i%2, err)
		must(t, r.Network().StartOperation(id, "worker-1", 9000, ""))
		must(t, r.Network().EndOperation(id, int64(i), 2*int64(i), err))
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	slices.Sort(out)
	return out
}

func TestEveryPublisherGetsEveryRecord(t *testing.T) {
	synctest.Test(t, testEveryPublisherGetsEveryRecord)
}

func testEveryPublisherGetsEveryRecord(t *testing.T) {
	plain, batch, sync := &memPublisher{}, &batchPublisher{}, &syncPublisher{}
	r := newRecorder(t, telemetry.WithPublishers(plain, batch), telemetry.WithMaxBatchSize(64))
	must(t, r.AddPublisher(sync))
	record(t, r, "t", 1000)
	flush(t, r)

	for name, p := range map[string]*memPublisher{"plain": plain, "batch": &batch.memPublisher, "sync": &sync.memPublisher} {
		if got := p.eventIDs(); !slices.Equal(got, ids("t", 1000)) {
			t.Errorf("%s publisher: got %d event records, want the 1000 recorded", name, len(got))
		}
		if _, n, _ := p.counts(); n != 1000 {
			t.Errorf("%s publisher: got %d network records, want 1000", name, n)
		}
	}
	// Records arrive complete.
	want, _ := r.Metrics("t3")
	for _, m := range plain.events {
		if m.TaskID == "t3" && (m != want || m.Status != telemetry.StatusFailed || m.Error != errTransient.Error() || m.RetryCount != 1) {
			t.Errorf("published %+v, want %+v", m, want)
		}
	}
	for _, size := range batch.sizes {
		if size > 64 || size == 0 {
			t.Errorf("got a batch of %d records, want 1 to 64", size)
		}
	}
	for _, s := range r.PublisherStats() {
		if s.Published != 2000 || s.Dropped() != 0 || s.FailedAttempts != 0 || s.Queued != 0 {
			t.Errorf("stats of %s: got %+v, want 2000 published, nothing else", s.Name, s)
		}
	}
	if sync.flushes != 1 || plain.flushes != 1 || batch.flushes != 1 {
		t.Errorf("Flush calls: got sync %d, plain %d, batch %d; want 1 each", sync.flushes, plain.flushes, batch.flushes)
	}
}

func TestSyncPublisherIsCalledBeforeEndReturns(t *testing.T) {
	p := &syncPublisher{}
	r := newRecorder(t, telemetry.WithPublishers(p))
	runEvent(t, r, "e", "t", 0, nil)
	if n, _, _ := p.counts(); n != 1 {
		t.Errorf("got %d records right after EndEvent, want 1", n)
	}
	if s := r.PublisherStats()[0]; !s.Synchronous || s.Published != 1 {
		t.Errorf("got %+v, want synchronous with 1 published", s)
	}
}

func TestBatchPublisherWaitsForTimeoutWhenBatchIsNotFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &batchPublisher{}
		r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithMaxBatchSize(100), telemetry.WithBatchTimeout(50*time.Millisecond))
		start := time.Now()
		runEvent(t, r, "e", "t", 0, nil)
		time.Sleep(50*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if n, _, _ := p.counts(); n != 0 {
			t.Fatalf("a partial batch was sent after %v, want it to wait for the 50ms timeout", time.Since(start))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n, _, calls := p.counts(); n != 1 || calls != 1 {
			t.Fatalf("at the 50ms timeout: got %d records in %d calls, want 1 in 1", n, calls)
		}
		if got := p.times[0].Sub(start); got != 50*time.Millisecond {
			t.Errorf("the partial batch was sent after %v, want 50ms", got)
		}
	})
}

func TestBlockedPublisherDoesNotBlockRecording(t *testing.T) {
	synctest.Test(t, testBlockedPublisherDoesNotBlockRecording)
}

func testBlockedPublisherDoesNotBlockRecording(t *testing.T) {
	p := &memPublisher{block: make(chan struct{})}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithQueueSize(100), telemetry.WithLogger(quiet))

	// In the bubble, time moves only when every goroutine waits: recording
	// that waited for the publisher would take time (or deadlock).
	start := time.Now()
	for i := range 5000 {
		id := fmt.Sprint("t", i)
		must(t, r.StartEvent("e", id))
		must(t, r.EndEvent(id, nil))
	}
	if d := time.Since(start); d != 0 {
		t.Errorf("recording waited %v for a publisher that does not return, want 0", d)
	}
	s := r.PublisherStats()[0]
	if s.DroppedQueueFull == 0 {
		t.Errorf("got %+v, want records dropped for a full queue", s)
	}
	close(p.block)
	flush(t, r)
	s = r.PublisherStats()[0]
	if s.Published+s.Dropped() != 5000 || s.Queued != 0 {
		t.Errorf("got %d published + %d dropped (%d queued), want 5000 accounted for", s.Published, s.Dropped(), s.Queued)
	}
	if n, _, _ := p.counts(); uint64(n) != s.Published {
		t.Errorf("publisher has %d records, stats say %d published", n, s.Published)
	}
}

func TestSlowPublisherDoesNotSlowRecording(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each call takes 1ms: 2000 records take 2s to deliver.
		p := &slowPublisher{delay: time.Millisecond}
		r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
		start := time.Now()
		for i := range 2000 {
			id := fmt.Sprint("t", i)
			must(t, r.StartEvent("e", id))
			must(t, r.EndEvent(id, nil))
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("recording waited %v for a slow publisher, want 0", d)
		}
		flush(t, r)
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("delivery took %v, want 2000 calls of 1ms", d)
		}
		if s := r.PublisherStats()[0]; s.Published != 2000 || s.Dropped() != 0 {
			t.Errorf("got %+v, want 2000 published", s)
		}
	})
}

// slowPublisher takes delay for each call.
type slowPublisher struct{ delay time.Duration }

func (p *slowPublisher) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	time.Sleep(p.delay)
	return nil
}

func (p *slowPublisher) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	time.Sleep(p.delay)
	return nil
}

func TestFailingPublisherRetriesThenDrops(t *testing.T) {
	synctest.Test(t, testFailingPublisherRetriesThenDrops)
}

func testFailingPublisherRetriesThenDrops(t *testing.T) {
	p := &memPublisher{fail: func(int) error { return errTransient }}
	var logs strings.Builder
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(fastRetry), telemetry.WithLogger(newTextLogger(&logs)))
	record(t, r, "t", 10)
	flush(t, r)
	s := r.PublisherStats()[0]
	if s.Published != 0 || s.DroppedFailed != 20 || s.FailedAttempts != 60 {
		t.Errorf("got %+v, want 0 published, 20 dropped after 3 attempts each (60 failed attempts)", s)
	}
	if _, _, calls := p.counts(); calls != 60 {
		t.Errorf("publisher was called %d times, want 60", calls)
	}
	if !strings.Contains(logs.String(), "publisher gave up") || strings.Count(logs.String(), "gave up") != 1 {
		t.Errorf("want one rate-limited give-up log line, got:\n%s", logs.String())
	}
}

func TestTransientFailureIsRetriedUntilDelivered(t *testing.T) {
	synctest.Test(t, testTransientFailureIsRetriedUntilDelivered)
}

func testTransientFailureIsRetriedUntilDelivered(t *testing.T) {
	p := &memPublisher{fail: func(call int) error {
		if call <= 2 {
			return errTransient
		}
		return nil
	}}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(fastRetry), telemetry.WithLogger(quiet))
	runEvent(t, r, "e", "t", 0, nil)
	flush(t, r)
	if s := r.PublisherStats()[0]; s.Published != 1 || s.FailedAttempts != 2 || s.Dropped() != 0 {
		t.Errorf("got %+v, want published after 2 failed attempts", s)
	}
	if n, _, _ := p.counts(); n != 1 {
		t.Errorf("publisher has %d records, want 1", n)
	}
}

func TestBackoffGrowsAndHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		jitter func(time.Duration) time.Duration
		waits  []time.Duration
	}{
		// Waits of 20ms, then 40ms, then the 80ms hint (capped at 100ms).
		{"no jitter", func(time.Duration) time.Duration { return 0 }, []time.Duration{20, 40, 80}},
		// Jitter takes up to half of a computed wait, never of a hint.
		{"most jitter", func(b time.Duration) time.Duration { return b - 1 }, []time.Duration{10, 20, 80}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &memPublisher{fail: func(call int) error {
					switch call {
					case 1, 2:
						return errTransient
					case 3:
						return telemetry.RetryAfter(errTransient, 80*time.Millisecond)
					}
					return nil
				}}
				policy := telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
				r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy),
					telemetry.WithJitter(tc.jitter), telemetry.WithLogger(quiet))
				runEvent(t, r, "e", "t", 0, nil)
				flush(t, r)
				p.mu.Lock()
				defer p.mu.Unlock()
				if len(p.times) != 4 {
					t.Fatalf("got %d attempts, want 4", len(p.times))
				}
				for i, want := range tc.waits {
					if d := p.times[i+1].Sub(p.times[i]); d != want*time.Millisecond {
						t.Errorf("wait before attempt %d: got %v, want %v", i+2, d, want*time.Millisecond)
					}
				}
			})
		})
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	p := &memPublisher{fail: func(int) error { return telemetry.Permanent(errors.New("HTTP 400: bad document")) }}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(fastRetry), telemetry.WithLogger(quiet))
	record(t, r, "t", 5)
	flush(t, r)
	if s := r.PublisherStats()[0]; s.FailedAttempts != 10 || s.DroppedFailed != 10 {
		t.Errorf("got %+v, want 10 attempts and 10 dropped: one attempt per record", s)
	}
}

func TestPartialBatchDrop(t *testing.T) {
	p := &batchPublisher{}
	p.fail = func(int) error {
		return &telemetry.DroppedError{Dropped: 2, Err: errors.New("mapper_parsing_exception")}
	}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
	for i := range 10 {
		runEvent(t, r, "e", fmt.Sprint("t", i), 0, nil)
	}
	flush(t, r)
	s := r.PublisherStats()[0]
	_, _, calls := p.counts()
	// Each call is one batch, reported delivered but for 2 records.
	if s.Published+s.DroppedFailed != 10 || s.DroppedFailed != uint64(2*calls) || s.FailedAttempts != uint64(calls) {
		t.Errorf("got %+v after %d calls, want 2 dropped per batch, the rest published, no retry", s, calls)
	}
}

// scriptedBatchPublisher is a BatchPublisher whose calls return the errors
// of script, one per call, the last one again for every later call; a nil
// error in it makes the call hang until its ctx ends.
type scriptedBatchPublisher struct {
	memPublisher
	script []error
	mu     sync.Mutex
	sizes  []int
}

func (p *scriptedBatchPublisher) PublishBatch(ctx context.Context, b *telemetry.Batch) error {
	p.mu.Lock()
	err := p.script[min(len(p.sizes), len(p.script)-1)]
	p.sizes = append(p.sizes, b.Len())
	p.mu.Unlock()
	if err == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

// TestPartlyDeliveredBatchIsCountedExactly checks that the records of a
// batch that a *PartialError reported delivered count as published,
// however its delivery ends, and only the others as dropped, once.
func TestPartlyDeliveredBatchIsCountedExactly(t *testing.T) {
	partial := func(n int, err error) error { return &telemetry.PartialError{Delivered: n, Err: err} }
	rejected := errors.New("es_rejected_execution_exception")
	unauthorized := errors.New("HTTP 401")
	attempts3 := telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: time.Second}
	within2s := telemetry.RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Second, MaxElapsed: 2 * time.Second}
	tests := []struct {
		name    string
		policy  telemetry.RetryPolicy
		script  []error       // the errors of the calls; the last one repeats; nil hangs
		closeIn time.Duration // if not 0, Close is given that long, else 1 minute
		want    telemetry.PublisherStats
	}{
		{"transient until MaxAttempts", attempts3,
			[]error{partial(4, rejected), partial(7, rejected), partial(7, rejected)},
			0, telemetry.PublisherStats{Published: 7, DroppedFailed: 3, FailedAttempts: 3}},
		{"transient until MaxElapsed", within2s,
			[]error{partial(4, rejected), partial(7, rejected)},
			0, telemetry.PublisherStats{Published: 7, DroppedFailed: 3, FailedAttempts: 3}},
		{"RetryAfter around the count", attempts3,
			[]error{telemetry.RetryAfter(partial(4, rejected), time.Second), errTransient},
			0, telemetry.PublisherStats{Published: 4, DroppedFailed: 6, FailedAttempts: 3}},
		{"a later error without a count keeps it", attempts3,
			[]error{partial(7, rejected), partial(4, rejected), errTransient},
			0, telemetry.PublisherStats{Published: 7, DroppedFailed: 3, FailedAttempts: 3}},
		{"a final permanent error", attempts3,
			[]error{partial(4, rejected), telemetry.Permanent(unauthorized)},
			0, telemetry.PublisherStats{Published: 4, DroppedFailed: 6, FailedAttempts: 2}},
		{"a final permanent error with a count", attempts3,
			[]error{partial(4, rejected), telemetry.Permanent(partial(6, unauthorized))},
			0, telemetry.PublisherStats{Published: 6, DroppedFailed: 4, FailedAttempts: 2}},
		{"a final DroppedError", attempts3,
			[]error{partial(4, rejected), &telemetry.DroppedError{Dropped: 2, Err: errors.New("mapper_parsing_exception")}},
			0, telemetry.PublisherStats{Published: 8, DroppedFailed: 2, FailedAttempts: 2}},
		{"a count beyond the batch is capped", attempts3,
			[]error{partial(11, rejected)},
			0, telemetry.PublisherStats{Published: 10, FailedAttempts: 3}},
		{"a negative count is none", attempts3,
			[]error{partial(-1, rejected)},
			0, telemetry.PublisherStats{DroppedFailed: 10, FailedAttempts: 3}},
		{"Close ends a wait", attempts3,
			[]error{partial(4, rejected)},
			time.Second / 2, telemetry.PublisherStats{Published: 4, DroppedClosed: 6, FailedAttempts: 1}},
		{"Close ends an attempt", attempts3,
			[]error{partial(4, rejected), nil},
			2 * time.Second, telemetry.PublisherStats{Published: 4, DroppedClosed: 6, FailedAttempts: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &scriptedBatchPublisher{script: tc.script}
				logs := &logRecorder{}
				r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(tc.policy), noJitter,
					telemetry.WithMaxBatchSize(10), telemetry.WithLogger(logs.logger()))
				for i := range 10 {
					runEvent(t, r, "e", fmt.Sprint("t", i), 0, nil)
				}
				closeIn := tc.closeIn
				if closeIn == 0 {
					closeIn = time.Minute
				}
				ctx, cancel := context.WithTimeout(context.Background(), closeIn)
				defer cancel()
				err := r.Close(ctx)
				if cut := tc.closeIn != 0; cut != errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Close: got %v, want DeadlineExceeded: %v", err, cut)
				}
				got := r.PublisherStats()[0]
				want := tc.want
				want.Name, want.QueueCapacity = got.Name, got.QueueCapacity
				if got != want {
					t.Errorf("after Close: got %+v, want %+v", got, want)
				}
				// The give-up is logged with the records dropped, not the batch.
				lines := logs.withMessage("telemetry: publisher gave up, records dropped")
				switch {
				case tc.want.DroppedFailed == 0 && len(lines) != 0:
					t.Errorf("got give-up log lines %+v, want none", lines)
				case tc.want.DroppedFailed > 0 && (len(lines) != 1 || lines[0].attrs["records"] != fmt.Sprint(tc.want.DroppedFailed)):
					t.Errorf("got give-up log lines %+v, want one with records=%d", lines, tc.want.DroppedFailed)
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				if want := slices.Repeat([]int{10}, int(tc.want.FailedAttempts)); !slices.Equal(p.sizes, want) {
					t.Errorf("batch sizes: got %v, want %v (one batch of 10, each attempt)", p.sizes, want)
				}
			})
		})
	}
}

// panicker panics on every call.
type panicker struct{}

func (panicker) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	panic("publisher bug")
}
func (panicker) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	panic("publisher bug")
}

type syncPanicker struct{ panicker }

func (syncPanicker) Synchronous() bool { return true }

func TestPanickingPublisherIsContained(t *testing.T) {
	good := &memPublisher{}
	r := newRecorder(t, telemetry.WithPublishers(panicker{}, syncPanicker{}, good), telemetry.WithLogger(quiet))
	record(t, r, "t", 3)
	flush(t, r)
	stats := r.PublisherStats()
	for _, s := range stats[:2] {
		if s.Panics != 6 || s.DroppedFailed != 6 || s.Published != 0 {
			t.Errorf("%s: got %+v, want 6 panics, 6 dropped", s.Name, s)
		}
	}
	if s := stats[2]; s.Published != 6 {
		t.Errorf("the other publisher: got %+v, want 6 published", s)
	}
}

func TestCloseDeliversEverythingBuffered(t *testing.T) {
	synctest.Test(t, testCloseDeliversEverythingBuffered)
}

func testCloseDeliversEverythingBuffered(t *testing.T) {
	slow := &memPublisher{fail: func(int) error { time.Sleep(100 * time.Microsecond); return nil }}
	batch := &batchPublisher{}
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(slow, batch), telemetry.WithBatchTimeout(time.Hour))
	must(t, err)
	start := time.Now()
	record(t, r, "t", 500)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, r.Close(ctx))
	if d := time.Since(start); d != 1000*100*time.Microsecond {
		t.Errorf("Close returned after %v, want after the 1000 calls of 100µs to the slow publisher", d)
	}
	for _, p := range []*memPublisher{slow, &batch.memPublisher} {
		if e, n, _ := p.counts(); e != 500 || n != 500 {
			t.Errorf("after Close: got %d events, %d network records; want 500 each", e, n)
		}
		if p.closes != 1 {
			t.Errorf("publisher closed %d times, want 1", p.closes)
		}
	}
}

func TestAfterClose(t *testing.T) {
	synctest.Test(t, testAfterClose)
}

func testAfterClose(t *testing.T) {
	p := &memPublisher{}
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(p))
	must(t, err)
	runEvent(t, r, "e", "done", 0, nil)
	must(t, r.StartEvent("e", "open"))
	must(t, r.Network().StartOperation("op", "h", 1, ""))

	// Concurrent Close: exactly one succeeds.
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- r.Close(context.Background()) }()
	}
	var ok, closed int
	for range 4 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, telemetry.ErrClosed):
			closed++
		default:
			t.Errorf("Close: got %v", err)
		}
	}
	if ok != 1 || closed != 3 {
		t.Errorf("got %d successful and %d ErrClosed Close calls, want 1 and 3", ok, closed)
	}
	if p.closes != 1 {
		t.Errorf("publisher closed %d times, want 1", p.closes)
	}

	calls := map[string]error{
		"StartEvent":     r.StartEvent("e", "new"),
		"EndEvent":       r.EndEvent("open", nil),
		"RecordRetry":    r.RecordRetry("open"),
		"StartOperation": r.Network().StartOperation("op2", "h", 1, ""),
		"EndOperation":   r.Network().EndOperation("op", 0, 0, nil),
		"Flush":          r.Flush(context.Background()),
		"AddPublisher":   r.AddPublisher(&memPublisher{}),
	}
	for name, err := range calls {
		if !errors.Is(err, telemetry.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
	// Queries keep working on what was recorded.
	if m, ok := r.Metrics("done"); !ok || m.Status != telemetry.StatusCompleted {
		t.Errorf("Metrics after Close: got %+v, %v", m, ok)
	}
	if n, _, _ := p.counts(); n != 1 {
		t.Errorf("publisher got %d records, want 1", n)
	}
}

func TestFlushAndCloseHonourContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &memPublisher{block: make(chan struct{})}
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
		must(t, err)
		record(t, r, "t", 10)

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		// Both return ctx.Err() itself, as documented, not an error
		// wrapping it.
		if err := r.Flush(ctx); err != context.DeadlineExceeded {
			t.Errorf("Flush with a blocked publisher: got %#v, want context.DeadlineExceeded", err)
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel2()
		if err := r.Close(ctx2); err != context.DeadlineExceeded {
			t.Errorf("Close with a blocked publisher: got %#v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("Flush and Close returned after %v, want their two 50ms deadlines", d)
		}
		// The worker gave up (the publisher honours its ctx) and exited
		// before Close returned: what it held is counted as dropped.
		if s := r.PublisherStats()[0]; s.DroppedClosed != 20 || s.Dropped() != 20 || s.Queued != 0 || s.Published != 0 {
			t.Errorf("right after Close: got %+v, want the 20 records dropped as closed before delivery", s)
		}
	})
}

func TestCompositePublisherAttachesEachMember(t *testing.T) {
	a := &namedPublisher{name: "backend"}
	b := &namedPublisher{name: "backend"}
	c, err := telemetry.NewCompositePublisher(a, b)
	must(t, err)
	r := newRecorder(t, telemetry.WithPublishers(c))
	record(t, r, "t", 10)
	flush(t, r)
	var names []string
	for _, s := range r.PublisherStats() {
		names = append(names, s.Name)
		if s.Published != 20 {
			t.Errorf("%s: got %d published, want 20", s.Name, s.Published)
		}
	}
	if fmt.Sprint(names) != "[backend backend#2]" {
		t.Errorf("got publishers %v, want [backend backend#2]", names)
	}
}

func TestCompositePublisherUsedDirectly(t *testing.T) {
	ok := &memPublisher{}
	failing := &memPublisher{fail: func(int) error { return errTransient }}
	permanent := &memPublisher{fail: func(int) error { return telemetry.Permanent(errors.New("bad")) }}
	c, err := telemetry.NewCompositePublisher(failing, ok, permanent)
	must(t, err)
	ctx := context.Background()
	err = c.PublishEventMetrics(ctx, telemetry.EventMetrics{EventName: "e", TaskID: "t"})
	if !errors.Is(err, errTransient) || !strings.Contains(err.Error(), "bad") {
		t.Errorf("got %v, want both errors joined", err)
	}
	if telemetry.IsPermanent(err) {
		t.Error("a joined error with a transient part must not be permanent")
	}
	if n, _, _ := ok.counts(); n != 1 {
		t.Errorf("the working member got %d records, want 1 despite the failing one before it", n)
	}
	c2, _ := telemetry.NewCompositePublisher(permanent)
	if err := c2.PublishNetworkMetrics(ctx, telemetry.NetworkMetrics{}); !telemetry.IsPermanent(err) {
		t.Errorf("got %v, want a permanent error when every failure is permanent", err)
	}
	// A member that is neither a Flusher nor a Closer is skipped by both.
	plain, err := telemetry.NewCompositePublisher(ok, plainPublisher{})
	must(t, err)
	if err := plain.Flush(ctx); err != nil {
		t.Errorf("Flush with a member that cannot flush: got %v, want nil", err)
	}
	must(t, c.Flush(ctx))
	must(t, c.Close(ctx))
	if err := plain.Close(ctx); err != nil {
		t.Errorf("Close with a member that cannot close: got %v, want nil", err)
	}
	if ok.flushes != 2 || ok.closes != 2 || len(c.Publishers()) != 3 {
		t.Errorf("got %d flushes, %d closes, %d members", ok.flushes, ok.closes, len(c.Publishers()))
	}
	if _, err := telemetry.NewCompositePublisher(ok, nil); !errors.Is(err, telemetry.ErrNilPublisher) {
		t.Errorf("NewCompositePublisher with nil: got %v, want ErrNilPublisher", err)
	}
	if err := newRecorder(t).AddPublisher(nil); !errors.Is(err, telemetry.ErrNilPublisher) {
		t.Errorf("AddPublisher(nil): got %v, want ErrNilPublisher", err)
	}
}

func TestPublisherNames(t *testing.T) {
	r := newRecorder(t, telemetry.WithPublishers(&memPublisher{}, &memPublisher{}, &namedPublisher{name: "es"}))
	var names []string
	for _, s := range r.PublisherStats() {
		names = append(names, s.Name)
	}
	if fmt.Sprint(names) != "[telemetry_test.memPublisher telemetry_test.memPublisher#2 es]" {
		t.Errorf("got %v", names)
	}
}

func TestRecorderConcurrentSafe(t *testing.T) {
	synctest.Test(t, testRecorderConcurrentSafe)
}

func testRecorderConcurrentSafe(t *testing.T) {
	p := &batchPublisher{}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithMaxEvents(5000), telemetry.WithQueueSize(1<<16))
	const workers, perWorker = 8, 1500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var queryErr error
	var qwg sync.WaitGroup
	qwg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			rs := r.RetryStats()
			var sum uint64
			for _, n := range rs.ByRetryCount {
				sum += n
			}
			if sum != rs.EventsWithRetries {
				queryErr = fmt.Errorf("inconsistent retry stats: distribution sums to %d, events with retries %d", sum, rs.EventsWithRetries)
				return
			}
			rep := r.Report()
			if len(rep.Events) != rep.Stats.EventsRetained+rep.Stats.EventsPending {
				queryErr = fmt.Errorf("report has %d events, its stats say %d retained + %d pending",
					len(rep.Events), rep.Stats.EventsRetained, rep.Stats.EventsPending)
				return
			}
			r.FailedEvents()
			r.Network().SlowOperations(time.Millisecond)
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprint(w, "-", i)
				var err error
				if i%4 == 0 {
					err = errTransient
				}
				runEvent(t, r, "e", id, i%3, err)
				must(t, r.Network().StartOperation(id, "h", 80, ""))
				must(t, r.Network().EndOperation(id, 1, 2, err))
			}
		})
	}
	wg.Wait()
	close(stop)
	qwg.Wait()
	if queryErr != nil {
		t.Fatal(queryErr)
	}
	flush(t, r)
	const total = workers * perWorker
	s := r.Stats()
	if s.EventsEnded != total || s.EventsFailed != total/4 || s.NetworkEnded != total || s.BytesSent != total || s.EventsRetained != 5000 {
		t.Errorf("got stats %+v", s)
	}
	rs := r.RetryStats()
	// i%3 retries: per worker, 500 runs with 1 and 500 with 2.
	if rs.TotalRetries != workers*1500 || rs.EventsWithRetries != workers*1000 || rs.ByRetryCount[1] != workers*500 {
		t.Errorf("got retry stats %+v", rs)
	}
	if e, n, _ := p.counts(); e != total || n != total {
		t.Errorf("publisher got %d events and %d network records, want %d each", e, n, total)
	}
}

func TestOutageShorterThanMaxElapsedIsBridged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The backend is down for 950ms of a 1s window. Waits of 100ms,
		// 200ms and 400ms bring attempts at 0, 100ms, 300ms and 700ms; the
		// next 400ms wait would end after the window, so it is cut to end
		// at 1s, where the last attempt succeeds.
		start := time.Now()
		p := &memPublisher{fail: func(int) error {
			if time.Since(start) < 950*time.Millisecond {
				return errTransient
			}
			return nil
		}}
		policy := telemetry.RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, MaxElapsed: time.Second}
		r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy), noJitter, telemetry.WithLogger(quiet))
		runEvent(t, r, "e", "t", 0, nil)
		flush(t, r)
		if s := r.PublisherStats()[0]; s.Published != 1 || s.FailedAttempts != 4 || s.Dropped() != 0 {
			t.Errorf("got %+v, want delivered after 4 failed attempts", s)
		}
		want := []time.Duration{0, 100 * ms, 300 * ms, 700 * ms, 1000 * ms}
		if got := attemptTimes(p, start); !slices.Equal(got, want) {
			t.Errorf("attempts at %v, want %v", got, want)
		}
	})
}

func TestRetriesStopAtMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &memPublisher{fail: func(int) error { return errTransient }}
		policy := telemetry.RetryPolicy{InitialBackoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxElapsed: 100 * time.Millisecond}
		logs := &logRecorder{}
		r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy), noJitter, telemetry.WithLogger(logs.logger()))
		start := time.Now()
		runEvent(t, r, "e", "t", 0, nil)
		flush(t, r)
		// Waits of 40ms, then one cut to 20ms for a last attempt at the
		// 100ms deadline; none after it.
		want := []time.Duration{0, 40 * ms, 80 * ms, 100 * ms}
		if got := attemptTimes(p, start); !slices.Equal(got, want) {
			t.Errorf("attempts at %v, want %v", got, want)
		}
		if s := r.PublisherStats()[0]; s.DroppedFailed != 1 || s.FailedAttempts != 4 {
			t.Errorf("got %+v, want dropped after 4 attempts", s)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("gave up after %v, want at the 100ms deadline", d)
		}
		if l := logs.withMessage("telemetry: publisher gave up, records dropped"); len(l) != 1 || l[0].attrs["attempt"] != "4" {
			t.Errorf("got give-up log lines %+v, want one after attempt 4", l)
		}
	})
}

func TestRetryAfterHintIsCutAtMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A server asks for 5s; the window ends at 1s: one last attempt then.
		p := &memPublisher{fail: func(int) error { return telemetry.RetryAfter(errTransient, 5*time.Second) }}
		policy := telemetry.RetryPolicy{MaxBackoff: 10 * time.Second, MaxElapsed: time.Second}
		r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy), telemetry.WithLogger(quiet))
		start := time.Now()
		runEvent(t, r, "e", "t", 0, nil)
		flush(t, r)
		want := []time.Duration{0, time.Second}
		if got := attemptTimes(p, start); !slices.Equal(got, want) {
			t.Errorf("attempts at %v, want %v", got, want)
		}
	})
}

const ms = time.Millisecond

// attemptTimes returns the times of p's calls, as durations since start.
func attemptTimes(p *memPublisher, start time.Time) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]time.Duration, len(p.times))
	for i, at := range p.times {
		out[i] = at.Sub(start)
	}
	return out
}

// attacher remembers the Recorder it was attached to.
type attacher struct {
	memPublisher
	attached []*telemetry.Recorder
}

func (a *attacher) Attach(r *telemetry.Recorder) { a.attached = append(a.attached, r) }

func TestAttacherLearnsItsRecorder(t *testing.T) {
	direct, member := &attacher{}, &attacher{}
	c, err := telemetry.NewCompositePublisher(member)
	must(t, err)
	r := newRecorder(t, telemetry.WithPublishers(direct, c))
	for name, a := range map[string]*attacher{"direct": direct, "composite member": member} {
		if len(a.attached) != 1 || a.attached[0] != r {
			t.Errorf("%s: attached to %v, want once to the Recorder %p", name, a.attached, r)
		}
	}
}

// exclusivePublisher counts the times two of its methods ran at once, which
// a Recorder must never let happen. Each publish call hangs until its ctx
// ends, then takes 1ms more to return, as a backend call that honours its
// ctx does. calls is a plain field, for the race detector to watch too.
type exclusivePublisher struct {
	active, overlaps atomic.Int32
	calls, closes    int
}

func (p *exclusivePublisher) enter() {
	if p.active.Add(1) > 1 {
		p.overlaps.Add(1)
	}
	p.calls++
}

func (p *exclusivePublisher) leave() { p.active.Add(-1) }

func (p *exclusivePublisher) hang(ctx context.Context) error {
	p.enter()
	defer p.leave()
	<-ctx.Done()
	time.Sleep(time.Millisecond)
	return ctx.Err()
}

func (p *exclusivePublisher) PublishEventMetrics(ctx context.Context, _ telemetry.EventMetrics) error {
	return p.hang(ctx)
}

func (p *exclusivePublisher) PublishNetworkMetrics(ctx context.Context, _ telemetry.NetworkMetrics) error {
	return p.hang(ctx)
}

func (p *exclusivePublisher) Flush(context.Context) error {
	p.enter()
	defer p.leave()
	return nil
}

func (p *exclusivePublisher) Close(context.Context) error {
	p.enter()
	defer p.leave()
	p.closes++
	return nil
}

// exclusiveBatchPublisher is an exclusivePublisher that takes batches.
type exclusiveBatchPublisher struct{ exclusivePublisher }

func (p *exclusiveBatchPublisher) PublishBatch(ctx context.Context, _ *telemetry.Batch) error {
	return p.hang(ctx)
}

func TestCloseNeverOverlapsAPublishCall(t *testing.T) {
	tests := []struct {
		name string
		pub  interface {
			telemetry.Publisher
			stats() (overlaps int32, closes int)
		}
	}{
		{"one record per call", &exclusivePublisher{}},
		{"batches", &exclusiveBatchPublisher{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := telemetry.NewRecorder(telemetry.WithPublishers(tc.pub), telemetry.WithLogger(quiet))
				must(t, err)
				record(t, r, "t", 5)
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Close: got %v, want DeadlineExceeded", err)
				}
				// Close cut the call in flight short at its deadline and
				// returned when that call did, 1ms later.
				if d := time.Since(start); d != time.Second+time.Millisecond {
					t.Errorf("Close returned after %v, want 1.001s", d)
				}
				if overlaps, closes := tc.pub.stats(); overlaps != 0 || closes != 1 {
					t.Errorf("got %d overlapping calls and %d Close calls, want 0 and 1", overlaps, closes)
				}
			})
		})
	}
}

func (p *exclusivePublisher) stats() (int32, int) { return p.overlaps.Load(), p.closes }

func TestCloseAccountsForEveryRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logRecorder{}
		hanging := &exclusivePublisher{}
		failing := &namedPublisher{name: "failing"}
		failing.fail = func(int) error { return telemetry.Permanent(errors.New("HTTP 400")) }
		delivering := &namedPublisher{name: "delivering"}
		// One shard, so that a queue holds exactly 4 records.
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(hanging, failing, delivering),
			telemetry.WithMaxEvents(1000), telemetry.WithQueueSize(4), telemetry.WithLogger(logs.logger()))
		must(t, err)
		// The hanging publisher's worker takes the first record and hangs;
		// of the next 9, 4 fill its queue and 5 find it full.
		for i := range 10 {
			runEvent(t, r, "e", fmt.Sprint("t", i), 0, nil)
			synctest.Wait()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close: got %v, want DeadlineExceeded", err)
		}
		// Right after Close, every record is published or dropped, with a
		// reason.
		want := map[string]telemetry.PublisherStats{
			"telemetry_test.exclusivePublisher": {DroppedQueueFull: 5, DroppedClosed: 5, FailedAttempts: 1}, // the call Close cut short
			"failing":                           {DroppedFailed: 10, FailedAttempts: 10},
			"delivering":                        {Published: 10},
		}
		for _, s := range r.PublisherStats() {
			w := want[s.Name]
			// 4 event records in one shard, and a record in each of the 16
			// shards of network records (100,000 retained).
			w.Name, w.QueueCapacity = s.Name, 4+16
			if s != w {
				t.Errorf("right after Close: got %+v, want %+v", s, w)
			}
			if s.Published+s.Dropped() != 10 {
				t.Errorf("%s: %d published + %d dropped, want the 10 recorded", s.Name, s.Published, s.Dropped())
			}
		}
		// One warning per publisher that dropped records, with the counts.
		lines := logs.withMessage("telemetry: publisher closed, records dropped")
		got := make(map[string]map[string]string)
		for _, l := range lines {
			if l.level != slog.LevelWarn {
				t.Errorf("got level %v, want WARN", l.level)
			}
			got[l.attrs["publisher"]] = l.attrs
		}
		wantLogs := map[string]map[string]string{
			"telemetry_test.exclusivePublisher": {"publisher": "telemetry_test.exclusivePublisher", "dropped": "10",
				"queue_full": "5", "failed": "0", "closed_before_delivery": "5", "published": "0"},
			"failing": {"publisher": "failing", "dropped": "10",
				"queue_full": "0", "failed": "10", "closed_before_delivery": "0", "published": "0"},
		}
		if len(lines) != 2 || fmt.Sprint(got) != fmt.Sprint(wantLogs) {
			t.Errorf("got %d close warnings %v, want %v", len(lines), got, wantLogs)
		}
	})
}

// gatedPublisher accepts one record per call, but its call number stopAt
// closes reached, then waits until gate is closed (or its ctx ends).
type gatedPublisher struct {
	stopAt  int32
	reached chan struct{}
	gate    chan struct{}
	calls   atomic.Int32
}

func (p *gatedPublisher) publish(ctx context.Context) error {
	if p.calls.Add(1) == p.stopAt {
		close(p.reached)
		select {
		case <-p.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *gatedPublisher) PublishEventMetrics(ctx context.Context, _ telemetry.EventMetrics) error {
	return p.publish(ctx)
}

func (p *gatedPublisher) PublishNetworkMetrics(ctx context.Context, _ telemetry.NetworkMetrics) error {
	return p.publish(ctx)
}

func TestQueuedIsExactWhileDelivering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &gatedPublisher{stopAt: 4, reached: make(chan struct{}), gate: make(chan struct{})}
		r := newRecorder(t, telemetry.WithPublishers(p))
		check := func(when string, recorded, published int) {
			t.Helper()
			s := r.PublisherStats()[0]
			if s.Published != uint64(published) || s.Dropped() != 0 || s.Queued != recorded-published {
				t.Errorf("%s: got %d queued, %d published, %d dropped; want %d queued (%d recorded - %d published)",
					when, s.Queued, s.Published, s.Dropped(), recorded-published, recorded, published)
			}
		}
		record(t, r, "a", 10) // 10 events, 10 network operations
		<-p.reached           // the worker is in its 4th call
		check("blocked on the 4th record", 20, 3)
		record(t, r, "b", 3)
		synctest.Wait()
		check("3 more recorded while blocked", 26, 3)
		close(p.gate)
		flush(t, r)
		check("after Flush", 26, 26)
	})
}

func TestLongPublisherNamesAreBounded(t *testing.T) {
	long := strings.Repeat("n", 300)
	r := newRecorder(t, telemetry.WithPublishers(&namedPublisher{name: long}, &namedPublisher{name: long}))
	s := r.PublisherStats()
	if len(s[0].Name) > 128 || len(s[1].Name) > 128 || s[0].Name == s[1].Name || !strings.HasPrefix(s[0].Name, "nnnn") {
		t.Errorf("got names %q and %q, want two distinct names of at most 128 bytes", s[0].Name, s[1].Name)
	}
}

// observer is a synchronous Observer that keeps what it is given, and
// fails the publish methods, which a Recorder must not call.
type observer struct {
	syncPublisher
	mu      sync.Mutex
	events  []telemetry.EventObservation
	network []telemetry.NetworkObservation
	fail    error // returned by the observe methods if not nil
	panics  bool  // whether the observe methods panic
}

func (o *observer) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	return errors.New("PublishEventMetrics called on an Observer")
}

func (o *observer) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return errors.New("PublishNetworkMetrics called on an Observer")
}

func (o *observer) ObserveEvent(_ context.Context, ob telemetry.EventObservation) error {
	return o.keep(func() { o.events = append(o.events, ob) })
}

func (o *observer) ObserveNetwork(_ context.Context, ob telemetry.NetworkObservation) error {
	return o.keep(func() { o.network = append(o.network, ob) })
}

// keep panics if o is to, and otherwise calls add under o's lock and
// returns o.fail.
func (o *observer) keep(add func()) error {
	if o.panics {
		panic("observer bug")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	add()
	return o.fail
}

// TestObserverGetsTheObservationOfEveryRecord checks that a Recorder hands
// a synchronous Observer the Observation of each finished record, before
// the end returns, instead of calling its publish methods.
func TestObserverGetsTheObservationOfEveryRecord(t *testing.T) {
	o := &observer{}
	r := newRecorder(t, telemetry.WithPublishers(o))
	enq := r.Now().Add(-3 * time.Second)
	must(t, r.StartEvent("load", "t1", telemetry.WithEnqueueTime(enq),
		telemetry.WithSpanContext(telemetry.SpanContext{TraceID: [16]byte{1}, SpanID: [8]byte{2}, Sampled: true})))
	must(t, r.RecordRetry("t1"))
	must(t, r.RecordRetry("t1"))
	must(t, r.EndEvent("t1", errTransient))
	must(t, r.StartEvent("load", "t2", telemetry.WithEnqueueTime(r.Now().Add(time.Hour)))) // a clock ahead
	must(t, r.EndEvent("t2", nil))
	must(t, r.StartEvent("save", "t3"))
	must(t, r.EndEvent("t3", nil))
	must(t, r.Network().StartOperation("t1", "db", 5432, "query"))
	must(t, r.Network().EndOperation("t1", 10, 20, nil))
	must(t, r.Network().StartOperation("t2", "db", 5432, ""))
	must(t, r.Network().EndOperation("t2", 0, 0, errTransient))

	var want []telemetry.EventObservation
	for _, id := range []string{"t1", "t2", "t3"} {
		m, _ := r.Metrics(id)
		want = append(want, m.Observation())
	}
	if !slices.Equal(o.events, want) {
		t.Errorf("observed events\n%+v\nwant\n%+v", o.events, want)
	}
	if ob := o.events[0]; ob.Status != telemetry.StatusFailed || ob.Retries != 2 || !ob.Enqueued || ob.Wait < 3*time.Second || !ob.Span.Sampled {
		t.Errorf("the failed run: got %+v, want failed, 2 retries, a wait of at least 3s, its span", ob)
	}
	if ob := o.events[1]; !ob.Enqueued || ob.Wait != 0 {
		t.Errorf("the run enqueued after its start: got %+v, want enqueued with no wait", ob)
	}
	if ob := o.events[2]; ob.Enqueued || ob.Wait != 0 || ob.Status != telemetry.StatusCompleted {
		t.Errorf("the run with no enqueue time: got %+v, want completed, not enqueued", ob)
	}
	var wantNet []telemetry.NetworkObservation
	for _, id := range []string{"t1", "t2"} {
		m, _ := r.Network().Metrics(id)
		wantNet = append(wantNet, m.Observation())
	}
	if !slices.Equal(o.network, wantNet) {
		t.Errorf("observed operations\n%+v\nwant\n%+v", o.network, wantNet)
	}
	if ob := o.network[1]; ob.Operation != telemetry.DefaultOperation || ob.Status != telemetry.StatusFailed {
		t.Errorf("the failed operation: got %+v, want %s, failed", ob, telemetry.DefaultOperation)
	}
	if s := r.PublisherStats()[0]; !s.Synchronous || s.Published != 5 || s.Dropped() != 0 || s.FailedAttempts != 0 {
		t.Errorf("stats: got %+v, want synchronous, 5 published, nothing failed", s)
	}
}

// TestObserverFailuresAndPanicsAreCounted checks that an Observer's errors
// and panics are counted as a SyncPublisher's are, and contained.
func TestObserverFailuresAndPanicsAreCounted(t *testing.T) {
	failing, panicking := &observer{fail: errTransient}, &observer{panics: true}
	r := newRecorder(t, telemetry.WithPublishers(failing, panicking), telemetry.WithLogger(quiet))
	record(t, r, "t", 3)
	for i, s := range r.PublisherStats() {
		wantPanics := uint64(0)
		if i == 1 {
			wantPanics = 6
		}
		if s.Published != 0 || s.DroppedFailed != 6 || s.FailedAttempts != 6 || s.Panics != wantPanics {
			t.Errorf("%s: got %+v, want 6 failed attempts and 6 dropped, %d panics", s.Name, s, wantPanics)
		}
	}
	if len(failing.events) != 3 || len(failing.network) != 3 {
		t.Errorf("the failing Observer got %d events and %d operations, want 3 of each", len(failing.events), len(failing.network))
	}
}

// goexiter is a synchronous publisher that ends its caller's goroutine.
type goexiter struct{ syncPublisher }

func (*goexiter) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	runtime.Goexit()
	return nil
}

// TestSyncPublisherGoexitIsCounted checks that a synchronous publisher
// that calls runtime.Goexit still has the record counted, once, as a
// queued publisher's is: a panic, and the record dropped; and that the run
// it was handed stays ended.
func TestSyncPublisherGoexitIsCounted(t *testing.T) {
	r := newRecorder(t, telemetry.WithPublishers(&goexiter{}))
	done := make(chan struct{})
	must(t, r.StartEvent("e", "t"))
	go func() {
		defer close(done)
		r.EndEvent("t", nil) // never returns: the publisher ends the goroutine
	}()
	<-done
	if s := r.PublisherStats()[0]; s.Published+s.Dropped() != 1 || s.Panics != 1 || s.DroppedFailed != 1 {
		t.Errorf("got %+v, want the record counted once, as dropped by a panic", s)
	}
	if m, ok := r.Metrics("t"); !ok || m.Status != telemetry.StatusCompleted {
		t.Errorf("got %+v, %v; want the run ended", m, ok)
	}
}

// flushClosePanicker keeps its records but panics in Flush and Close.
type flushClosePanicker struct{ memPublisher }

func (*flushClosePanicker) Flush(context.Context) error { panic("flush bug") }
func (*flushClosePanicker) Close(context.Context) error { panic("close bug") }

type syncFlushClosePanicker struct{ flushClosePanicker }

func (*syncFlushClosePanicker) Synchronous() bool { return true }

// TestPanicInFlushOrCloseIsContained checks that a publisher whose Flush
// or Close panics, queued or synchronous, does not crash the program: the
// panic becomes an error of Recorder.Flush and Recorder.Close, the records
// are delivered, and Close still ends the worker.
func TestPanicInFlushOrCloseIsContained(t *testing.T) {
	for _, p := range []telemetry.Publisher{&flushClosePanicker{}, &syncFlushClosePanicker{}} {
		t.Run(fmt.Sprintf("%T", p), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
				must(t, err)
				record(t, r, "t", 2)
				if err := r.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "flush bug") {
					t.Errorf("Flush: got %v, want an error naming the panic", err)
				}
				if err := r.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "close bug") {
					t.Errorf("Close: got %v, want an error naming the panic", err)
				}
				if s := r.PublisherStats()[0]; s.Published != 4 || s.Queued != 0 || s.Dropped() != 0 || s.Panics != 3 {
					// Flush, then Close: its flush and its Close.
					t.Errorf("got %+v, want the 4 records published and the 3 panics counted", s)
				}
			})
		})
	}
}

// stuckHandler is a slog.Handler whose Handle, for the message msg, blocks
// until release is closed, then panics: a stuck log sink, then a broken one.
type stuckHandler struct {
	msg     string
	entered chan struct{} // closed when Handle is first called with msg
	release chan struct{}
	once    sync.Once
}

func (h *stuckHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *stuckHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	h.once.Do(func() { close(h.entered) })
	<-h.release
	panic("log sink bug")
}

func (h *stuckHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *stuckHandler) WithGroup(string) slog.Handler      { return h }

// TestQueueFullWarningDoesNotBlockRecording checks that the warning logged
// when a publisher's buffer first overflows is logged off the recording
// path: a log handler that blocks does not stop recording (in the same
// shard, on any goroutine), and one that panics does not crash it.
func TestQueueFullWarningDoesNotBlockRecording(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &stuckHandler{msg: "telemetry: publisher queue full, dropping records; see PublisherStats for the count",
			entered: make(chan struct{}), release: make(chan struct{})}
		p := &memPublisher{block: make(chan struct{})}
		// One shard, so that every run takes the same shard lock.
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithQueueSize(4),
			telemetry.WithMaxEvents(100), telemetry.WithLogger(slog.New(h)))
		must(t, err)

		const goroutines, runs = 4, 50
		var recorded atomic.Int64
		recordRuns := func(g int) {
			for i := range runs {
				id := fmt.Sprint("g", g, "-", i)
				if err := r.StartEvent("e", id); err != nil {
					t.Errorf("StartEvent: %v", err)
					return
				}
				if err := r.EndEvent(id, nil); err != nil {
					t.Errorf("EndEvent: %v", err)
					return
				}
				recorded.Add(1)
			}
		}
		go recordRuns(0) // overflows the buffer: the warning is logged
		<-h.entered
		for g := 1; g < goroutines; g++ {
			go recordRuns(g)
		}
		// Every goroutine is now blocked for good (the handler, the
		// publisher) or has returned: recording must have gone on while the
		// handler is stuck.
		synctest.Wait()
		if n := recorded.Load(); n != goroutines*runs {
			t.Fatalf("%d runs recorded while the log handler is stuck, want %d", n, goroutines*runs)
		}
		close(h.release) // the handler now panics, off the recording path
		synctest.Wait()
		runEvent(t, r, "e", "after", 0, nil)
		close(p.block)
		must(t, r.Close(context.Background()))
		s := r.PublisherStats()[0]
		if s.DroppedQueueFull == 0 || s.Published+s.Dropped() != goroutines*runs+1 || s.Queued != 0 {
			t.Errorf("got %+v, want %d records accounted for, some dropped for a full queue", s, goroutines*runs+1)
		}
	})
}

// panickingHandler is a slog.Handler that panics on every record.
type panickingHandler struct{ calls atomic.Int64 }

func (h *panickingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *panickingHandler) Handle(context.Context, slog.Record) error {
	h.calls.Add(1)
	panic("log sink bug")
}
func (h *panickingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panickingHandler) WithGroup(string) slog.Handler      { return h }

// TestPanickingLogHandlerIsContained checks that a log handler that panics
// crashes neither a worker (logging a give-up), nor a recording call
// (a synchronous publisher's give-up), nor Close (its summary of drops).
func TestPanickingLogHandlerIsContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &panickingHandler{}
		permanent := func(int) error { return telemetry.Permanent(errTransient) }
		queued := &memPublisher{fail: permanent}
		sync := &syncPublisher{memPublisher{fail: permanent}}
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(queued, sync), telemetry.WithLogger(slog.New(h)))
		must(t, err)
		record(t, r, "t", 3)
		flush(t, r)
		must(t, r.Close(context.Background()))
		for _, s := range r.PublisherStats() {
			if s.DroppedFailed != 6 || s.Queued != 0 {
				t.Errorf("%s: got %+v, want the 6 records dropped as failed", s.Name, s)
			}
		}
		if h.calls.Load() == 0 {
			t.Error("nothing was logged")
		}
	})
}

// TestNilPublisherIsRefused checks that a nil publisher of any type, given
// by itself or inside a CompositePublisher, is refused with an error that
// names its type, and panics nowhere.
func TestNilPublisherIsRefused(t *testing.T) {
	nilComposite := (*telemetry.CompositePublisher)(nil)
	nilMem := (*memPublisher)(nil)
	nilNamed := (*namedPublisher)(nil) // its Name would panic
	withNil, err := telemetry.NewCompositePublisher(&memPublisher{})
	must(t, err)
	for _, p := range []telemetry.Publisher{nil, nilComposite, nilMem, nilNamed} {
		t.Run(fmt.Sprintf("%T", p), func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, telemetry.ErrNilPublisher) || (p != nil && !strings.Contains(err.Error(), fmt.Sprintf("%T", p))) {
					t.Errorf("%s: got %v, want an error wrapping ErrNilPublisher naming %T", what, err, p)
				}
			}
			r := newRecorder(t)
			check("AddPublisher", r.AddPublisher(p))
			_, err := telemetry.NewRecorder(telemetry.WithPublishers(&memPublisher{}, p))
			check("WithPublishers", err)
			_, err = telemetry.NewCompositePublisher(withNil, p)
			check("NewCompositePublisher", err)
			if n := len(r.PublisherStats()); n != 0 {
				t.Errorf("%d publishers attached, want none", n)
			}
		})
	}
}

// TestPublisherAttachedTwiceIsRefused checks that a publisher is attached
// to a Recorder at most once, however it is given twice (AddPublisher,
// WithPublishers, a CompositePublisher), with an error naming it, and
// that a refused call attaches nothing.
func TestPublisherAttachedTwiceIsRefused(t *testing.T) {
	a, b, c := &namedPublisher{name: "a"}, &namedPublisher{name: "b"}, &namedPublisher{name: "c"}
	s := &syncPublisher{}
	ab, err := telemetry.NewCompositePublisher(a, b)
	must(t, err)
	bc, err := telemetry.NewCompositePublisher(b, c)
	must(t, err)
	refused := func(t *testing.T, what string, err error, name string) {
		t.Helper()
		if !errors.Is(err, telemetry.ErrDuplicatePublisher) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%s: got %v, want an error wrapping ErrDuplicatePublisher naming %q", what, err, name)
		}
	}
	names := func(r *telemetry.Recorder) string {
		var out []string
		for _, s := range r.PublisherStats() {
			out = append(out, s.Name)
		}
		return fmt.Sprint(out)
	}

	r := newRecorder(t, telemetry.WithPublishers(a, s))
	refused(t, "AddPublisher again", r.AddPublisher(a), "a")
	refused(t, "AddPublisher of a SyncPublisher again", r.AddPublisher(s), "telemetry_test.syncPublisher")
	refused(t, "AddPublisher of a composite holding it", r.AddPublisher(ab), "a")
	must(t, r.AddPublisher(bc))
	if got := names(r); got != "[a telemetry_test.syncPublisher b c]" {
		t.Errorf("got publishers %s, want a, the SyncPublisher, b and c once each", got)
	}

	for _, tc := range []struct {
		opts []telemetry.Option
		name string
	}{
		{[]telemetry.Option{telemetry.WithPublishers(a, a)}, "a"},
		{[]telemetry.Option{telemetry.WithPublishers(a), telemetry.WithPublishers(a)}, "a"},
		{[]telemetry.Option{telemetry.WithPublishers(a, ab)}, "a"},
		{[]telemetry.Option{telemetry.WithPublishers(ab, bc)}, "b"},
	} {
		_, err := telemetry.NewRecorder(tc.opts...)
		refused(t, "NewRecorder", err, tc.name)
	}

	_, err = telemetry.NewCompositePublisher(a, b, a)
	refused(t, "NewCompositePublisher", err, "a")
	_, err = telemetry.NewCompositePublisher(ab, bc) // b twice, nested
	refused(t, "a composite of composites sharing a member", err, "b")
}

// exiter is a queued publisher whose calls number exitOn (1 for the first)
// end the worker's goroutine with runtime.Goexit; so does its Flush the
// first time if flushExit is set.
type exiter struct {
	batchPublisher
	exitOn    int64
	calls     atomic.Int64
	flushExit atomic.Bool
}

func (p *exiter) maybeExit() {
	if p.calls.Add(1) == p.exitOn {
		runtime.Goexit()
	}
}

func (p *exiter) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	p.maybeExit()
	return p.memPublisher.PublishEventMetrics(ctx, m)
}

func (p *exiter) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	p.maybeExit()
	return p.memPublisher.PublishNetworkMetrics(ctx, m)
}

func (p *exiter) PublishBatch(ctx context.Context, b *telemetry.Batch) error {
	p.maybeExit()
	return p.batchPublisher.PublishBatch(ctx, b)
}

func (p *exiter) Flush(ctx context.Context) error {
	if p.flushExit.Swap(false) {
		runtime.Goexit()
	}
	return p.memPublisher.Flush(ctx)
}

// onlyEach is an exiter without its PublishBatch.
type onlyEach struct{ p *exiter }

func (e onlyEach) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return e.p.PublishEventMetrics(ctx, m)
}

func (e onlyEach) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return e.p.PublishNetworkMetrics(ctx, m)
}

func (e onlyEach) Flush(ctx context.Context) error { return e.p.Flush(ctx) }

// TestQueuedPublisherGoexitIsCounted checks that a queued publisher that
// ends the worker's goroutine with runtime.Goexit, in a publish call or in
// Flush, has that call counted as a panic, its records dropped as failed,
// and delivery going on with the other records: the stats add up, and
// Queued is 0 after Close.
func TestQueuedPublisherGoexitIsCounted(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pub           func(*exiter) telemetry.Publisher
		exitOn        int64
		wantPublished uint64
	}{
		// The 10 records are taken together: the 2nd call's record is
		// dropped, the 8 after it delivered by the next goroutine.
		{"each", func(p *exiter) telemetry.Publisher { return onlyEach{p} }, 2, 9},
		// Batches of 4: the first is dropped, the 6 others delivered.
		{"batch", func(p *exiter) telemetry.Publisher { return p }, 1, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &exiter{exitOn: tc.exitOn}
				r, err := telemetry.NewRecorder(telemetry.WithPublishers(tc.pub(p)), telemetry.WithMaxBatchSize(4),
					telemetry.WithLogger(quiet))
				must(t, err)
				record(t, r, "t", 5)
				flush(t, r)
				s := r.PublisherStats()[0]
				if s.Published != tc.wantPublished || s.DroppedFailed != 10-tc.wantPublished || s.Queued != 0 ||
					s.Panics != 1 || s.FailedAttempts != 1 {
					t.Errorf("after Flush: got %+v, want %d published, the rest dropped as failed, 1 panic", s, tc.wantPublished)
				}

				// Delivery goes on, Flush included.
				p.flushExit.Store(true)
				record(t, r, "u", 5)
				if err := r.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "Goexit") {
					t.Errorf("Flush: got %v, want an error naming runtime.Goexit", err)
				}
				flush(t, r)
				must(t, r.Close(context.Background()))
				s = r.PublisherStats()[0]
				if s.Published != tc.wantPublished+10 || s.Published+s.Dropped() != 20 || s.Queued != 0 || s.Panics != 2 {
					t.Errorf("after Close: got %+v, want the 10 later records published, 20 accounted for, 2 panics", s)
				}
				if ev, nw, _ := p.counts(); uint64(ev+nw) != s.Published {
					t.Errorf("the publisher has %d records, the stats say %d published", ev+nw, s.Published)
				}
			})
		})
	}
}

// nilErr is an error type whose Error panics for a nil pointer.
type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

// badErrPublisher fails every call with a typed nil *nilErr.
type badErrPublisher struct{}

func (badErrPublisher) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	return (*nilErr)(nil)
}

func (badErrPublisher) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return (*nilErr)(nil)
}

type syncBadErrPublisher struct{ badErrPublisher }

func (syncBadErrPublisher) Synchronous() bool { return true }

// TestPublisherErrorWithPanickingTextIsContained checks that a publisher
// error whose Error method panics (a typed nil pointer) is logged and
// counted without crashing the worker or the recording call.
func TestPublisherErrorWithPanickingTextIsContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(badErrPublisher{}, syncBadErrPublisher{}),
			telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 1}), telemetry.WithLogger(newTextLogger(&logs)))
		must(t, err)
		record(t, r, "t", 2)
		must(t, r.Close(context.Background()))
		for _, s := range r.PublisherStats() {
			if s.DroppedFailed != 4 || s.Queued != 0 {
				t.Errorf("%s: got %+v, want the 4 records dropped as failed", s.Name, s)
			}
		}
		if !strings.Contains(logs.String(), "gave up") {
			t.Errorf("no give-up logged: %s", logs.String())
		}
	})
}

// TestQueueCapacityIsWhatTheBuffersHold checks that QueueCapacity is the
// number of records a publisher's buffers hold, for queue sizes that are
// not multiples of the number of shards. The publisher blocks on the first
// record it takes; then records of one kind, and then of the other, are
// made until the buffers are full: what is queued beside the held record
// is then the capacity of that kind, and in the end QueueCapacity. A kind
// of one shard (1,000 records retained) drops its first record when it
// holds exactly WithQueueSize; a kind of 16 shards (the default 100,000)
// drops its first when one shard is full, so it gets 40 times its
// capacity, which fills every shard unless the task ids' hashes leave one
// with less than a 40th of its share, a chance below 1e-40.
func TestQueueCapacityIsWhatTheBuffersHold(t *testing.T) {
	tests := []struct {
		name            string
		size            int
		opts            []telemetry.Option
		events, network int  // the capacity of each kind
		networkOneShard bool // the network records have one shard
	}{
		{name: "8, 16 shards each", size: 8, events: 16, network: 16},
		{name: "100, 16 shards each", size: 100, events: 112, network: 112},
		{name: "8, one shard of network records", size: 8, opts: []telemetry.Option{telemetry.WithMaxNetworkOps(1000)},
			events: 16, network: 8, networkOneShard: true},
		{name: "100, one shard of network records", size: 100, opts: []telemetry.Option{telemetry.WithMaxNetworkOps(1000)},
			events: 112, network: 100, networkOneShard: true},
		{name: "64, 16 shards each", size: 64, events: 64, network: 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &memPublisher{block: make(chan struct{})}
				r := newRecorder(t, append(tc.opts, telemetry.WithPublishers(p), telemetry.WithQueueSize(tc.size),
					telemetry.WithPublishTimeout(time.Hour), telemetry.WithLogger(quiet))...)
				stats := func() telemetry.PublisherStats { return r.PublisherStats()[0] }
				if got, want := stats().QueueCapacity, tc.events+tc.network; got != want {
					t.Errorf("QueueCapacity: got %d, want %d", got, want)
				}
				// The worker takes the first record and blocks with it.
				runEvent(t, r, "e", "held", 0, nil)
				synctest.Wait()
				handed := 1
				for i := range 40 * tc.events {
					runEvent(t, r, "e", fmt.Sprint("e", i), 0, nil)
					handed++
				}
				s := stats()
				if s.Queued-1 != tc.events || s.Queued+int(s.DroppedQueueFull) != handed {
					t.Errorf("events: got %d queued beside the held record and %d dropped of %d, want %d queued",
						s.Queued-1, s.DroppedQueueFull, handed, tc.events)
				}
				dropped := s.DroppedQueueFull
				n := 40 * tc.network
				if tc.networkOneShard {
					n = tc.network + 1
				}
				for i := range n {
					id := fmt.Sprint("n", i)
					must(t, r.Network().StartOperation(id, "h", 1, ""))
					must(t, r.Network().EndOperation(id, 0, 0, nil))
					handed++
					if tc.networkOneShard && stats().DroppedQueueFull != dropped {
						if i != tc.network {
							t.Errorf("network records: the first was dropped after %d, want after %d", i, tc.network)
						}
						break
					}
				}
				s = stats()
				if s.Queued-1 != s.QueueCapacity || s.Queued+int(s.DroppedQueueFull) != handed {
					t.Errorf("both kinds: got %d queued beside the held record and %d dropped of %d, want QueueCapacity %d queued",
						s.Queued-1, s.DroppedQueueFull, handed, s.QueueCapacity)
				}
				close(p.block)
				flush(t, r)
			})
		})
	}
}

// plainPublisher is a Publisher and nothing more: no Flush, no Close.
type plainPublisher struct{}

func (plainPublisher) PublishEventMetrics(context.Context, telemetry.EventMetrics) error { return nil }

func (plainPublisher) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return nil
}

// TestQueueFullDropsSummarized checks how queue-full drops are logged
// while they go on: a warning at the first, then, at most every 10
// seconds, a summary with the drops since the last line and in all
// (checked every 256 drops), besides the count at Close.
func TestQueueFullDropsSummarized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logRecorder{}
		hanging := &exclusivePublisher{}
		// One shard, so that the queue holds exactly 4 records.
		r, err := telemetry.NewRecorder(telemetry.WithPublishers(hanging),
			telemetry.WithMaxEvents(1000), telemetry.WithQueueSize(4), telemetry.WithLogger(logs.logger()))
		must(t, err)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r.Close(ctx)
		}()
		run := func(from, n int) {
			for i := range n {
				runEvent(t, r, "e", fmt.Sprint("t", from+i), 0, nil)
			}
			synctest.Wait()
		}
		const summary = "telemetry: publisher queue full, records dropped"
		// The worker takes the first record and hangs; 4 fill the queue;
		// the next 600 are dropped: the first is warned of, and the 256th
		// and 512th come less than 10 seconds after it: no summary.
		run(0, 605)
		if n := len(logs.withMessage("telemetry: publisher queue full, dropping records; see PublisherStats for the count")); n != 1 {
			t.Errorf("got %d first-drop warnings, want 1", n)
		}
		if l := logs.withMessage(summary); len(l) != 0 {
			t.Errorf("got a summary within 10 seconds of the first drop: %v", l[0].attrs)
		}
		// 10 seconds later, the 768th drop logs the 767 since the first.
		time.Sleep(10 * time.Second)
		run(605, 200)
		l := logs.withMessage(summary)
		if len(l) != 1 || l[0].level != slog.LevelWarn ||
			fmt.Sprint(l[0].attrs) != fmt.Sprint(map[string]string{"publisher": "telemetry_test.exclusivePublisher", "dropped": "767", "queue_full": "768"}) {
			t.Errorf("got summaries %v, want one WARN with 767 dropped since the first, 768 in all", l)
		}
		// Within 10 seconds of it, none; then the next gives the rest.
		run(805, 512)
		if n := len(logs.withMessage(summary)); n != 1 {
			t.Errorf("got %d summaries within 10 seconds, want 1", n)
		}
		time.Sleep(10 * time.Second)
		run(1317, 256)
		l = logs.withMessage(summary)
		if len(l) != 2 || l[1].attrs["dropped"] != "768" || l[1].attrs["queue_full"] != "1536" {
			t.Errorf("got summaries %v, want a second with 768 dropped since the last, 1536 in all", l)
		}
	})
}
