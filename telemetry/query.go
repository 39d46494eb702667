package telemetry

import (
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// FailedOperations returns the retained finished operations that failed,
// oldest first.
func (n *Network) FailedOperations() []NetworkMetrics {
	var out []NetworkMetrics
	n.r.network.Locked(func(v *store.View[networkRecord, networkTotals]) {
		out = store.Failed(v, n.r.fillNetwork())
	})
	return out
}

// SlowOperations returns the retained finished operations that took longer
// than threshold, such as [DefaultSlowThreshold], oldest first. A negative
// threshold is an error wrapping [ErrNegativeThreshold].
func (n *Network) SlowOperations(threshold time.Duration) ([]NetworkMetrics, error) {
	if threshold < 0 {
		return nil, callError("slow operations", thresholdError(threshold))
	}
	var out []NetworkMetrics
	n.r.network.Locked(func(v *store.View[networkRecord, networkTotals]) {
		out = store.Slower(v, threshold, n.r.fillNetwork())
	})
	return out, nil
}

// FailedEvents returns the retained finished event runs that failed, oldest
// first.
func (r *Recorder) FailedEvents() []EventMetrics {
	var out []EventMetrics
	r.events.Locked(func(v *store.View[eventRecord, eventTotals]) {
		out = store.Failed(v, r.fillEvent())
	})
	return out
}

// SlowEvents returns the retained finished event runs that took longer than
// threshold, such as [DefaultSlowThreshold], oldest first. A negative
// threshold is an error wrapping [ErrNegativeThreshold].
func (r *Recorder) SlowEvents(threshold time.Duration) ([]EventMetrics, error) {
	if threshold < 0 {
		return nil, callError("slow events", thresholdError(threshold))
	}
	var out []EventMetrics
	r.events.Locked(func(v *store.View[eventRecord, eventTotals]) {
		out = store.Slower(v, threshold, r.fillEvent())
	})
	return out, nil
}

// PendingEvents returns the oldest pending event runs, at most limit of
// them, oldest start first, and the number of runs pending. It reads the
// pending runs only, whatever the number of records retained, so that a
// live view can poll it. A limit of 0 or less returns none, only the count.
func (r *Recorder) PendingEvents(limit int) ([]EventMetrics, int) {
	var (
		out   []EventMetrics
		total int
	)
	r.events.Locked(func(v *store.View[eventRecord, eventTotals]) {
		var es []store.Entry[eventRecord]
		es, total = v.Pending(limit, (*eventRecord).setRetries)
		for i := range es {
			out = append(out, r.eventMetrics(&es[i]))
		}
	})
	return out, total
}

// PendingOperations returns the oldest pending network operations, at
// most limit of them, oldest start first, and the number pending, as
// [Recorder.PendingEvents] does for event runs.
func (n *Network) PendingOperations(limit int) ([]NetworkMetrics, int) {
	var (
		out   []NetworkMetrics
		total int
	)
	n.r.network.Locked(func(v *store.View[networkRecord, networkTotals]) {
		var es []store.Entry[networkRecord]
		es, total = v.Pending(limit, nil)
		for i := range es {
			out = append(out, n.r.networkMetrics(&es[i]))
		}
	})
	return out, total
}

// WaitedEvents returns the retained finished event runs that waited in a
// queue longer than threshold before they started ([WithEnqueueTime] or
// [WithWait]), oldest first. A negative threshold is an error wrapping
// [ErrNegativeThreshold].
func (r *Recorder) WaitedEvents(threshold time.Duration) ([]EventMetrics, error) {
	if threshold < 0 {
		return nil, callError("waited events", thresholdError(threshold))
	}
	var out []EventMetrics
	r.events.Locked(func(v *store.View[eventRecord, eventTotals]) {
		out = store.Finished(v, func(rec *eventRecord) bool {
			w, ok := rec.wait()
			return ok && w > threshold
		}, r.fillEvent())
	})
	return out, nil
}

// RetrySummary is the answer of [Recorder.RetryStats].
type RetrySummary struct {
	// TotalRetries is the number of retries recorded, in every run ever
	// started, ended or pending.
	TotalRetries uint64 `json:"total_retries"`
	// EventsWithRetries is the number of runs, ended or pending, that had at
	// least one retry.
	EventsWithRetries uint64 `json:"events_with_retries"`
	// ByRetryCount maps a retry count (1 or more) to the number of runs that
	// had exactly that many retries. Its counts add up to EventsWithRetries.
	ByRetryCount map[int]uint64 `json:"retry_distribution"`
}

// RetryStats returns retry statistics over every event run since r was
// created, retained or evicted, ended or pending. They are exact, and
// consistent with each other.
func (r *Recorder) RetryStats() RetrySummary {
	var s RetrySummary
	r.events.Locked(s.add)
	return s
}

// add adds the retries of a view of the event table to s.
func (s *RetrySummary) add(v *store.View[eventRecord, eventTotals]) {
	if s.ByRetryCount == nil {
		s.ByRetryCount = make(map[int]uint64)
	}
	s.TotalRetries += v.Retries()
	v.EachTotals(func(t *eventTotals) {
		s.EventsWithRetries += t.withRetries
		for n, c := range t.byRetryCount {
			s.ByRetryCount[n] += c
		}
	})
	v.EachPending(func(_ string, retries int32, _ *eventRecord) {
		if retries > 0 {
			s.EventsWithRetries++
			s.ByRetryCount[int(retries)]++
		}
	})
}

func thresholdError(d time.Duration) error {
	return &valueError{err: ErrNegativeThreshold, value: d.String()}
}

// fillEvent and fillNetwork return the functions that set the records
// queries return.
func (r *Recorder) fillEvent() func(*EventMetrics, store.Entry[eventRecord]) {
	c := &r.clock
	return func(m *EventMetrics, e store.Entry[eventRecord]) { e.Rec.fill(m, c, e.TaskID) }
}

func (r *Recorder) fillNetwork() func(*NetworkMetrics, store.Entry[networkRecord]) {
	c := &r.clock
	return func(m *NetworkMetrics, e store.Entry[networkRecord]) { e.Rec.fill(m, c, e.TaskID) }
}

// eventMetrics and networkMetrics make the records of the pending runs
// and of the latest run of a task id.
func (r *Recorder) eventMetrics(e *store.Entry[eventRecord]) EventMetrics {
	return e.Rec.metrics(r.clock, e.TaskID)
}

func (r *Recorder) networkMetrics(e *store.Entry[networkRecord]) NetworkMetrics {
	return e.Rec.metrics(r.clock, e.TaskID)
}
