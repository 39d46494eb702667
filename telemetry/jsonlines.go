package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// A JSONLinesPublisher writes each record as one line of JSON (the document
// of [FormatMetrics]) to an io.Writer: the embedded default sink, needing no
// server. [ReadJSONLines] reads its output back.
//
// It is a [BatchPublisher]: each call writes its lines with one Write. It is
// safe for concurrent use: calls write one at a time, and a call waiting
// for another's Write returns when its context ends. A Write in progress
// ends with the context only if the writer has a SetWriteDeadline method
// (a net.Conn, or an *os.File of a pipe in non-blocking mode, as
// [os.Pipe] makes): the publisher then sets a write deadline in the past,
// and clears it after the Write. It does not close its writer; if the
// writer has a Flush() error or Sync() error method, Flush calls it.
//
// # Records it refuses
//
// It writes only records that keep to the record contract (see
// [ReadJSONLines]), so that every line it writes can be read back. A record
// that breaks it (a negative count, a time outside years 0000-9999, a line
// longer than [MaxJSONLineSize], ...) is not written: the call writes the
// other records and returns a [*DroppedError] wrapping [ErrInvalidRecord],
// which a Recorder counts as dropped and does not retry.
//
// # Failed writes
//
// A record is written whole or not at all, and never twice. If a Write
// fails part-way:
//   - when the writer can be cut back (an [*os.File], or any writer with
//     Seek and Truncate methods, positioned at its end), the publisher
//     truncates what that Write added, and returns its error. The file ends
//     with the last line of an earlier call, and a retry writes every line
//     again.
//   - otherwise the publisher keeps the lines that were not written and
//     returns the error, as a [*PartialError] counting the lines of the
//     call written whole (so that a Recorder that gives up on a batch
//     counts those as published) if there are any. A retry of the same
//     call (the same records, as a Recorder retries a batch) writes only
//     the others. Any other call first completes the line that the failed
//     Write cut, so that a torn line is never followed by another record,
//     and drops the rest. The record of that line, if a Recorder gave up
//     on its batch, is then in the file whole although it was counted as
//     dropped. Flush also completes the cut line.
type JSONLinesPublisher struct {
	// sem holds one token while a call writes: a channel rather than a
	// mutex, so that a call waiting its turn honours its context.
	sem chan struct{}
	w   io.Writer
	buf []byte // reused between calls

	// After a Write that failed part-way and could not be undone: the
	// lines it was given, and how many of their bytes are in the writer.
	failed  []byte
	written int
}

var (
	_ BatchPublisher = (*JSONLinesPublisher)(nil)
	_ Flusher        = (*JSONLinesPublisher)(nil)
)

// NewJSONLinesPublisher returns a publisher that writes to w. It returns an
// error if w is nil.
func NewJSONLinesPublisher(w io.Writer) (*JSONLinesPublisher, error) {
	if w == nil {
		return nil, callError("new JSON lines publisher", errNilWriter)
	}
	return &JSONLinesPublisher{w: w, sem: make(chan struct{}, 1)}, nil
}

// Name returns "jsonlines".
func (p *JSONLinesPublisher) Name() string { return "jsonlines" }

// PublishEventMetrics writes m as one line. A record that breaks the
// record contract is not written: the error is then a [*DroppedError]
// wrapping [ErrInvalidRecord].
func (p *JSONLinesPublisher) PublishEventMetrics(ctx context.Context, m EventMetrics) error {
	return p.write(ctx, func(b []byte, r *refusals) []byte { return appendEventLine(b, &m, r) })
}

// PublishNetworkMetrics writes m as one line, as PublishEventMetrics does.
func (p *JSONLinesPublisher) PublishNetworkMetrics(ctx context.Context, m NetworkMetrics) error {
	return p.write(ctx, func(b []byte, r *refusals) []byte { return appendNetworkLine(b, &m, r) })
}

// PublishBatch writes every record of b, one per line (events first), in
// one Write call. Records that break the record contract are left out:
// the error is then a [*DroppedError] wrapping [ErrInvalidRecord] that
// counts them.
func (p *JSONLinesPublisher) PublishBatch(ctx context.Context, b *Batch) error {
	return p.write(ctx, func(buf []byte, r *refusals) []byte {
		for i := range b.Events {
			buf = appendEventLine(buf, &b.Events[i], r)
		}
		for i := range b.Network {
			buf = appendNetworkLine(buf, &b.Network[i], r)
		}
		return buf
	})
}

// refusals counts the records of a call that break the record contract.
type refusals struct {
	n     int
	first string // why the first one was refused
}

func (r *refusals) add(kind, taskID, why string) {
	if r.n == 0 {
		r.first = kind + " " + quote(taskID) + ": " + why
	}
	r.n++
}

// err returns the error that reports the refused records, or nil.
func (r *refusals) err() error {
	if r.n == 0 {
		return nil
	}
	why := r.first
	if r.n > 1 {
		why += " (and " + strconv.Itoa(r.n-1) + " more)"
	}
	return &DroppedError{Dropped: r.n, Err: invalidRecord(why)}
}

var lineTooLong = "its line would be longer than " + strconv.Itoa(MaxJSONLineSize) + " bytes (MaxJSONLineSize)"

// appendEventLine appends the line of m to b, or, if m breaks the record
// contract, counts it in r and returns b unchanged.
func appendEventLine(b []byte, m *EventMetrics, r *refusals) []byte {
	if why := checkEvent(m); why != "" {
		r.add("event task", m.TaskID, why)
		return b
	}
	// Escaping only lengthens strings: skip encoding what cannot fit.
	if len(m.EventName)+len(m.TaskID)+len(m.Error)+len(m.PipelineID) > MaxJSONLineSize {
		r.add("event task", m.TaskID, lineTooLong)
		return b
	}
	n := len(b)
	b = appendEvent(b, m)
	if len(b)-n > MaxJSONLineSize {
		r.add("event task", m.TaskID, lineTooLong)
		return b[:n]
	}
	return append(b, '\n')
}

// appendNetworkLine is appendEventLine for a network operation.
func appendNetworkLine(b []byte, m *NetworkMetrics, r *refusals) []byte {
	if why := checkNetwork(m); why != "" {
		r.add("network task", m.TaskID, why)
		return b
	}
	if len(m.TaskID)+len(m.Operation)+len(m.Host)+len(m.Error) > MaxJSONLineSize {
		r.add("network task", m.TaskID, lineTooLong)
		return b
	}
	n := len(b)
	b = appendNetwork(b, m)
	if len(b)-n > MaxJSONLineSize {
		r.add("network task", m.TaskID, lineTooLong)
		return b[:n]
	}
	return append(b, '\n')
}

// write encodes the lines of one call and writes them with one Write.
func (p *JSONLinesPublisher) write(ctx context.Context, encode func([]byte, *refusals) []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	var refused refusals
	buf := encode(p.buf[:0], &refused)
	if cap(buf) <= 1<<20 { // do not keep a huge buffer after a huge batch
		p.buf = buf
	} else {
		p.buf = nil
	}
	if p.failed != nil {
		if bytes.Equal(buf, p.failed) { // a retry of the failed call
			if err := p.writeFailed(ctx, len(p.failed)); err != nil {
				return p.partial(err)
			}
			p.failed, p.written = nil, 0
			return refused.err()
		}
		// Another call: the rest of the failed one is given up.
		if err := p.completeLine(ctx); err != nil {
			return err
		}
		p.failed, p.written = nil, 0
	}
	if len(buf) > 0 {
		n, err := p.writeTo(ctx, buf)
		if err == nil && n < len(buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			err = fmt.Errorf("telemetry: write JSON lines: %w", err)
			if n = min(max(n, 0), len(buf)); n > 0 && !p.undo(n) {
				p.failed, p.written = bytes.Clone(buf), n
				return p.partial(err)
			}
			return err
		}
	}
	return refused.err()
}

// partial returns err, the error of a Write of the failed lines, as a
// [*PartialError] counting the lines written whole so far if there are
// any: they are not written again when the call is retried, so a
// Recorder that gives up on it must count them as published.
func (p *JSONLinesPublisher) partial(err error) error {
	if n := bytes.Count(p.failed[:p.written], newline); n > 0 {
		return &PartialError{Delivered: n, Err: err}
	}
	return err
}

var newline = []byte{'\n'}

// lock waits for p's turn to write, or for ctx to end.
func (p *JSONLinesPublisher) lock(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *JSONLinesPublisher) unlock() { <-p.sem }

// completeLine writes the rest of the line that the failed Write cut, if
// it cut one.
func (p *JSONLinesPublisher) completeLine(ctx context.Context) error {
	end := p.written
	if p.failed[end-1] != '\n' {
		end += bytes.IndexByte(p.failed[end:], '\n') + 1
	}
	return p.writeFailed(ctx, end)
}

// writeFailed writes the bytes of the failed lines from p.written up to
// end.
func (p *JSONLinesPublisher) writeFailed(ctx context.Context, end int) error {
	if p.written >= end {
		return nil
	}
	n, err := p.writeTo(ctx, p.failed[p.written:end])
	if err == nil && n < end-p.written {
		err = io.ErrShortWrite
	}
	p.written += min(max(n, 0), end-p.written)
	if err != nil {
		return fmt.Errorf("telemetry: write JSON lines: %w", err)
	}
	return nil
}

// A deadliner is a writer whose Write a deadline interrupts, such as the
// *os.File of a pipe or a net.Conn.
type deadliner interface {
	SetWriteDeadline(t time.Time) error
}

// writeTo writes b to p.w. If p.w is a deadliner, the end of ctx
// interrupts the Write, through a write deadline in the past, which is
// cleared afterwards; the error then wraps ctx's error and the Write's.
func (p *JSONLinesPublisher) writeTo(ctx context.Context, b []byte) (int, error) {
	d, ok := p.w.(deadliner)
	if !ok || ctx.Done() == nil {
		return p.w.Write(b)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = d.SetWriteDeadline(time.Unix(0, 1)) // an error: it has none
	})
	n, err := p.w.Write(b)
	if !stop() {
		<-interrupted
		_ = d.SetWriteDeadline(time.Time{})
		if err != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}
	return n, err
}

// truncater is a writer that can be cut back, such as an *os.File.
type truncater interface {
	io.Seeker
	Truncate(size int64) error
}

// undo removes the last n bytes written, if the writer can be cut back and
// they are at its end. It reports whether it did.
func (p *JSONLinesPublisher) undo(n int) bool {
	t, ok := p.w.(truncater)
	if !ok {
		return false
	}
	pos, err := t.Seek(0, io.SeekCurrent)
	if err != nil || pos < int64(n) {
		return false
	}
	if end, err := t.Seek(0, io.SeekEnd); err != nil || end != pos {
		// Not at the end: what follows is not ours to cut.
		_, _ = t.Seek(pos, io.SeekStart)
		return false
	}
	start := pos - int64(n)
	if _, err := t.Seek(start, io.SeekStart); err != nil {
		return false
	}
	if err := t.Truncate(start); err != nil {
		_, _ = t.Seek(pos, io.SeekStart)
		return false
	}
	return true
}

// Flush completes the line that a failed Write cut, if the writer cannot
// be cut back (see Failed writes), so that the output ends with whole
// lines; a later retry of the failed call still writes only what is
// missing. Then it flushes the writer if it has a Flush or Sync method.
func (p *JSONLinesPublisher) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	if p.failed != nil {
		if err := p.completeLine(ctx); err != nil {
			return err
		}
	}
	switch w := p.w.(type) {
	case interface{ Flush() error }:
		return w.Flush()
	case interface{ Sync() error }:
		return w.Sync()
	}
	return nil
}

// ErrTornLine is wrapped by the [*LineError] that [ReadJSONLines] returns for
// a torn last line: one with no newline at the end of the input that is not
// a complete document, as a process killed in the middle of a write leaves.
var ErrTornLine = errors.New("telemetry: torn last line")

// A LineError reports a line that [ReadJSONLines] could not read as a
// record.
type LineError struct {
	Line int   // line number, 1 for the first
	Err  error // why: wraps ErrInvalidRecord, or ErrTornLine
}

// Error returns a message of the form
// `telemetry: read JSON lines: line 3: invalid record: ...`.
func (e *LineError) Error() string {
	return "telemetry: read JSON lines: line " + strconv.Itoa(e.Line) + ": " + reason(e.Err)
}

// Unwrap returns e.Err.
func (e *LineError) Unwrap() error { return e.Err }

// ReadJSONLines reads the records a [JSONLinesPublisher] wrote, in input
// order, and returns them with nil, or with the error that stopped it.
//
// Each line that is not blank must be one document of [FormatMetrics]
// (metric_type "event" or "network"; unknown fields, duration_seconds and
// latency_seconds are ignored) that keeps to the record contract:
//   - each field of the record appears at most once, under its exact name:
//     names are case-sensitive, and one that differs from a field's only
//     in case ("Status") is an error, not an unknown field;
//   - the line is at most [MaxJSONLineSize] bytes, not counting its newline;
//   - status is "pending", "completed" or "failed", and end_time is null
//     (or absent) if and only if status is "pending";
//   - start_time, and end_time unless it is null, are RFC 3339 times whose
//     year in UTC is 0000 to 9999, and end_time is not before start_time;
//   - retry_count and process_id (null for none) are 0 to 2147483647, port
//     is 0 to 65535, bytes_sent and bytes_received are 0 or more;
//   - enqueue_time, if present, is an RFC 3339 time whose year in UTC is
//     0000 to 9999;
//   - trace_id and span_id are both present or both absent, and are 32 and
//     16 lowercase hexadecimal digits, not all zero.
//
// Strings are read as encoding/json reads them; the writer writes them as
// valid UTF-8, replacing each invalid byte with U+FFFD. So a record that
// the writer writes, ReadJSONLines reads back equal, but for that
// replacement and for its times, which come back in UTC without a
// monotonic clock reading.
//
// The first line that breaks the contract stops the reading: the error is
// a [*LineError] naming the line, wrapping [ErrInvalidRecord], and the
// records of the lines before it are returned with it. A torn last line (see [ErrTornLine]) is not an error in the file's
// records, only in its end: ReadJSONLines then returns every record before
// it and a *LineError wrapping ErrTornLine, which a caller may report as a
// warning. A complete document on a last line without a newline is read as
// usual. An error of r is returned wrapped.
func ReadJSONLines(r io.Reader) ([]EventMetrics, []NetworkMetrics, error) {
	var (
		events  []EventMetrics
		network []NetworkMetrics
		long    []byte
		rec     jsonRecord
	)
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, newline, err := readLine(br, &long)
		if err != nil {
			if err == errLineTooLong {
				err = &LineError{Line: line, Err: invalidRecord("line is longer than " + strconv.Itoa(MaxJSONLineSize) + " bytes (MaxJSONLineSize)")}
			} else if err != io.EOF {
				err = fmt.Errorf("telemetry: read JSON lines: %w", err)
			} else {
				err = nil
			}
			return events, network, err
		}
		b = bytes.Trim(b, " \t\r\n") // JSON's whitespace, not Unicode's
		if len(b) == 0 {
			continue
		}
		rec = jsonRecord{}
		if err = rec.unmarshal(b); err != nil {
			return events, network, &LineError{Line: line, Err: notRecord(b, newline, err)}
		}
		switch rec.MetricType {
		case "event":
			var m EventMetrics
			if m, err = rec.event(); err == nil {
				events = append(events, m)
			}
		case "network":
			var m NetworkMetrics
			if m, err = rec.network(); err == nil {
				network = append(network, m)
			}
		default:
			err = invalidRecord("metric_type is " + quote(rec.MetricType) + `, want "event" or "network"`)
		}
		if err != nil {
			return events, network, &LineError{Line: line, Err: err}
		}
	}
}

// notRecord returns why the line b, which could not be decoded with the
// error err, is not a record: a torn last line if it is the start of a
// JSON document with no newline after it.
func notRecord(b []byte, newline bool, err error) error {
	switch {
	case errors.Is(err, ErrInvalidRecord): // a field of the wrong type
		return err
	case !newline && torn(b):
		return fmt.Errorf("%w: %d bytes with no newline after them are not a complete record; ignored", ErrTornLine, len(b))
	case b[0] != '{':
		return invalidRecord("not a JSON object")
	}
	return fmt.Errorf("%w: not a JSON document: %w", ErrInvalidRecord, err)
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line of br, without its newline, and whether it
// had one. It returns io.EOF at the end of the input, and errLineTooLong for
// a line longer than MaxJSONLineSize. The line is valid until the next
// call; long is the buffer for lines longer than br's.
func readLine(br *bufio.Reader, long *[]byte) (line []byte, newline bool, err error) {
	frag, err := br.ReadSlice('\n')
	if err == nil {
		line = frag[:len(frag)-1]
	} else {
		*long = append((*long)[:0], frag...)
		for err == bufio.ErrBufferFull && len(*long) <= MaxJSONLineSize {
			frag, err = br.ReadSlice('\n')
			*long = append(*long, frag...)
		}
		line = *long
		if err == nil {
			line = line[:len(line)-1]
		}
	}
	switch {
	case len(line) > MaxJSONLineSize:
		return nil, false, errLineTooLong
	case err == io.EOF && len(line) > 0:
		return line, false, nil
	case err != nil:
		return nil, false, err
	}
	return line, true, nil
}

// torn reports whether b is the start of a JSON document that ends too
// early, as a write cut part-way leaves it.
func torn(b []byte) bool {
	var v json.RawMessage
	return errors.Is(json.NewDecoder(bytes.NewReader(b)).Decode(&v), io.ErrUnexpectedEOF)
}
