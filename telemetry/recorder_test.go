package telemetry_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestEventLifeCycle(t *testing.T) {
	synctest.Test(t, testEventLifeCycle)
}

func testEventLifeCycle(t *testing.T) {
	r := newRecorder(t)
	before := time.Now()
	must(t, r.StartEvent("load_orders", "t1", telemetry.WithProcessID(4242), telemetry.WithPipelineID("run-7")))

	m, ok := r.Metrics("t1")
	if !ok {
		t.Fatal("Metrics(t1) found nothing after StartEvent")
	}
	if m.Status != telemetry.StatusPending || !m.EndTime.IsZero() || m.Duration() != 0 {
		t.Errorf("pending run: got status %q, end %v, duration %v; want pending, zero, 0", m.Status, m.EndTime, m.Duration())
	}
	if m.EventName != "load_orders" || m.TaskID != "t1" || m.ProcessID != 4242 || m.PipelineID != "run-7" {
		t.Errorf("got %+v, want name load_orders, task t1, pid 4242, pipeline run-7", m)
	}
	if !m.StartTime.Equal(before) {
		t.Errorf("got start time %v, want %v", m.StartTime, before)
	}

	must(t, r.RecordRetry("t1"))
	must(t, r.RecordRetry("t1"))
	time.Sleep(2 * time.Millisecond)
	must(t, r.EndEvent("t1", nil))

	m, _ = r.Metrics("t1")
	if m.Status != telemetry.StatusCompleted || m.Error != "" || m.RetryCount != 2 {
		t.Errorf("got status %q, error %q, retries %d; want completed, \"\", 2", m.Status, m.Error, m.RetryCount)
	}
	if d := m.Duration(); d != 2*time.Millisecond || !m.EndTime.Equal(before.Add(2*time.Millisecond)) {
		t.Errorf("got duration %v, end %v; want 2ms, %v", d, m.EndTime, before.Add(2*time.Millisecond))
	}

	must(t, r.StartEvent("load_orders", "t2"))
	must(t, r.EndEvent("t2", errors.New("connection refused")))
	m, _ = r.Metrics("t2")
	if m.Status != telemetry.StatusFailed || m.Error != "connection refused" {
		t.Errorf("got status %q, error %q; want failed, \"connection refused\"", m.Status, m.Error)
	}
	if m.ProcessID != 0 || m.PipelineID != "" {
		t.Errorf("options leaked into another run: pid %d, pipeline %q", m.ProcessID, m.PipelineID)
	}

	if _, ok := r.Metrics("unknown"); ok {
		t.Error("Metrics(unknown) found a record")
	}
}

// emptyError is an error with no text: its run must still count as failed.
type emptyError struct{}

func (emptyError) Error() string { return "" }

func TestEndEventWithEmptyErrorTextStillFails(t *testing.T) {
	r := newRecorder(t)
	runEvent(t, r, "e", "t", 0, emptyError{})
	m, _ := r.Metrics("t")
	if m.Status != telemetry.StatusFailed || m.Error == "" {
		t.Errorf("got status %q, error %q; want failed with a non-empty error", m.Status, m.Error)
	}
}

// fieldError is an error type whose Error method reads a field: called on
// a nil *fieldError, a classic typed-nil error, it panics.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// TestEndWithPanickingErrorTextDoesNotPanic checks that an error whose
// Error method panics, such as a typed nil pointer, fails the run with a
// text that says so (as fmt prints it) instead of panicking in EndEvent
// or EndOperation: recording never panics on bad input.
func TestEndWithPanickingErrorTextDoesNotPanic(t *testing.T) {
	r := newRecorder(t)
	var typedNil *fieldError
	must(t, r.StartEvent("e", "t"))
	must(t, r.Network().StartOperation("t", "h", 1, ""))
	must(t, func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("EndEvent panicked: %v", v)
			}
		}()
		if err := r.EndEvent("t", typedNil); err != nil {
			return err
		}
		return r.Network().EndOperation("t", 0, 0, typedNil)
	}())
	m, _ := r.Metrics("t")
	op, _ := r.Network().Metrics("t")
	if want := fmt.Sprint(typedNil); m.Status != telemetry.StatusFailed || m.Error != want || op.Error != want {
		t.Errorf("got %q %q / %q, want failed with %q", m.Status, m.Error, op.Error, want)
	}
}

func TestStartAgainAfterEndStartsNewRun(t *testing.T) {
	r := newRecorder(t)
	runEvent(t, r, "e", "t", 1, errors.New("first run failed"))
	must(t, r.StartEvent("e", "t"))
	m, _ := r.Metrics("t")
	if m.Status != telemetry.StatusPending || m.RetryCount != 0 {
		t.Errorf("latest run: got status %q, retries %d; want pending, 0", m.Status, m.RetryCount)
	}
	must(t, r.EndEvent("t", nil))
	m, _ = r.Metrics("t")
	if m.Status != telemetry.StatusCompleted {
		t.Errorf("latest run: got status %q, want completed", m.Status)
	}
	rep := r.Report()
	if len(rep.Events) != 2 || rep.Events[0].Status != telemetry.StatusFailed || rep.Events[1].Status != telemetry.StatusCompleted {
		t.Errorf("report: got %d runs %+v, want the failed run then the completed one", len(rep.Events), rep.Events)
	}
}

func TestRecordingErrors(t *testing.T) {
	// One shard (small retention), so that the pending limit is exact.
	r := newRecorder(t, telemetry.WithMaxPending(2), telemetry.WithMaxEvents(100))
	must(t, r.StartEvent("e", "pending"))
	runEvent(t, r, "e", "ended", 0, nil)

	tests := []struct {
		name    string
		call    func() error
		want    error
		wantMsg string
	}{
		{"empty event name", func() error { return r.StartEvent("", "x") }, telemetry.ErrEmptyEventName, `telemetry: start event "x": empty event name`},
		{"empty task id on start", func() error { return r.StartEvent("e", "") }, telemetry.ErrEmptyTaskID, `telemetry: start event "": empty task id`},
		{"start while pending", func() error { return r.StartEvent("e", "pending") }, telemetry.ErrAlreadyStarted, `telemetry: start event "pending": task already started and still pending`},
		{"negative process id", func() error { return r.StartEvent("e", "x", telemetry.WithProcessID(-1)) }, telemetry.ErrInvalidProcessID, "invalid process id: -1"},
		{"too many pending", func() error {
			must(t, r.StartEvent("e", "second"))
			return r.StartEvent("e", "third")
		}, telemetry.ErrTooManyPending, "too many pending"},
		{"start while pending at the limit", func() error { return r.StartEvent("e", "second") }, telemetry.ErrAlreadyStarted,
			`telemetry: start event "second": task already started and still pending`},
		{"end never started", func() error { return r.EndEvent("nope", nil) }, telemetry.ErrNotStarted, `telemetry: end event "nope": task was never started`},
		{"end twice", func() error { return r.EndEvent("ended", nil) }, telemetry.ErrAlreadyEnded, `telemetry: end event "ended": task already ended`},
		{"empty task id on end", func() error { return r.EndEvent("", nil) }, telemetry.ErrEmptyTaskID, "empty task id"},
		{"retry never started", func() error { return r.RecordRetry("nope") }, telemetry.ErrNotStarted, `telemetry: record retry "nope": task was never started`},
		{"retry after end", func() error { return r.RecordRetry("ended") }, telemetry.ErrAlreadyEnded, "task already ended"},
		{"empty task id on retry", func() error { return r.RecordRetry("") }, telemetry.ErrEmptyTaskID, "empty task id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.want)
			}
			var te *telemetry.TaskError
			if !errors.As(err, &te) {
				t.Errorf("got %T, want a *TaskError", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", err.Error(), tc.wantMsg)
			}
		})
	}
	// Refused calls change nothing.
	if m, _ := r.Metrics("ended"); m.Status != telemetry.StatusCompleted || m.RetryCount != 0 {
		t.Errorf("refused calls changed the record: %+v", m)
	}
	if s := r.Stats(); s.EventsEnded != 1 || s.EventsPending != 2 {
		t.Errorf("got %d ended, %d pending; want 1, 2", s.EventsEnded, s.EventsPending)
	}
}

func TestNetworkLifeCycle(t *testing.T) {
	synctest.Test(t, testNetworkLifeCycle)
}

func testNetworkLifeCycle(t *testing.T) {
	r := newRecorder(t)
	net := r.Network()
	must(t, net.StartOperation("op1", "10.0.0.5", 8080, ""))
	m, ok := net.Metrics("op1")
	if !ok || m.Status != telemetry.StatusPending || m.Operation != telemetry.DefaultOperation || m.Latency() != 0 {
		t.Fatalf("pending operation: got %+v, %v; want pending remote_call", m, ok)
	}
	time.Sleep(time.Millisecond)
	must(t, net.EndOperation("op1", 512, 2048, nil))
	m, _ = net.Metrics("op1")
	want := telemetry.NetworkMetrics{TaskID: "op1", Operation: "remote_call", Host: "10.0.0.5", Port: 8080,
		Status: telemetry.StatusCompleted, BytesSent: 512, BytesReceived: 2048}
	got := m
	got.StartTime, got.EndTime = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if m.Latency() != time.Millisecond || m.Latency() != m.EndTime.Sub(m.StartTime) {
		t.Errorf("got latency %v (end-start %v), want 1ms", m.Latency(), m.EndTime.Sub(m.StartTime))
	}

	must(t, net.StartOperation("op2", "db", 0, "query"))
	must(t, net.EndOperation("op2", 0, 0, errors.New("i/o timeout")))
	m, _ = net.Metrics("op2")
	if m.Status != telemetry.StatusFailed || m.Error != "i/o timeout" || m.Operation != "query" || m.Port != 0 {
		t.Errorf("got %+v, want failed query to port 0 with error text", m)
	}
	must(t, net.StartOperation("op3", "db", 65535, "query"))

	if s := r.Stats(); s.NetworkEnded != 2 || s.NetworkFailed != 1 || s.NetworkPending != 1 || s.BytesSent != 512 || s.BytesReceived != 2048 {
		t.Errorf("got stats %+v", s)
	}
}

func TestNetworkErrors(t *testing.T) {
	r := newRecorder(t)
	net := r.Network()
	must(t, net.StartOperation("pending", "h", 1, ""))
	must(t, net.StartOperation("ended", "h", 1, ""))
	must(t, net.EndOperation("ended", 1, 1, nil))
	tests := []struct {
		name    string
		call    func() error
		want    error
		wantMsg string
	}{
		{"port below range", func() error { return net.StartOperation("x", "h", -1, "") }, telemetry.ErrInvalidPort, "invalid port: -1 is outside 0-65535"},
		{"port above range", func() error { return net.StartOperation("x", "h", 65536, "") }, telemetry.ErrInvalidPort, "65536"},
		{"empty host", func() error { return net.StartOperation("x", "", 80, "") }, telemetry.ErrEmptyHost, "empty host"},
		{"empty task id", func() error { return net.StartOperation("", "h", 80, "") }, telemetry.ErrEmptyTaskID, "empty task id"},
		{"start while pending", func() error { return net.StartOperation("pending", "h", 80, "") }, telemetry.ErrAlreadyStarted, "already started"},
		{"negative bytes sent", func() error { return net.EndOperation("pending", -1, 0, nil) }, telemetry.ErrNegativeBytes, "negative byte count: bytes sent -1"},
		{"negative bytes received", func() error { return net.EndOperation("pending", 0, -5, nil) }, telemetry.ErrNegativeBytes, "bytes received -5"},
		{"end never started", func() error { return net.EndOperation("nope", 0, 0, nil) }, telemetry.ErrNotStarted, `end operation "nope"`},
		{"end twice", func() error { return net.EndOperation("ended", 0, 0, nil) }, telemetry.ErrAlreadyEnded, "already ended"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", err.Error(), tc.wantMsg)
			}
		})
	}
	if m, _ := net.Metrics("pending"); m.Status != telemetry.StatusPending {
		t.Errorf("a refused end changed the pending operation: %+v", m)
	}
}

func TestNewRecorderRejectsBadOptions(t *testing.T) {
	_, err := telemetry.NewRecorder(
		telemetry.WithMaxEvents(0),
		telemetry.WithQueueSize(-1),
		telemetry.WithBatchTimeout(0),
		telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: -1}),
		telemetry.WithPublishers(nil),
		nil,
	)
	if err == nil {
		t.Fatal("got no error for bad options")
	}
	for _, want := range []string{"max events must be positive, got 0", "queue size must be positive, got -1",
		"batch timeout must be positive, got 0s", "retry policy: max attempts must not be negative, got -1", "nil publisher", "telemetry: nil Option"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestQueries(t *testing.T) {
	synctest.Test(t, testQueries)
}

func testQueries(t *testing.T) {
	r := newRecorder(t)
	runEvent(t, r, "fast", "a", 0, nil)
	runEvent(t, r, "fast", "b", 2, errors.New("boom"))
	must(t, r.StartEvent("slow", "c"))
	time.Sleep(30 * time.Millisecond)
	must(t, r.EndEvent("c", nil))
	runEvent(t, r, "fast", "d", 1, nil)
	must(t, r.StartEvent("fast", "pending"))
	must(t, r.RecordRetry("pending"))
	must(t, r.RecordRetry("pending"))

	failed := r.FailedEvents()
	if len(failed) != 1 || failed[0].TaskID != "b" || failed[0].Error != "boom" {
		t.Errorf("FailedEvents: got %+v, want only b", failed)
	}
	slow, err := r.SlowEvents(20 * time.Millisecond)
	must(t, err)
	if len(slow) != 1 || slow[0].TaskID != "c" || slow[0].Duration() != 30*time.Millisecond {
		t.Errorf("SlowEvents(20ms): got %+v, want only c, of 30ms", slow)
	}
	if edge, _ := r.SlowEvents(30 * time.Millisecond); len(edge) != 0 {
		t.Errorf("SlowEvents(30ms): got %+v, want none: c took exactly 30ms, not longer", edge)
	}
	// In the bubble, runs with nothing between start and end take 0s.
	all, err := r.SlowEvents(0)
	must(t, err)
	if len(all) != 1 {
		t.Errorf("SlowEvents(0): got %d runs, want only c, the one that took time", len(all))
	}
	if _, err := r.SlowEvents(-time.Second); !errors.Is(err, telemetry.ErrNegativeThreshold) ||
		err.Error() != "telemetry: slow events: negative threshold -1s" {
		t.Errorf("SlowEvents(-1s): got %v, want ErrNegativeThreshold", err)
	}

	got := r.RetryStats()
	want := telemetry.RetrySummary{TotalRetries: 5, EventsWithRetries: 3, ByRetryCount: map[int]uint64{1: 1, 2: 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RetryStats: got %+v, want %+v", got, want)
	}

	net := r.Network()
	must(t, net.StartOperation("n1", "h", 80, ""))
	must(t, net.EndOperation("n1", 1, 1, errors.New("refused")))
	must(t, net.StartOperation("n2", "h", 80, ""))
	time.Sleep(30 * time.Millisecond)
	must(t, net.EndOperation("n2", 1, 1, nil))
	if f := net.FailedOperations(); len(f) != 1 || f[0].TaskID != "n1" {
		t.Errorf("FailedOperations: got %+v, want only n1", f)
	}
	if s, err := net.SlowOperations(20 * time.Millisecond); err != nil || len(s) != 1 || s[0].TaskID != "n2" || s[0].Latency() != 30*time.Millisecond {
		t.Errorf("SlowOperations(20ms): got %+v, %v; want only n2", s, err)
	}
	if _, err := net.SlowOperations(-1); !errors.Is(err, telemetry.ErrNegativeThreshold) {
		t.Errorf("SlowOperations(-1): got %v, want ErrNegativeThreshold", err)
	}
}

func TestRetentionEvictsOldestAndKeepsTotalsExact(t *testing.T) {
	r := newRecorder(t, telemetry.WithMaxEvents(3), telemetry.WithMaxNetworkOps(2))
	for i := range 5 {
		runEvent(t, r, "e", fmt.Sprint("t", i), i, nil)
	}
	rep := r.Report()
	var ids []string
	for _, m := range rep.Events {
		ids = append(ids, m.TaskID)
	}
	if fmt.Sprint(ids) != "[t2 t3 t4]" {
		t.Errorf("retained %v, want the newest three [t2 t3 t4]", ids)
	}
	if _, ok := r.Metrics("t0"); ok {
		t.Error("Metrics found an evicted run")
	}
	s := r.Stats()
	if s.EventsRetained != 3 || s.EventsEvicted != 2 || s.EventsEnded != 5 {
		t.Errorf("got retained %d, evicted %d, ended %d; want 3, 2, 5", s.EventsRetained, s.EventsEvicted, s.EventsEnded)
	}
	rs := r.RetryStats()
	if rs.TotalRetries != 0+1+2+3+4 || rs.EventsWithRetries != 4 {
		t.Errorf("retry totals are not exact after eviction: %+v", rs)
	}
	// An evicted task id that runs again is a new run, not "already ended".
	must(t, r.StartEvent("e", "t0"))

	net := r.Network()
	for i := range 3 {
		id := fmt.Sprint("n", i)
		must(t, net.StartOperation(id, "h", 1, ""))
		must(t, net.EndOperation(id, 10, 20, nil))
	}
	if s := r.Stats(); s.NetworkRetained != 2 || s.NetworkEvicted != 1 || s.BytesSent != 30 || s.BytesReceived != 60 {
		t.Errorf("network: got %+v", s)
	}
}

func TestShardedRetentionHoldsExactlyTheLimit(t *testing.T) {
	const limit, n = 16384, 20000 // large enough to be split into shards
	r := newRecorder(t, telemetry.WithMaxEvents(limit))
	for i := range n {
		runEvent(t, r, "e", fmt.Sprint("t", i), 0, nil)
	}
	s := r.Stats()
	if s.EventsRetained != limit || s.EventsEvicted != n-limit || s.EventsEnded != n {
		t.Errorf("got retained %d, evicted %d, ended %d; want %d, %d, %d",
			s.EventsRetained, s.EventsEvicted, s.EventsEnded, limit, n-limit, n)
	}
	rep := r.Report()
	if len(rep.Events) != limit {
		t.Fatalf("report has %d events, want %d", len(rep.Events), limit)
	}
	for i := 1; i < len(rep.Events); i++ {
		if rep.Events[i].EndTime.Before(rep.Events[i-1].EndTime) {
			t.Fatalf("report not in end order at %d: %v after %v", i, rep.Events[i].EndTime, rep.Events[i-1].EndTime)
		}
	}
	// The newest run is always retained.
	if _, ok := r.Metrics(fmt.Sprint("t", n-1)); !ok {
		t.Error("the newest run was evicted")
	}
}

func TestErrorTextsAreTruncated(t *testing.T) {
	mib := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		opts []telemetry.Option
		text string
		want string
	}{
		{"short text is kept", nil, "connection refused", "connection refused"},
		{"text of exactly the default bound is kept", nil, strings.Repeat("y", 1024), strings.Repeat("y", 1024)},
		{"1 MiB cut to the default 1024 bytes", nil, mib,
			strings.Repeat("x", 1024-len("… [truncated, 1048576 bytes]")) + "… [truncated, 1048576 bytes]"},
		// "x" then 2-byte runes: 64 bytes hold the marker (30 bytes) and
		// 34 bytes of text, which would end inside a rune: cut at 33.
		{"cut at a rune boundary", []telemetry.Option{telemetry.WithMaxErrorLength(64)}, "x" + strings.Repeat("é", 1<<19),
			"x" + strings.Repeat("é", 16) + "… [truncated, 1048577 bytes]"},
		{"bound shorter than the marker", []telemetry.Option{telemetry.WithMaxErrorLength(8)}, mib, "… [tru"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &memPublisher{}
			r := newRecorder(t, append(tc.opts, telemetry.WithPublishers(p))...)
			runEvent(t, r, "e", "t", 0, errors.New(tc.text))
			must(t, r.Network().StartOperation("t", "h", 80, ""))
			must(t, r.Network().EndOperation("t", 0, 0, errors.New(tc.text)))
			flush(t, r)
			ev, _ := r.Metrics("t")
			op, _ := r.Network().Metrics("t")
			for name, got := range map[string]string{"event": ev.Error, "network operation": op.Error,
				"published event": p.events[0].Error, "published network operation": p.network[0].Error} {
				if got != tc.want {
					t.Errorf("%s: got error of %d bytes %.40q..., want %d bytes %.40q...", name, len(got), got, len(tc.want), tc.want)
				}
				if !utf8.ValidString(got) {
					t.Errorf("%s: the error text is not valid UTF-8", name)
				}
			}
		})
	}
	if _, err := telemetry.NewRecorder(telemetry.WithMaxErrorLength(0)); err == nil ||
		err.Error() != "telemetry: max error length must be positive, got 0" {
		t.Errorf("WithMaxErrorLength(0): got %v, want an error", err)
	}
}

func TestPendingEventsAndOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t)
		net := r.Network()
		for i := range 5 {
			id := fmt.Sprint("p", i)
			must(t, r.StartEvent("e", id))
			must(t, net.StartOperation(id, "h", 80, ""))
			time.Sleep(time.Second) // distinct start times
		}
		must(t, r.RecordRetry("p1"))
		runEvent(t, r, "e", "done", 0, nil) // finished runs are not listed
		runs, total := r.PendingEvents(3)
		if total != 5 || len(runs) != 3 {
			t.Fatalf("got %d runs of %d, want 3 of 5", len(runs), total)
		}
		for i, m := range runs {
			if m.TaskID != fmt.Sprint("p", i) || m.Status != telemetry.StatusPending {
				t.Errorf("run %d: got %s %s, want p%d pending, oldest first", i, m.TaskID, m.Status, i)
			}
		}
		if runs[1].RetryCount != 1 {
			t.Errorf("p1: got %d retries, want 1", runs[1].RetryCount)
		}
		if runs, total := r.PendingEvents(0); runs != nil || total != 5 {
			t.Errorf("limit 0: got %v, %d; want none and 5", runs, total)
		}
		ops, n := net.PendingOperations(10)
		if n != 5 || len(ops) != 5 || ops[4].TaskID != "p4" || ops[0].Host != "h" {
			t.Errorf("operations: got %d of %d (%+v), want all 5 oldest first", len(ops), n, ops)
		}
	})
}

// TestEndAfterEvictionIsNotStarted pins down what ErrNotStarted documents:
// ending a run twice is ErrAlreadyEnded while the run is retained, and
// ErrNotStarted once it has been evicted.
func TestEndAfterEvictionIsNotStarted(t *testing.T) {
	r := newRecorder(t, telemetry.WithMaxEvents(1))
	runEvent(t, r, "e", "a", 0, nil)
	if err := r.EndEvent("a", nil); !errors.Is(err, telemetry.ErrAlreadyEnded) {
		t.Errorf("retained: got %v, want ErrAlreadyEnded", err)
	}
	runEvent(t, r, "e", "b", 0, nil) // evicts a
	if err := r.EndEvent("a", nil); !errors.Is(err, telemetry.ErrNotStarted) {
		t.Errorf("evicted: got %v, want ErrNotStarted", err)
	}
}

// TestLatestRunIsTheLastOneRecorded pins down which run Metrics returns
// when a task id's runs were given their times (WithStartTime,
// EndEventAt), as a job queue gives them: the run that started and ended
// last, even when it ended at an earlier time than the run before it; and
// that run stays found, and its task id ended, once the run before it is
// evicted.
func TestLatestRunIsTheLastOneRecorded(t *testing.T) {
	r := newRecorder(t, telemetry.WithMaxEvents(2))
	runEvent(t, r, "e", "a", 0, nil)
	first, _ := r.Metrics("a")
	// The second run was attempted an hour ago and finished half an hour
	// ago, as the job queue reports it now.
	must(t, r.StartEvent("e", "a", telemetry.WithStartTime(first.EndTime.Add(-time.Hour)), telemetry.WithPipelineID("second")))
	must(t, r.EndEventAt("a", nil, first.EndTime.Add(-30*time.Minute)))
	if m, ok := r.Metrics("a"); !ok || m.PipelineID != "second" {
		t.Errorf("Metrics(a) after the second run: got %+v, %v; want the second run", m, ok)
	}
	runEvent(t, r, "e", "b", 0, nil) // evicts the first run of a
	if m, ok := r.Metrics("a"); !ok || m.PipelineID != "second" {
		t.Errorf("Metrics(a) once the first run is evicted: got %+v, %v; want the second run, retained", m, ok)
	}
	if err := r.EndEvent("a", nil); !errors.Is(err, telemetry.ErrAlreadyEnded) {
		t.Errorf("ending a again: got %v, want ErrAlreadyEnded (its latest run is retained)", err)
	}
}

// TestErrorTextIsTheRecords checks that ErrorText gives the text a record
// keeps for an error: cut at WithMaxErrorLength, "unknown error" for an
// empty text, "" for nil.
func TestErrorTextIsTheRecords(t *testing.T) {
	r := newRecorder(t, telemetry.WithMaxErrorLength(64))
	for i, err := range []error{errors.New(strings.Repeat("é", 100)), errors.New(""), errors.New("short")} {
		id := "t" + strconv.Itoa(i)
		must(t, r.StartEvent("e", id))
		must(t, r.EndEvent(id, err))
		m, _ := r.Metrics(id)
		if got := r.ErrorText(err); got != m.Error || len(got) > 64 {
			t.Errorf("ErrorText(%.20q) = %q, want the record's %q (at most 64 bytes)", err, got, m.Error)
		}
	}
	if got := r.ErrorText(errors.New("")); got != "unknown error" {
		t.Errorf("ErrorText of an empty text = %q, want unknown error", got)
	}
	if got := r.ErrorText(nil); got != "" {
		t.Errorf("ErrorText(nil) = %q, want empty", got)
	}
}

func TestStartOptionAccessors(t *testing.T) {
	pid, pipeline, other := telemetry.WithProcessID(4242), telemetry.WithPipelineID("run-7"), telemetry.WithEnqueueTime(t0)
	if n, ok := pid.ProcessID(); n != 4242 || !ok {
		t.Errorf("WithProcessID(4242).ProcessID() = %d, %v; want 4242, true", n, ok)
	}
	if s, ok := pipeline.PipelineID(); s != "run-7" || !ok {
		t.Errorf("WithPipelineID(run-7).PipelineID() = %q, %v; want run-7, true", s, ok)
	}
	for _, o := range []telemetry.StartOption{pipeline, other} {
		if n, ok := o.ProcessID(); ok {
			t.Errorf("ProcessID() of another option = %d, true; want false", n)
		}
	}
	for _, o := range []telemetry.StartOption{pid, other} {
		if s, ok := o.PipelineID(); ok {
			t.Errorf("PipelineID() of another option = %q, true; want false", s)
		}
	}
}

func TestErrorTypesWithoutCause(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"TaskError", &telemetry.TaskError{Op: "end event", TaskID: "t1"}, `telemetry: end event "t1": <nil>`},
		{"DroppedError", &telemetry.DroppedError{Dropped: 2}, "telemetry: 2 record(s) dropped: <nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTaskErrorLongTaskID checks that a refusal's message quotes at most
// the start of a long task id, with its length, so that a caller's 1 MiB
// task id does not make a 1 MiB error text in every log line that
// prints it; the TaskID field keeps it whole.
func TestTaskErrorLongTaskID(t *testing.T) {
	r := newRecorder(t)
	id := strings.Repeat("é", 1<<19) // 1 MiB
	err := r.EndEvent(id, nil)
	var te *telemetry.TaskError
	if !errors.As(err, &te) || te.TaskID != id || !errors.Is(err, telemetry.ErrNotStarted) {
		t.Fatalf("got %v, want a TaskError for the whole id wrapping ErrNotStarted", err)
	}
	msg := err.Error()
	if len(msg) > 400 || !strings.Contains(msg, "[truncated, 1048576 bytes]") || !strings.HasSuffix(msg, ": task was never started") {
		t.Errorf("got a message of %d bytes: %.300q…; want the id's start, its length, and the reason", len(msg), msg)
	}
	if !utf8.ValidString(msg) {
		t.Error("the message is not valid UTF-8: the id was cut inside a character")
	}
}
