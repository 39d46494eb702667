package telemetry_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestJSONLinesRoundTripRandom writes 5000 random records of each kind (times
// anywhere in years 0000-9999 to the nanosecond, any counts, ports and ids,
// spans, texts with invalid UTF-8 and characters to escape) and reads them
// back equal, but for invalid UTF-8, which becomes U+FFFD.
func TestJSONLinesRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	rt := func() time.Time {
		return time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).In(time.FixedZone("x", 0))
	}
	var evs []telemetry.EventMetrics
	var nws []telemetry.NetworkMetrics
	strs := []string{"", "a", "\xff", "é\u2028\x00\"\\", strings.Repeat("z", 100)}
	for range 5000 {
		s := rt()
		e := s.Add(time.Duration(rng.Int64N(1 << 62)))
		if e.UTC().Year() > 9999 {
			e = s
		}
		st := []telemetry.Status{telemetry.StatusPending, telemetry.StatusCompleted, telemetry.StatusFailed}[rng.IntN(3)]
		if st == telemetry.StatusPending {
			e = time.Time{}
		}
		m := telemetry.EventMetrics{EventName: strs[rng.IntN(5)], TaskID: strs[rng.IntN(5)], StartTime: s.UTC(), EndTime: e.UTC(), Status: st,
			Error: strs[rng.IntN(5)], RetryCount: rng.IntN(1 << 31), ProcessID: rng.IntN(1 << 31), PipelineID: strs[rng.IntN(5)]}
		if rng.IntN(2) == 0 {
			m.EnqueueTime = rt().UTC()
		}
		if rng.IntN(2) == 0 {
			for i := range m.Span.TraceID {
				m.Span.TraceID[i] = byte(rng.IntN(256))
			}
			m.Span.TraceID[0] |= 1
			for i := range m.Span.SpanID {
				m.Span.SpanID[i] = byte(rng.IntN(256))
			}
			m.Span.SpanID[0] |= 1
			m.Span.Sampled = rng.IntN(2) == 0
		}
		evs = append(evs, m)
		nws = append(nws, telemetry.NetworkMetrics{TaskID: m.TaskID, Operation: m.EventName, Host: m.Error, Port: rng.IntN(65536), StartTime: m.StartTime, EndTime: m.EndTime, Status: st, BytesSent: rng.Int64(), BytesReceived: rng.Int64(), Error: m.Error, Span: m.Span})
	}
	var buf bytes.Buffer
	p, _ := telemetry.NewJSONLinesPublisher(&buf)
	if err := p.PublishBatch(context.Background(), &telemetry.Batch{Events: evs, Network: nws}); err != nil {
		t.Fatal(err)
	}
	gotE, gotN, err := telemetry.ReadJSONLines(&buf)
	if err != nil {
		t.Fatal(err)
	}
	fix := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	for i := range evs {
		w := evs[i]
		w.EventName, w.TaskID, w.Error, w.PipelineID = fix(w.EventName), fix(w.TaskID), fix(w.Error), fix(w.PipelineID)
		if gotE[i] != w {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, gotE[i], w)
		}
		n := nws[i]
		n.TaskID, n.Operation, n.Host, n.Error = fix(n.TaskID), fix(n.Operation), fix(n.Host), fix(n.Error)
		if gotN[i] != n {
			t.Fatalf("network %d:\n got %+v\nwant %+v", i, gotN[i], n)
		}
	}
}
