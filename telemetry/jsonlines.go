package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// A JSONLinesPublisher writes each record as one line of JSON (the document
// of [FormatMetrics]) to an io.Writer: the embedded default sink, needing no
// server. Its output can be read back with [ReadJSONLines].
//
// It is a [BatchPublisher]: a batch is written with one Write call. It is
// safe for concurrent use. It does not close its writer; if the writer has a
// Flush() error or Sync() error method, Flush calls it.
type JSONLinesPublisher struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
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
	return &JSONLinesPublisher{w: w}, nil
}

// Name returns "jsonlines".
func (p *JSONLinesPublisher) Name() string { return "jsonlines" }

// PublishEventMetrics writes m as one line.
func (p *JSONLinesPublisher) PublishEventMetrics(ctx context.Context, m EventMetrics) error {
	return p.write(ctx, func(b []byte) []byte { return append(appendEvent(b, &m), '\n') })
}

// PublishNetworkMetrics writes m as one line.
func (p *JSONLinesPublisher) PublishNetworkMetrics(ctx context.Context, m NetworkMetrics) error {
	return p.write(ctx, func(b []byte) []byte { return append(appendNetwork(b, &m), '\n') })
}

// PublishBatch writes every record of b, one per line, in one Write call.
func (p *JSONLinesPublisher) PublishBatch(ctx context.Context, b *Batch) error {
	return p.write(ctx, func(buf []byte) []byte {
		for i := range b.Events {
			buf = append(appendEvent(buf, &b.Events[i]), '\n')
		}
		for i := range b.Network {
			buf = append(appendNetwork(buf, &b.Network[i]), '\n')
		}
		return buf
	})
}

func (p *JSONLinesPublisher) write(ctx context.Context, encode func([]byte) []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = encode(p.buf[:0])
	_, err := p.w.Write(p.buf)
	if cap(p.buf) > 1<<20 { // do not keep a huge buffer after a huge batch
		p.buf = nil
	}
	return err
}

// Flush flushes the writer if it has a Flush or Sync method.
func (p *JSONLinesPublisher) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch w := p.w.(type) {
	case interface{ Flush() error }:
		return w.Flush()
	case interface{ Sync() error }:
		return w.Sync()
	}
	return nil
}

// ReadJSONLines reads the records a [JSONLinesPublisher] wrote, in file
// order. Blank lines are skipped; a line that is not a record document is an
// error naming its line number.
func ReadJSONLines(r io.Reader) ([]EventMetrics, []NetworkMetrics, error) {
	var (
		events  []EventMetrics
		network []NetworkMetrics
		kind    struct {
			MetricType string `json:"metric_type"`
		}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		kind.MetricType = ""
		err := json.Unmarshal(b, &kind)
		if err == nil {
			switch kind.MetricType {
			case "event":
				var m EventMetrics
				if err = m.UnmarshalJSON(b); err == nil {
					events = append(events, m)
				}
			case "network":
				var m NetworkMetrics
				if err = m.UnmarshalJSON(b); err == nil {
					network = append(network, m)
				}
			default:
				err = fmt.Errorf("metric_type is %q, want \"event\" or \"network\"", kind.MetricType)
			}
		}
		if err != nil {
			return events, network, fmt.Errorf("telemetry: read JSON lines: line %d: %s", line, reason(err))
		}
	}
	if err := sc.Err(); err != nil {
		return events, network, fmt.Errorf("telemetry: read JSON lines: %w", err)
	}
	return events, network, nil
}
