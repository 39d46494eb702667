package telemetry

import "github.com/eventpipeline/eventpipeline/telemetry/internal/store"

// The life cycle shared by event runs and network operations, on the
// storage engine of package store (whose doc describes the partitions and
// the delivery buffers). Records pass to the callbacks by value, so that
// none escapes to the heap.

// begin adds rec as the pending run of taskID in t.
func begin[R, T any](r *Recorder, t *store.Table[R, T], op, taskID string, rec R) error {
	if r.closed.Load() {
		return taskError(op, taskID, ErrClosed)
	}
	p, h := t.Part(taskID)
	p.Lock()
	st := p.Runs.Start(h, taskID, rec)
	p.Unlock()
	if st != store.OK {
		return taskError(op, taskID, runError(st))
	}
	return nil
}

// finish ends the pending run of taskID in t: end completes its record and
// count adds it to the partition's totals; then the record goes into the
// buffers of the queued publishers and, through publishSync, to the
// synchronous ones.
func finish[R, T any](r *Recorder, t *store.Table[R, T], op, taskID string,
	end func(R) R, count func(*T, R), publishSync func(*outlet, string, R)) error {
	if r.closed.Load() {
		return taskError(op, taskID, ErrClosed)
	}
	outs := *r.outlets.Load()
	pressure := false
	p, h := t.Part(taskID)
	p.Lock()
	if r.closed.Load() {
		// Close began after the check above. Checked again under the lock,
		// which the publishers' workers take for their last round after
		// Close began, so that no record is queued after that round.
		p.Unlock()
		return taskError(op, taskID, ErrClosed)
	}
	rec, st := p.Runs.Take(h, taskID)
	if st == store.OK {
		rec = end(rec)
		p.Runs.Push(h, taskID, rec)
		count(&p.Totals, rec)
		pressure = enqueue(p, outs, taskID, &rec)
	}
	p.Unlock()
	if st != store.OK {
		return taskError(op, taskID, runError(st))
	}
	handOver(outs, pressure, func(o *outlet) { publishSync(o, taskID, rec) })
	return nil
}

// latest returns the latest run of taskID in t, pending or retained, as
// metrics makes it.
func latest[R, T, M any](t *store.Table[R, T], taskID string, metrics func(*store.Entry[R]) M) (M, bool) {
	p, h := t.Part(taskID)
	p.Lock()
	defer p.Unlock()
	e, ok := p.Runs.Lookup(h, taskID)
	if !ok {
		var zero M
		return zero, false
	}
	return metrics(e), true
}

// runError returns the sentinel error of a refused [store.Runs] call, or nil
// for [store.OK].
func runError(st store.Status) error {
	switch st {
	case store.OK:
		return nil
	case store.AlreadyStarted:
		return ErrAlreadyStarted
	case store.TooManyPending:
		return ErrTooManyPending
	case store.AlreadyEnded:
		return ErrAlreadyEnded
	case store.NotStarted:
		return ErrNotStarted
	}
	panic("telemetry: unknown store status")
}
