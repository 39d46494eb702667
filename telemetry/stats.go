package telemetry

import "github.com/eventpipeline/eventpipeline/telemetry/internal/store"

// Stats are counters of a Recorder: what it retains and evicted, and how
// delivery to each publisher goes. Ended, evicted and failed counts cover
// every record since the Recorder was created, retained or not.
type Stats struct {
	EventsPending  int    `json:"events_pending"`  // event runs started and not yet ended
	EventsRetained int    `json:"events_retained"` // finished event runs retained
	EventsEnded    uint64 `json:"events_ended"`    // event runs ended
	EventsFailed   uint64 `json:"events_failed"`   // event runs ended with an error
	EventsEvicted  uint64 `json:"events_evicted"`  // finished event runs evicted by WithMaxEvents
	// EventsWaitClamped counts the ended runs whose enqueue time
	// ([WithEnqueueTime]) was after their start, as clocks of different
	// machines can make it; their wait counts as 0.
	EventsWaitClamped uint64 `json:"events_wait_clamped,omitempty"`
	NetworkPending    int    `json:"network_pending"`  // network operations started and not yet ended
	NetworkRetained   int    `json:"network_retained"` // finished network operations retained
	NetworkEnded      uint64 `json:"network_ended"`    // network operations ended
	NetworkFailed     uint64 `json:"network_failed"`   // network operations ended with an error
	NetworkEvicted    uint64 `json:"network_evicted"`  // finished network operations evicted by WithMaxNetworkOps
	// BytesSent and BytesReceived are totals over every network operation.
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	// Publishers has the delivery counters of each attached publisher,
	// in the order they were attached.
	Publishers []PublisherStats `json:"publishers"`
}

// addEvents adds the event counters of a view of the event table to s.
func (s *Stats) addEvents(v *store.View[eventRecord, eventTotals]) {
	s.EventsPending += v.NumPending()
	s.EventsRetained += v.Retained()
	s.EventsEvicted += v.Evicted()
	v.EachTotals(func(t *eventTotals) {
		s.EventsEnded += t.ended
		s.EventsFailed += t.failed
		s.EventsWaitClamped += t.waitClamped
	})
}

// addNetwork adds the network counters of a view of the network table to s.
func (s *Stats) addNetwork(v *store.View[networkRecord, networkTotals]) {
	s.NetworkPending += v.NumPending()
	s.NetworkRetained += v.Retained()
	s.NetworkEvicted += v.Evicted()
	v.EachTotals(func(t *networkTotals) {
		s.NetworkEnded += t.ended
		s.NetworkFailed += t.failed
		s.BytesSent += t.sent
		s.BytesReceived += t.received
	})
}

// Stats returns the current counters of r.
func (r *Recorder) Stats() Stats {
	var s Stats
	r.events.Locked(s.addEvents)
	r.network.Locked(s.addNetwork)
	s.Publishers = r.PublisherStats()
	return s
}

// PublisherStats are the delivery counters of one publisher attached to a
// Recorder. Every record handed to it is counted exactly once: in Queued
// until it is settled, then in Published or in one of the Dropped counts.
// The counters are read together, so that at every moment Queued +
// Published + Dropped() is the number of records handed to the publisher
// so far; after [Recorder.Close] returns, Queued is 0.
type PublisherStats struct {
	// Name identifies the publisher: its [Namer] name or its type, with a
	// "#2", "#3"... suffix when several have the same name. It is at most
	// 128 bytes of valid UTF-8; a longer or invalid name is cut and given a
	// hash suffix that keeps it distinct.
	Name string `json:"name"`
	// Synchronous reports whether it is called on the recording path
	// (a [SyncPublisher]) rather than through a queue.
	Synchronous bool `json:"synchronous"`
	// Queued is the number of records waiting for it: in its queue, or
	// taken by its worker and not yet published or dropped. A record leaves
	// Queued the moment it is counted as published or dropped, even when
	// the others taken with it are still being delivered.
	Queued int `json:"queued"`
	// QueueCapacity is the number of records its queue holds: its buffer
	// of event records and its buffer of network records together, each
	// of [WithQueueSize] records, or a little more when that size is not a
	// multiple of the number of shards the Recorder splits that kind into
	// (each shard holds its part rounded up): with the default retention,
	// 16 shards, WithQueueSize(100) holds 112 records of each kind, 224 in
	// all. Queued reaches it only when every shard's part of both buffers
	// is full, beside the records the worker has taken.
	QueueCapacity int `json:"queue_capacity"`
	// Published is the number of records it accepted, those of a batch
	// it then failed on that a [PartialError] reported delivered included.
	Published uint64 `json:"published"`
	// FailedAttempts is the number of publish calls that returned an error
	// or panicked, retried or not.
	FailedAttempts uint64 `json:"failed_attempts"`
	// DroppedQueueFull is the number of records dropped because its queue
	// was full when they finished.
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	// DroppedFailed is the number of records dropped after a permanent
	// error, a [DroppedError], or the last attempt its [RetryPolicy] allows
	// (but for those a [PartialError] reported delivered).
	DroppedFailed uint64 `json:"dropped_failed"`
	// DroppedClosed is the number of records dropped because
	// [Recorder.Close] ran out of time before they were delivered: still
	// queued, waiting between attempts, or in an attempt that Close cut
	// short.
	DroppedClosed uint64 `json:"dropped_closed"`
	// Panics is the number of calls of the publisher that panicked. A
	// panic is recovered: in a publish call it is treated as a permanent
	// error; in Flush or Close it is returned as their error. A call
	// that ends its goroutine with runtime.Goexit counts as one (for a
	// queued publisher, another goroutine goes on delivering).
	Panics uint64 `json:"panics"`
}

// Dropped returns the number of records the publisher lost, for any reason.
func (s PublisherStats) Dropped() uint64 {
	return s.DroppedQueueFull + s.DroppedFailed + s.DroppedClosed
}

// PublisherStats returns the delivery counters of each attached publisher,
// in the order they were attached.
func (r *Recorder) PublisherStats() []PublisherStats {
	outs := r.outlets.Load().all
	s := make([]PublisherStats, len(outs))
	for i, o := range outs {
		s[i] = o.stats()
	}
	return s
}
