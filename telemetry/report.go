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
	// GeneratedAt is when the snapshot was taken, on the Recorder's clock
	// (see [Recorder.Now]) as the records' times are: no record in the
	// snapshot started or ended after it.
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
	var evs []store.Entry[eventRecord]
	var nets []store.Entry[networkRecord]
	r.lockedReport(rep,
		func(v *store.View[eventRecord, eventTotals]) { evs = v.Snapshot((*eventRecord).setRetries) },
		func(v *store.View[networkRecord, networkTotals]) { nets = v.Snapshot(nil) })
	return evs, nets
}

// lockedReport fills the summary fields of rep, with the time, and calls
// events and network with the views of the two tables that they are read
// from, under each table's lock, so that what the callers copy of the
// records is consistent with the summary.
func (r *Recorder) lockedReport(rep *Report, events func(*store.View[eventRecord, eventTotals]), network func(*store.View[networkRecord, networkTotals])) {
	r.events.Locked(func(v *store.View[eventRecord, eventTotals]) {
		events(v)
		rep.RetryStats.add(v)
		rep.Stats.addEvents(v)
	})
	r.network.Locked(func(v *store.View[networkRecord, networkTotals]) {
		network(v)
		rep.Stats.addNetwork(v)
	})
	// Read once both views are taken: every record in them read its times
	// from this clock before, so none is later than this one.
	rep.GeneratedAt = r.Now()
	rep.Stats.Publishers = r.PublisherStats()
}

// MetricsJSON returns the report of r as one JSON document. Its fields are
// those of [Report], in snake_case; each record is the document of
// [FormatMetrics].
func (r *Recorder) MetricsJSON() ([]byte, error) {
	// The records are copied under the locks, in their stored form, and
	// written from there into an output allocated once at about its
	// final size.
	var (
		rep  Report
		evs  *store.Copy[eventRecord]
		nets *store.Copy[networkRecord]
	)
	r.lockedReport(&rep,
		func(v *store.View[eventRecord, eventTotals]) { evs = v.Copy((*eventRecord).setRetries) },
		func(v *store.View[networkRecord, networkTotals]) { nets = v.Copy(nil) })
	end := reportEnd(&rep)
	tail := len(end)
	netSize := nets.Len()*maxNetworkJSON + nets.StringBytes() + tail
	evSize := evs.Len()*maxEventJSON + evs.StringBytes() + len(reportNetwork) + netSize
	b := make([]byte, 0, len(reportHead)+timeLen+len(reportEvents)+evSize)
	b = append(b, reportHead...)
	b = rep.GeneratedAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, reportEvents...)
	w := newRecordWriter(r.clock)
	from := len(b)
	for k := range evs.Len() {
		ev := evs.At(k)
		b = grow(b, eventBound(ev.TaskID, &ev.Rec), len(b)-from, k, evs.Len(), len(reportNetwork)+netSize)
		if k > 0 {
			b = append(b, ',')
		}
		b = w.appendEvent(b, ev.TaskID, &ev.Rec)
	}
	b = append(b, reportNetwork...)
	from = len(b)
	for k := range nets.Len() {
		op := nets.At(k)
		b = grow(b, networkBound(op.TaskID, &op.Rec), len(b)-from, k, nets.Len(), tail)
		if k > 0 {
			b = append(b, ',')
		}
		b = w.appendNetwork(b, op.TaskID, &op.Rec)
	}
	return append(b, end...), nil
}

// The fixed parts of the report document.
const (
	reportHead    = `{"generated_at":"`
	reportEvents  = `","events":[`
	reportNetwork = `],"network_operations":[`
)

// reportEnd returns the end of the report document rep, what follows its
// network operations: the end of their list, the retry statistics and the
// stats. Encoding them cannot fail: they hold only integers, strings,
// booleans and a map keyed by int.
func reportEnd(rep *Report) []byte {
	rs, _ := json.Marshal(rep.RetryStats)
	st, _ := json.Marshal(rep.Stats)
	b := make([]byte, 0, len(`],"retry_stats":,"stats":}`)+len(rs)+len(st))
	b = append(b, `],"retry_stats":`...)
	b = append(b, rs...)
	b = append(b, `,"stats":`...)
	b = append(b, st...)
	return append(b, '}')
}

// grow returns b with room for the comma and the document of record k of
// the n of a list, which takes at most need bytes; the k records before it
// took done bytes. When it must grow b, it makes room for what those took
// on average for each record left, plus rest for what follows the list, so
// that a report whose records are larger than its first estimate (escaped
// strings, enqueue times, spans) is copied once or twice, not at every
// doubling.
func grow(b []byte, need, done, k, n, rest int) []byte {
	if need++; cap(b)-len(b) >= need {
		return b
	}
	avg := done / max(k, 1)
	nb := make([]byte, len(b), len(b)+need+(n-k-1)*max(avg, need/2)+rest)
	copy(nb, b)
	return nb
}

// maxSecondsLen is the most bytes appendSeconds appends.
const maxSecondsLen = 24

// maxEventJSON is the most bytes the document of an event record takes
// besides the bytes of its strings, when it has no enqueue time and no
// span and its strings need no escaping; eventBound adds the rest.
const maxEventJSON = len(`{"metric_type":"event","event_name":"","task_id":"","start_time":"`) + timeLen +
	len(`","end_time":"`) + timeLen + len(`","status":"completed","error":null,"retry_count":-2147483648`) +
	len(`,"process_id":-2147483648,"pipeline_id":null,"duration_seconds":`) + maxSecondsLen + len(`}`)

// maxNetworkJSON is maxEventJSON for network records.
const maxNetworkJSON = len(`{"metric_type":"network","task_id":"","operation":"","host":"","port":65535,"start_time":"`) +
	timeLen + len(`","end_time":"`) + timeLen + len(`","status":"completed","bytes_sent":-9223372036854775808`) +
	len(`,"bytes_received":-9223372036854775808,"error":null,"latency_seconds":`) + maxSecondsLen + len(`}`)

// maxEnqueueJSON and maxSpanJSON are the most bytes of the optional parts.
const (
	maxEnqueueJSON = len(`,"enqueue_time":"`) + timeLen + len(`","wait_seconds":`) + maxSecondsLen
	maxSpanJSON    = len(`,"trace_id":"00000000000000000000000000000000","span_id":"0000000000000000","trace_sampled":false`)
)

// maxEscaped is the most bytes appendString writes for one byte of its
// string (a control character becomes \u00XX).
const maxEscaped = 6

// eventBound returns the most bytes the document of the event record r of
// taskID takes (with room for an enqueue time and a span, which few
// records have: checking for them costs more than the room).
func eventBound(taskID string, r *eventRecord) int {
	return maxEventJSON + maxEnqueueJSON + maxSpanJSON + maxEscaped*(len(taskID)+len(r.name)+len(r.err)+len(r.pipelineID))
}

// networkBound returns the most bytes the document of the network record
// r of taskID takes.
func networkBound(taskID string, r *networkRecord) int {
	return maxNetworkJSON + maxSpanJSON + maxEscaped*(len(taskID)+len(r.operation)+len(r.host)+len(r.err))
}

// WriteJSON writes the report of r to w, as MetricsJSON returns it.
func (r *Recorder) WriteJSON(w io.Writer) error {
	b, _ := r.MetricsJSON() // never fails
	_, err := w.Write(b)
	return err
}

// MarshalJSON encodes rep as MetricsJSON does.
func (rep Report) MarshalJSON() ([]byte, error) {
	return appendReport(nil, &rep, func(b []byte) []byte {
		return appendList(b, rep.Events, appendEvent)
	}, func(b []byte) []byte {
		return appendList(b, rep.NetworkOperations, appendNetwork)
	}), nil
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
func appendReport(b []byte, rep *Report, events, network func([]byte) []byte) []byte {
	end := reportEnd(rep)
	b = append(b, reportHead...)
	b = rep.GeneratedAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, reportEvents...)
	b = events(b)
	b = append(b, reportNetwork...)
	b = network(b)
	return append(b, end...)
}
