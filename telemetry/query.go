package telemetry

import (
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// FailedOperations returns the retained finished operations that failed,
// oldest first.
func (n *Network) FailedOperations() []NetworkMetrics {
	return n.r.selectNetwork(func(rec *networkRecord) bool { return rec.status == failed })
}

// SlowOperations returns the retained finished operations that took longer
// than threshold, such as [DefaultSlowThreshold], oldest first. A negative
// threshold is an error wrapping [ErrNegativeThreshold].
func (n *Network) SlowOperations(threshold time.Duration) ([]NetworkMetrics, error) {
	if threshold < 0 {
		return nil, callError("slow operations", thresholdError(threshold))
	}
	return n.r.selectNetwork(func(rec *networkRecord) bool { return rec.dur > threshold }), nil
}

// FailedEvents returns the retained finished event runs that failed, oldest
// first.
func (r *Recorder) FailedEvents() []EventMetrics {
	return r.selectEvents(func(rec *eventRecord) bool { return rec.status == failed })
}

// SlowEvents returns the retained finished event runs that took longer than
// threshold, such as [DefaultSlowThreshold], oldest first. A negative
// threshold is an error wrapping [ErrNegativeThreshold].
func (r *Recorder) SlowEvents(threshold time.Duration) ([]EventMetrics, error) {
	if threshold < 0 {
		return nil, callError("slow events", thresholdError(threshold))
	}
	return r.selectEvents(func(rec *eventRecord) bool { return rec.dur > threshold }), nil
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

// add adds the retries of locked partitions to s.
func (s *RetrySummary) add(parts []store.Partition[eventRecord, eventTotals]) {
	if s.ByRetryCount == nil {
		s.ByRetryCount = make(map[int]uint64)
	}
	for i := range parts {
		p := &parts[i]
		s.TotalRetries += p.Totals.retries
		s.EventsWithRetries += p.Totals.withRetries
		for n, c := range p.Totals.byRetryCount {
			s.ByRetryCount[n] += c
		}
		p.Runs.EachPending(func(e *store.Entry[eventRecord]) {
			if n := e.Rec.retries; n > 0 {
				s.EventsWithRetries++
				s.ByRetryCount[int(n)]++
			}
		})
	}
}

func thresholdError(d time.Duration) error {
	return &valueError{err: ErrNegativeThreshold, value: d.String()}
}

// selectEvents returns the retained finished runs for which keep is true,
// oldest end first.
func (r *Recorder) selectEvents(keep func(*eventRecord) bool) []EventMetrics {
	return store.Finished(&r.events, keep, (*eventRecord).endKey,
		func(e *store.Entry[eventRecord]) EventMetrics { return e.Rec.metrics(e.TaskID) })
}

// selectNetwork returns the retained finished operations for which keep is
// true, oldest end first.
func (r *Recorder) selectNetwork(keep func(*networkRecord) bool) []NetworkMetrics {
	return store.Finished(&r.network, keep, (*networkRecord).endKey,
		func(e *store.Entry[networkRecord]) NetworkMetrics { return e.Rec.metrics(e.TaskID) })
}
