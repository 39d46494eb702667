package telemetry

import (
	"encoding/json"
	"io"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// A Report is a snapshot of everything a Recorder retains: the document that
// [Recorder.MetricsJSON] returns.
type Report struct {
	// GeneratedAt is when the snapshot was taken.
	GeneratedAt time.Time `json:"generated_at"`
	// Events has the retained finished runs, oldest first, then the
	// pending runs by start time.
	Events []EventMetrics `json:"events"`
	// NetworkOperations has the retained network operations, ordered as
	// Events.
	NetworkOperations []NetworkMetrics `json:"network_operations"`
	// RetryStats summarizes retries over every run (see [Recorder.RetryStats]).
	RetryStats RetrySummary `json:"retry_stats"`
	// Stats has the Recorder's counters at the time of the snapshot.
	Stats Stats `json:"stats"`
}

// Report returns a snapshot of the records r retains. Events and retry
// statistics are taken together, and so are network operations, so each
// part is consistent even while records are being recorded.
func (r *Recorder) Report() Report {
	var rep Report
	evs, nets := r.snapshot(&rep)
	rep.Events = make([]EventMetrics, len(evs))
	for i, e := range evs {
		rep.Events[i] = e.Rec.metrics(r.clock, e.TaskID)
	}
	rep.NetworkOperations = make([]NetworkMetrics, len(nets))
	for i, e := range nets {
		rep.NetworkOperations[i] = e.Rec.metrics(r.clock, e.TaskID)
	}
	return rep
}

// snapshot copies the retained records in their compact form, each kind
// with its summary fields of rep in one consistent snapshot.
func (r *Recorder) snapshot(rep *Report) ([]store.Entry[eventRecord], []store.Entry[networkRecord]) {
	rep.GeneratedAt = time.Now()
	var evs []store.Entry[eventRecord]
	var nets []store.Entry[networkRecord]
	r.events.Locked(func(v *store.View[eventRecord, eventTotals]) {
		evs = v.Snapshot((*eventRecord).setRetries)
		rep.RetryStats.add(v)
		rep.Stats.addEvents(v)
	})
	r.network.Locked(func(v *store.View[networkRecord, networkTotals]) {
		nets = v.Snapshot(nil)
		rep.Stats.addNetwork(v)
	})
	rep.Stats.Publishers = r.PublisherStats()
	return evs, nets
}

// MetricsJSON returns the report of r as one JSON document. Its fields are
// those of [Report], in snake_case; each record is the document of
// [FormatMetrics].
func (r *Recorder) MetricsJSON() ([]byte, error) {
	var rep Report
	evs, nets := r.snapshot(&rep)
	b := make([]byte, 0, 320*(len(evs)+len(nets)+1))
	return appendReport(b, &rep, func(b []byte) []byte {
		return appendList(b, evs, func(b []byte, e *store.Entry[eventRecord]) []byte {
			m := e.Rec.metrics(r.clock, e.TaskID)
			return appendEvent(b, &m)
		})
	}, func(b []byte) []byte {
		return appendList(b, nets, func(b []byte, e *store.Entry[networkRecord]) []byte {
			m := e.Rec.metrics(r.clock, e.TaskID)
			return appendNetwork(b, &m)
		})
	})
}

// WriteJSON writes the report of r to w, as MetricsJSON returns it.
func (r *Recorder) WriteJSON(w io.Writer) error {
	b, err := r.MetricsJSON()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// MarshalJSON encodes rep as MetricsJSON does.
func (rep Report) MarshalJSON() ([]byte, error) {
	return appendReport(nil, &rep, func(b []byte) []byte {
		return appendList(b, rep.Events, appendEvent)
	}, func(b []byte) []byte {
		return appendList(b, rep.NetworkOperations, appendNetwork)
	})
}

// appendList appends the items as the elements of a JSON array, without
// the brackets.
func appendList[T any](b []byte, items []T, appendItem func([]byte, *T) []byte) []byte {
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, &items[i])
	}
	return b
}

// appendReport appends the report document, with the record arrays written
// by events and network.
func appendReport(b []byte, rep *Report, events, network func([]byte) []byte) ([]byte, error) {
	rs, err := json.Marshal(rep.RetryStats)
	if err != nil {
		return nil, err
	}
	st, err := json.Marshal(rep.Stats)
	if err != nil {
		return nil, err
	}
	b = append(b, `{"generated_at":"`...)
	b = rep.GeneratedAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","events":[`...)
	b = events(b)
	b = append(b, `],"network_operations":[`...)
	b = network(b)
	b = append(b, `],"retry_stats":`...)
	b = append(b, rs...)
	b = append(b, `,"stats":`...)
	b = append(b, st...)
	return append(b, '}'), nil
}
