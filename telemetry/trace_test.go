package telemetry_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

var testSpan = telemetry.SpanContext{
	TraceID: [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
	SpanID:  [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	Sampled: true,
}

func TestWaitGivesTheEnqueueTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t)
		start := time.Now()
		time.Sleep(time.Second)
		must(t, r.StartEvent("load", "w1", telemetry.WithStartTime(start), telemetry.WithWait(1500*time.Millisecond)))
		must(t, r.StartEvent("load", "w2", telemetry.WithWait(2*time.Second)))
		// Of WithEnqueueTime and WithWait, the last one given applies.
		must(t, r.StartEvent("load", "w3", telemetry.WithWait(time.Hour), telemetry.WithEnqueueTime(start)))
		must(t, r.StartEvent("load", "w4", telemetry.WithEnqueueTime(start), telemetry.WithWait(time.Minute)))
		for _, tc := range []struct {
			id        string
			wait      time.Duration
			wantStart time.Time
		}{{"w1", 1500 * time.Millisecond, start}, {"w2", 2 * time.Second, time.Now()}, {"w3", time.Second, time.Now()}, {"w4", time.Minute, time.Now()}} {
			m, _ := r.Metrics(tc.id)
			if !m.StartTime.Equal(tc.wantStart) || m.WaitTime() != tc.wait || !m.EnqueueTime.Equal(tc.wantStart.Add(-tc.wait)) {
				t.Errorf("%s: got start %v, enqueue %v, wait %v; want start %v, wait %v", tc.id, m.StartTime, m.EnqueueTime, m.WaitTime(), tc.wantStart, tc.wait)
			}
		}
		err := r.StartEvent("load", "w5", telemetry.WithWait(-time.Nanosecond))
		if !errors.Is(err, telemetry.ErrInvalidOption) || !strings.Contains(err.Error(), "negative") {
			t.Errorf("negative wait: got %v", err)
		}
		if s := r.Stats(); s.EventsWaitClamped != 0 || s.EventsPending != 4 {
			t.Errorf("got %d clamped waits and %d pending, want 0 and 4", s.EventsWaitClamped, s.EventsPending)
		}
	})
}

func TestEnqueueTimeGivesTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t)
		enq := time.Now()
		time.Sleep(3 * time.Second)
		must(t, r.StartEvent("load", "t1", telemetry.WithEnqueueTime(enq)))
		time.Sleep(time.Second)
		must(t, r.EndEvent("t1", nil))
		m, _ := r.Metrics("t1")
		if !m.EnqueueTime.Equal(enq) || m.WaitTime() != 3*time.Second || m.Duration() != time.Second {
			t.Errorf("got enqueue %v, wait %v, duration %v; want %v, 3s, 1s", m.EnqueueTime, m.WaitTime(), m.Duration(), enq)
		}
		// A run enqueued "after" it started (clock skew) waited 0, and is counted.
		must(t, r.StartEvent("load", "t2", telemetry.WithEnqueueTime(time.Now().Add(time.Minute))))
		must(t, r.EndEvent("t2", nil))
		runEvent(t, r, "load", "t3", 0, nil) // enqueue time unknown
		if m, _ := r.Metrics("t2"); m.WaitTime() != 0 {
			t.Errorf("skewed run: got wait %v, want 0", m.WaitTime())
		}
		if s := r.Stats(); s.EventsWaitClamped != 1 {
			t.Errorf("got %d clamped waits, want 1", s.EventsWaitClamped)
		}
		for _, tc := range []struct {
			threshold time.Duration
			want      string
		}{{2 * time.Second, "t1"}, {3 * time.Second, ""}, {0, "t1"}} {
			got, err := r.WaitedEvents(tc.threshold)
			var ids []string
			for _, m := range got {
				ids = append(ids, m.TaskID)
			}
			if err != nil || strings.Join(ids, ",") != tc.want {
				t.Errorf("WaitedEvents(%v): got %v, %v; want %q", tc.threshold, ids, err, tc.want)
			}
		}
		if _, err := r.WaitedEvents(-time.Second); !errors.Is(err, telemetry.ErrNegativeThreshold) {
			t.Errorf("negative threshold: got %v", err)
		}
		err := r.StartEvent("load", "t4", telemetry.WithEnqueueTime(time.Time{}))
		if !errors.Is(err, telemetry.ErrInvalidOption) || !strings.Contains(err.Error(), "zero Time") {
			t.Errorf("zero enqueue time: got %v", err)
		}
		// The JSON document shows the enqueue time and the wait, and reads back.
		b, _ := json.Marshal(m)
		if !strings.Contains(string(b), `"enqueue_time":"2000-01-01T00:00:00.000000000Z","wait_seconds":3`) {
			t.Errorf("document %s lacks the enqueue time and wait", b)
		}
		var back telemetry.EventMetrics
		if err := json.Unmarshal(b, &back); err != nil || !back.EnqueueTime.Equal(enq) || back.WaitTime() != 3*time.Second {
			t.Errorf("read back: %+v, %v", back, err)
		}
		b, _ = json.Marshal(mustMetrics(t, r, "t3"))
		if strings.Contains(string(b), "enqueue_time") || strings.Contains(string(b), "trace_id") {
			t.Errorf("a run without enqueue time or span has their fields: %s", b)
		}
	})
}

func mustMetrics(t *testing.T, r *telemetry.Recorder, id string) telemetry.EventMetrics {
	t.Helper()
	m, ok := r.Metrics(id)
	if !ok {
		t.Fatalf("no run %s", id)
	}
	return m
}

func TestSpanContextIsRecorded(t *testing.T) {
	r := newRecorder(t)
	must(t, r.StartEvent("load", "t1", telemetry.WithSpanContext(testSpan)))
	must(t, r.EndEvent("t1", nil))
	net := r.Network()
	must(t, net.StartOperation("c1", "h", 80, "", telemetry.WithSpanContext(testSpan)))
	must(t, net.EndOperation("c1", 1, 2, nil))
	ev, _ := r.Metrics("t1")
	op, _ := net.Metrics("c1")
	if ev.Span != testSpan || op.Span != testSpan {
		t.Fatalf("got spans %+v and %+v, want %+v", ev.Span, op.Span, testSpan)
	}
	want := `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_sampled":true`
	for name, rec := range map[string]any{"event": ev, "operation": op} {
		b, _ := json.Marshal(rec)
		if !strings.Contains(string(b), want) {
			t.Errorf("%s document %s lacks %s", name, b, want)
		}
		doc, _ := telemetry.FormatMetrics(rec)
		if doc["trace_id"] != testSpan.TraceIDString() || doc["span_id"] != testSpan.SpanIDString() || doc["trace_sampled"] != true {
			t.Errorf("%s: FormatMetrics gives %v", name, doc)
		}
	}
	var back telemetry.NetworkMetrics
	b, _ := json.Marshal(op)
	if err := json.Unmarshal(b, &back); err != nil || back.Span != testSpan {
		t.Errorf("read back: %+v, %v", back.Span, err)
	}
	// Invalid options are refused and change nothing.
	half := telemetry.SpanContext{TraceID: testSpan.TraceID}
	for name, err := range map[string]error{
		"span id missing":       r.StartEvent("load", "t2", telemetry.WithSpanContext(half)),
		"trace id missing":      net.StartOperation("c2", "h", 80, "", telemetry.WithSpanContext(telemetry.SpanContext{SpanID: testSpan.SpanID})),
		"event option on an op": net.StartOperation("c3", "h", 80, "", telemetry.WithProcessID(1)),
		"enqueue time on an op": net.StartOperation("c4", "h", 80, "", telemetry.WithEnqueueTime(time.Now())),
		"wait on an op":         net.StartOperation("c5", "h", 80, "", telemetry.WithWait(time.Second)),
	} {
		if !errors.Is(err, telemetry.ErrInvalidOption) {
			t.Errorf("%s: got %v, want ErrInvalidOption", name, err)
		}
	}
	if s := r.Stats(); s.EventsPending != 0 || s.NetworkPending != 0 {
		t.Errorf("refused starts left runs pending: %+v", s)
	}
	// One with no id but the sampled flag is refused with an error that
	// says so (it said "has a span id but no trace id").
	err := r.StartEvent("load", "t6", telemetry.WithSpanContext(telemetry.SpanContext{Sampled: true}))
	if !errors.Is(err, telemetry.ErrInvalidOption) || !strings.Contains(err.Error(), "no trace id and no span id") {
		t.Errorf("sampled, no ids: got %v, want ErrInvalidOption naming both missing ids", err)
	}
	// The zero SpanContext means not traced.
	must(t, r.StartEvent("load", "t5", telemetry.WithSpanContext(telemetry.SpanContext{})))
	// Documents with bad trace fields are refused.
	for _, doc := range []string{
		`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`,
		`"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":"00f067aa0ba902b7"`,
		`"trace_id":"00000000000000000000000000000000","span_id":"00f067aa0ba902b7"`,
		`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902"`,
	} {
		b, _ := json.Marshal(ev)
		bad := strings.Replace(string(b), want, doc, 1)
		var m telemetry.EventMetrics
		if err := json.Unmarshal([]byte(bad), &m); !errors.Is(err, telemetry.ErrInvalidRecord) {
			t.Errorf("%s: got %v, want ErrInvalidRecord", doc, err)
		}
	}
}

func TestRecorderTimesGivenByTheCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t)
		start := r.Now()
		time.Sleep(time.Second)
		must(t, r.StartEvent("e", "t1", telemetry.WithStartTime(start)))
		time.Sleep(time.Second)
		end := r.Now()
		time.Sleep(time.Second)
		must(t, r.EndEventAt("t1", nil, end))
		m, _ := r.Metrics("t1")
		if !m.StartTime.Equal(start) || !m.EndTime.Equal(end) || m.Duration() != 2*time.Second {
			t.Errorf("got %v to %v (%v), want %v to %v", m.StartTime, m.EndTime, m.Duration(), start, end)
		}
		// The same for a network operation; an end before the start
		// counts as an end at the start.
		net := r.Network()
		opStart := r.Now()
		must(t, net.StartOperation("c1", "h", 1, "", telemetry.WithStartTime(opStart)))
		must(t, net.EndOperationAt("c1", 1, 2, nil, opStart.Add(-time.Minute)))
		op, _ := net.Metrics("c1")
		if !op.StartTime.Equal(opStart) || op.Latency() != 0 {
			t.Errorf("got %v, latency %v; want %v, 0", op.StartTime, op.Latency(), opStart)
		}
		for name, err := range map[string]error{
			"zero end":        r.EndEventAt("t1", nil, time.Time{}),
			"zero op end":     net.EndOperationAt("c1", 0, 0, nil, time.Time{}),
			"zero start":      r.StartEvent("e", "t2", telemetry.WithStartTime(time.Time{})),
			"start in future": r.StartEvent("e", "t3", telemetry.WithStartTime(r.Now().Add(time.Hour))),
		} {
			if !errors.Is(err, telemetry.ErrInvalidOption) {
				t.Errorf("%s: got %v, want ErrInvalidOption", name, err)
			}
		}
	})
}

// TestTimesTooFarFromNowAreRefused checks that a time given by the caller
// that the Recorder cannot hold exactly (offsets from its creation are
// nanoseconds in an int64) is refused, rather than recorded wrong: a
// start more than 292 years back was moved to 1734 and its run got a
// duration of 0; an end centuries ahead made a duration of 0; a wait that
// far back was 0 for the publishers and 292 years in the report.
func TestTimesTooFarFromNowAreRefused(t *testing.T) {
	r := newRecorder(t)
	now := r.Now()
	ancient := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	future := time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, r.StartEvent("e", "open", telemetry.WithStartTime(now.Add(-time.Hour))))
	for name, err := range map[string]error{
		"start":    r.StartEvent("e", "s", telemetry.WithStartTime(ancient)),
		"enqueue":  r.StartEvent("e", "q", telemetry.WithEnqueueTime(ancient)),
		"wait":     r.StartEvent("e", "w", telemetry.WithWait(time.Duration(math.MaxInt64))),
		"end":      r.EndEventAt("open", nil, future),
		"op start": r.Network().StartOperation("o", "h", 1, "", telemetry.WithStartTime(ancient)),
	} {
		if !errors.Is(err, telemetry.ErrInvalidOption) {
			t.Errorf("%s: got %v, want ErrInvalidOption", name, err)
		}
	}
	if m, _ := r.Metrics("open"); m.Status != telemetry.StatusPending {
		t.Errorf("the refused end changed the run: %+v", m)
	}
	if s := r.Stats(); s.EventsPending != 1 || s.EventsEnded != 0 || s.NetworkPending != 0 {
		t.Errorf("refused calls recorded something: %+v", s)
	}
	// A century back is still recorded exactly.
	century := now.AddDate(-100, 0, 0)
	must(t, r.StartEvent("e", "c", telemetry.WithStartTime(century), telemetry.WithEnqueueTime(century.Add(-time.Hour))))
	must(t, r.EndEventAt("c", nil, century.Add(time.Minute)))
	if m, _ := r.Metrics("c"); !m.StartTime.Equal(century) || m.Duration() != time.Minute || m.WaitTime() != time.Hour {
		t.Errorf("a century back: got %+v (duration %v, wait %v)", m, m.Duration(), m.WaitTime())
	}
}

// TestTimesAtTheLimitsKeepTheirDuration checks a run given a start and an
// end at the furthest the Recorder accepts, either side of its creation:
// its duration, about 292 years, is kept. A nanosecond further, 1<<62
// either side, the duration would not fit in a time.Duration (it
// overflowed, and the run was recorded with a duration of 0): those times
// are refused.
func TestTimesAtTheLimitsKeepTheirDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t)
		now := r.Now() // the Recorder's creation: the fake clock stands still
		const limit = 1<<62 - 1
		start, end := now.Add(-limit), now.Add(limit)
		must(t, r.StartEvent("e", "a", telemetry.WithStartTime(start)))
		must(t, r.StartEvent("e", "b"))
		for name, err := range map[string]error{
			"start": r.StartEvent("e", "c", telemetry.WithStartTime(start.Add(-1))),
			"end":   r.EndEventAt("b", nil, end.Add(1)),
		} {
			if !errors.Is(err, telemetry.ErrInvalidOption) {
				t.Errorf("%s a nanosecond further: got %v, want ErrInvalidOption", name, err)
			}
		}
		must(t, r.EndEventAt("a", nil, end))
		if m, _ := r.Metrics("a"); !m.StartTime.Equal(start) || !m.EndTime.Equal(end) || m.Duration() != 2*limit {
			t.Errorf("got %+v (duration %v), want a duration of %v", m, m.Duration(), time.Duration(2*limit))
		}
	})
}
