package telemetry

// The life cycle shared by event runs and network operations. Records pass
// to the callbacks by value, so that none escapes to the heap.

// begin adds rec as the pending run of taskID in t.
func begin[R, T any](r *Recorder, t *table[R, T], op, taskID string, rec R) error {
	if r.closed.Load() {
		return taskError(op, taskID, ErrClosed)
	}
	p, h := t.part(taskID)
	p.mu.Lock()
	err := p.s.start(h, taskID, rec)
	p.mu.Unlock()
	if err != nil {
		return taskError(op, taskID, err)
	}
	return nil
}

// finish ends the pending run of taskID in t: end completes its record and
// count adds it to the partition's totals; then the record goes into the
// buffers of the queued publishers and, through publishSync, to the
// synchronous ones.
func finish[R, T any](r *Recorder, t *table[R, T], op, taskID string,
	end func(R) R, count func(*T, R), publishSync func(*outlet, string, R)) error {
	if r.closed.Load() {
		return taskError(op, taskID, ErrClosed)
	}
	outs := *r.outlets.Load()
	pressure := false
	p, h := t.part(taskID)
	p.mu.Lock()
	if r.closed.Load() {
		// Close began after the check above. Checked again under the lock,
		// which the publishers' workers take for their last round after
		// Close began, so that no record is queued after that round.
		p.mu.Unlock()
		return taskError(op, taskID, ErrClosed)
	}
	rec, err := p.s.take(h, taskID)
	if err == nil {
		rec = end(rec)
		p.s.push(h, taskID, rec)
		count(&p.totals, rec)
		pressure = enqueue(p, outs, taskID, &rec)
	}
	p.mu.Unlock()
	if err != nil {
		return taskError(op, taskID, err)
	}
	handOver(outs, pressure, func(o *outlet) { publishSync(o, taskID, rec) })
	return nil
}

// latest returns the latest run of taskID in t, pending or retained, as
// metrics makes it.
func latest[R, T, M any](t *table[R, T], taskID string, metrics func(*entry[R]) M) (M, bool) {
	p, h := t.part(taskID)
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.s.lookup(h, taskID)
	if !ok {
		var zero M
		return zero, false
	}
	return metrics(e), true
}
