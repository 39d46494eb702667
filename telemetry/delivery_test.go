package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
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
	checkNoLeak(t)
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
	p := &batchPublisher{}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithMaxBatchSize(100), telemetry.WithBatchTimeout(50*time.Millisecond))
	start := time.Now()
	runEvent(t, r, "e", "t", 0, nil)
	waitFor(t, "the batch", func() bool { n, _, _ := p.counts(); return n == 1 })
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("a partial batch was sent after %v, want it to wait for the 50ms timeout", d)
	}
}

func TestBlockedPublisherDoesNotBlockRecording(t *testing.T) {
	checkNoLeak(t)
	p := &memPublisher{block: make(chan struct{})}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithQueueSize(100), telemetry.WithLogger(quiet))

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5000 {
			id := fmt.Sprint("t", i)
			r.StartEvent("e", id)
			r.EndEvent(id, nil)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("recording blocked on a publisher that does not return")
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
	fast := newRecorder(t)
	slow := newRecorder(t, telemetry.WithPublishers(&memPublisher{fail: func(int) error {
		time.Sleep(time.Millisecond)
		return nil
	}}), telemetry.WithLogger(quiet))
	measure := func(r *telemetry.Recorder, prefix string) time.Duration {
		start := time.Now()
		for i := range 2000 {
			id := fmt.Sprint(prefix, i)
			must(t, r.StartEvent("e", id))
			must(t, r.EndEvent(id, nil))
		}
		return time.Since(start)
	}
	base := measure(fast, "a")
	withSlow := measure(slow, "b")
	// 2000 records through a 1ms publisher take 2s to deliver; recording
	// them must stay in the same range as without a publisher.
	if withSlow > 20*base+100*time.Millisecond {
		t.Errorf("recording took %v with a slow publisher, %v without", withSlow, base)
	}
}

func TestFailingPublisherRetriesThenDrops(t *testing.T) {
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
	p := &memPublisher{fail: func(call int) error {
		switch call {
		case 1, 2:
			return errTransient
		case 3:
			return telemetry.RetryAfter(errTransient, 80*time.Millisecond)
		}
		return nil
	}}
	policy := telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: 20 * time.Millisecond, MaxBackoff: time.Second}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy), telemetry.WithLogger(quiet))
	runEvent(t, r, "e", "t", 0, nil)
	flush(t, r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.times) != 4 {
		t.Fatalf("got %d attempts, want 4", len(p.times))
	}
	// Waits: 20ms and 40ms less up to half of jitter, then the 80ms hint.
	mins := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond}
	for i, lo := range mins {
		if d := p.times[i+1].Sub(p.times[i]); d < lo {
			t.Errorf("wait before attempt %d: got %v, want at least %v", i+2, d, lo)
		}
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
	checkNoLeak(t)
	slow := &memPublisher{fail: func(int) error { time.Sleep(100 * time.Microsecond); return nil }}
	batch := &batchPublisher{}
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(slow, batch), telemetry.WithBatchTimeout(time.Hour))
	must(t, err)
	record(t, r, "t", 500)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, r.Close(ctx))
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
	checkNoLeak(t)
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
	checkNoLeak(t)
	p := &memPublisher{block: make(chan struct{})}
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
	must(t, err)
	record(t, r, "t", 10)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush with a blocked publisher: got %v, want DeadlineExceeded", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := r.Close(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a blocked publisher: got %v, want DeadlineExceeded", err)
	}
	// The worker gives up (the publisher honours its ctx) and exits; what
	// it held is counted as dropped.
	waitFor(t, "records to be settled", func() bool {
		s := r.PublisherStats()[0]
		return s.Dropped() == 20 && s.Queued == 0
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
	must(t, c.Flush(ctx))
	must(t, c.Close(ctx))
	if ok.flushes != 1 || ok.closes != 1 || len(c.Publishers()) != 3 {
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
	checkNoLeak(t)
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
	// The backend refuses 30 attempts, then comes back: with no attempt
	// limit, the record is delivered.
	p := &memPublisher{fail: func(call int) error {
		if call <= 30 {
			return errTransient
		}
		return nil
	}}
	policy := telemetry.RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxElapsed: 10 * time.Second}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy), telemetry.WithLogger(quiet))
	runEvent(t, r, "e", "t", 0, nil)
	flush(t, r)
	if s := r.PublisherStats()[0]; s.Published != 1 || s.FailedAttempts != 30 || s.Dropped() != 0 {
		t.Errorf("got %+v, want delivered after 30 failed attempts", s)
	}
}

func TestRetriesStopAtMaxElapsed(t *testing.T) {
	p := &memPublisher{fail: func(int) error { return errTransient }}
	policy := telemetry.RetryPolicy{InitialBackoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxElapsed: 100 * time.Millisecond}
	r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithRetry(policy), telemetry.WithLogger(quiet))
	runEvent(t, r, "e", "t", 0, nil)
	flush(t, r)
	s := r.PublisherStats()[0]
	// Waits of 20-40ms fit 2 to 5 times in 100ms: 3 to 6 attempts, or as
	// few as 2 when a loaded machine fires timers late.
	if s.DroppedFailed != 1 || s.FailedAttempts < 2 || s.FailedAttempts > 6 {
		t.Errorf("got %+v, want dropped after 2 to 6 attempts", s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// No wait starts that would end past MaxElapsed; a late timer may
	// still overshoot a little.
	if last := p.times[len(p.times)-1].Sub(p.times[0]); last > 250*time.Millisecond {
		t.Errorf("last attempt %v after the first, want about MaxElapsed (100ms)", last)
	}
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
