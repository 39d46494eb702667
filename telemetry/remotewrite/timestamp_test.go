package remotewrite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// tsdbReceiver is an in-memory remote-write receiver that appends samples
// as Prometheus's TSDB does: per series, a sample older than the last one
// is out of order, and one at the same timestamp with another value is a
// duplicate; either makes the whole request fail with 400.
type tsdbReceiver struct {
	mu     sync.Mutex
	last   map[string]prompb.Sample
	errors []string
}

func (f *tsdbReceiver) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body.Close()
	status, msg := http.StatusNoContent, ""
	data, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(data)
	}
	f.mu.Lock()
	if f.last == nil {
		f.last = map[string]prompb.Sample{}
	}
	if err != nil {
		status, msg = http.StatusBadRequest, err.Error()
	}
	for _, ts := range wr.Timeseries {
		var key strings.Builder
		for _, l := range ts.Labels {
			fmt.Fprintf(&key, "%s=%q,", l.Name, l.Value)
		}
		for _, s := range ts.Samples {
			prev, ok := f.last[key.String()]
			switch {
			case ok && s.Timestamp < prev.Timestamp:
				status, msg = http.StatusBadRequest, "out of order sample"
			case ok && s.Timestamp == prev.Timestamp && s.Value != prev.Value:
				status, msg = http.StatusBadRequest, "duplicate sample for timestamp"
			default:
				f.last[key.String()] = s
			}
		}
	}
	if msg != "" {
		f.errors = append(f.errors, msg)
	}
	f.mu.Unlock()
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(msg)), Request: req}, nil
}

// TestPushesWithinOneMillisecond pushes twice within one millisecond of
// the clock (a Flush right after another, or after Recorder.Flush, as
// Recorder.Close does), with a record in between: the second push must
// not send a sample with the timestamp of the first and another value,
// which Prometheus rejects with 400 ("duplicate sample for timestamp"),
// nor one older than it, as it would after the wall clock steps back.
func TestPushesWithinOneMillisecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := &tsdbReceiver{}
		pub, err := newPublisher(Config{URL: "http://127.0.0.1:9/api/v1/write", HTTPClient: &http.Client{Transport: rcv},
			Interval: time.Minute, Retry: telemetry.RetryPolicy{MaxAttempts: 1}, Logger: slog.New(slog.DiscardHandler)}, noJitter)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range 3 {
			if err := pub.PublishEventMetrics(ctx, finished()); err != nil {
				t.Fatal(err)
			}
			if err := pub.Flush(ctx); err != nil {
				t.Errorf("flush %d: got %v, want nil", i, err)
			}
		}
		if err := pub.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rcv.errors) > 0 {
			t.Errorf("receiver rejected pushes: %q", slices.Compact(rcv.errors))
		}
		if got := pub.Stats().Pushes; got != 3 {
			t.Errorf("got %d pushes, want 3", got)
		}
	})
}

func noJitter(time.Duration) time.Duration { return 0 }
