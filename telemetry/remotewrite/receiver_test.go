package remotewrite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// tsdbReceiver is an in-memory remote-write receiver that appends samples
// as Prometheus's TSDB does: per series, a sample older than the last one
// is out of order, and one at the same timestamp with another value is a
// duplicate; either makes the whole request fail with 400.
//
// It also checks that every cumulative series (_total, _bucket, _sum,
// _count) never decreases, and, if failEvery > 0, answers every
// failEvery-th request with 503 after ingesting it, as a receiver whose
// answer is lost after the write: the retry sends the same samples again.
type tsdbReceiver struct {
	mu        sync.Mutex
	last      map[string]prompb.Sample
	errors    []string
	failEvery int
	requests  int
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
			case ok && s.Value < prev.Value && isCumulative(ts.Labels):
				f.errors = append(f.errors, fmt.Sprintf("%s decreased from %v to %v", key.String(), prev.Value, s.Value))
				f.last[key.String()] = s
			default:
				f.last[key.String()] = s
			}
		}
	}
	if msg != "" {
		f.errors = append(f.errors, msg)
	}
	f.requests++
	if f.failEvery > 0 && f.requests%f.failEvery == 0 && status/100 == 2 {
		status, msg = http.StatusServiceUnavailable, "answer lost"
	}
	f.mu.Unlock()
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(msg)), Request: req}, nil
}

// isCumulative reports whether the series of labels is a counter or a part
// of a histogram.
func isCumulative(labels []prompb.Label) bool {
	for _, l := range labels {
		if l.Name == "__name__" {
			return strings.HasSuffix(l.Value, "_total") || strings.HasSuffix(l.Value, "_bucket") ||
				strings.HasSuffix(l.Value, "_sum") || strings.HasSuffix(l.Value, "_count")
		}
	}
	return false
}

// value returns the last value of the series whose labels (other than
// job and instance) are name and then the pairs of kv.
func (f *tsdbReceiver) value(name string, kv ...string) (float64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, s := range f.last {
		if !strings.Contains(key, fmt.Sprintf("__name__=%q,", name)) {
			continue
		}
		match := strings.Count(key, "=") == 3+len(kv)/2
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && strings.Contains(key, fmt.Sprintf("%s=%q,", kv[i], kv[i+1]))
		}
		if match {
			return s.Value, true
		}
	}
	return 0, false
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

// TestValuesExactConcurrentSafe records from many goroutines while pushes
// run (every interval, and Flushes), a receiver losing every third answer
// after the write: what the receiver holds at the end is exact (counts,
// +Inf buckets equal to the counts, sums, bytes, retries), and no
// cumulative series ever went down between pushes. Run it with -race.
func TestValuesExactConcurrentSafe(t *testing.T) {
	rcv := &tsdbReceiver{failEvery: 3}
	pub, err := newPublisher(Config{URL: "http://127.0.0.1:9/api/v1/write", HTTPClient: &http.Client{Transport: rcv},
		Interval: MinInterval, Retry: telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
		Logger: slog.New(slog.DiscardHandler)}, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const goroutines, per = 8, 400
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				status := telemetry.StatusCompleted
				if i%4 == 0 {
					status = telemetry.StatusFailed
				}
				// Durations in binary fractions of a second: their sums are exact.
				pub.PublishEventMetrics(ctx, finishedEvent("e"+strconv.Itoa(g%2), status, 250*time.Millisecond, 2))
				pub.PublishNetworkMetrics(ctx, finishedOp("op", 500*time.Millisecond, 3, 5))
				if i%50 == 0 {
					pub.Flush(ctx)
				}
			}
		})
	}
	wg.Wait()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	if len(rcv.errors) > 0 {
		t.Errorf("receiver: %q", slices.Compact(rcv.errors))
	}
	rcv.mu.Unlock()
	const runs = goroutines / 2 * per // per event name
	want := []struct {
		name string
		kv   []string
		v    float64
	}{
		{"event_duration_seconds_count", []string{"event_name", "e0", "status", "completed"}, runs * 3 / 4},
		{"event_duration_seconds_bucket", []string{"event_name", "e0", "le", "+Inf", "status", "completed"}, runs * 3 / 4},
		{"event_duration_seconds_bucket", []string{"event_name", "e0", "le", "0.25", "status", "completed"}, runs * 3 / 4},
		{"event_duration_seconds_bucket", []string{"event_name", "e0", "le", "0.1", "status", "completed"}, 0},
		{"event_duration_seconds_sum", []string{"event_name", "e1", "status", "completed"}, runs * 3 / 4 * 0.25},
		{"event_duration_seconds_count", []string{"event_name", "e1", "status", "failed"}, runs / 4},
		{"event_duration_seconds_bucket", []string{"event_name", "e1", "le", "+Inf", "status", "failed"}, runs / 4},
		{"event_retries_total", []string{"event_name", "e0"}, 2 * runs},
		{"network_latency_seconds_count", []string{"operation", "op"}, goroutines * per},
		{"network_latency_seconds_sum", []string{"operation", "op"}, goroutines * per * 0.5},
		{"network_bytes_total", []string{"direction", "sent", "operation", "op"}, 3 * goroutines * per},
		{"network_bytes_total", []string{"direction", "received", "operation", "op"}, 5 * goroutines * per},
	}
	for _, w := range want {
		if got, ok := rcv.value(w.name, w.kv...); !ok || got != w.v {
			t.Errorf("%s%v: got %v (found %v), want %v", w.name, w.kv, got, ok, w.v)
		}
	}
}

// TestHostileNamesBounded floods the Publisher with distinct event names
// and operations that are long, invalid UTF-8 or full of control
// characters: every label value pushed is valid UTF-8 of at most 128
// bytes, and there are at most MaxLabelValues of each plus the overflow
// series, which holds the rest of the records, none lost.
func TestHostileNamesBounded(t *testing.T) {
	rcv := &tsdbReceiver{}
	const limit, names = 20, 300
	pub, err := newPublisher(Config{URL: "http://127.0.0.1:9/api/v1/write", HTTPClient: &http.Client{Transport: rcv},
		Interval: time.Hour, MaxLabelValues: limit, Logger: slog.New(slog.DiscardHandler)}, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hostile := func(i int) string {
		switch i % 3 {
		case 0:
			return strings.Repeat("é", 200) + strconv.Itoa(i)
		case 1:
			return "bad\xff\xfe" + strconv.Itoa(i)
		default:
			return "ctl\x00\n\x1b[31m" + strconv.Itoa(i)
		}
	}
	for i := range names {
		if err := pub.PublishEventMetrics(ctx, finishedEvent(hostile(i), telemetry.StatusCompleted, time.Second, 1)); err != nil {
			t.Fatal(err)
		}
		if err := pub.PublishNetworkMetrics(ctx, finishedOp(hostile(i), time.Second, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	values := map[string]map[string]bool{"event_name": {}, "operation": {}}
	var retries, sent float64
	for key, s := range rcv.last {
		for _, l := range []string{"event_name", "operation"} {
			i := strings.Index(key, l+"=")
			if i < 0 {
				continue
			}
			v, err := strconv.QuotedPrefix(key[i+len(l)+1:])
			if err != nil {
				t.Fatal(err)
			}
			v, _ = strconv.Unquote(v)
			if !utf8.ValidString(v) || len(v) > 128 {
				t.Errorf("%s value %q: not valid UTF-8 of at most 128 bytes", l, v)
			}
			values[l][v] = true
		}
		switch {
		case strings.Contains(key, `__name__="event_retries_total"`):
			retries += s.Value
		case strings.Contains(key, `__name__="network_bytes_total"`) && strings.Contains(key, `direction="sent"`):
			sent += s.Value
		}
	}
	for l, vs := range values {
		if len(vs) != limit+1 || !vs[OverflowLabelValue] {
			t.Errorf("got %d %s values (overflow among them: %v), want %d and the overflow", len(vs), l, vs[OverflowLabelValue], limit+1)
		}
	}
	if retries != names || sent != names {
		t.Errorf("got %v retries and %v bytes sent, want %d each", retries, sent, names)
	}
}
