package elasticsearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// newServer starts a stand-in node that fails the test if the publisher
// ever sends it a malformed request.
func newServer(t testing.TB, opts esfake.Options) *esfake.Server {
	t.Helper()
	srv, err := esfake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := srv.Violations(); len(v) > 0 {
			t.Errorf("protocol violations seen by the stand-in: %q", v)
		}
		srv.Close()
	})
	return srv
}

// logBuffer collects log output for assertions; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger returns a JSON logger writing to l.
func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// count returns how many log lines contain s.
func (l *logBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// newPublisher returns a publisher to srv, closed at the end of the test.
func newPublisher(t testing.TB, srv *esfake.Server, cfg elasticsearch.Config) *elasticsearch.Publisher {
	t.Helper()
	if cfg.Hosts == nil && cfg.CloudID.IsZero() {
		cfg.Hosts = []string{srv.URL}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := elasticsearch.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// at is a fixed time: 23:59:58.123456789 UTC on 2026-03-01, which is
// already 2026-03-02 in the +02:00 zone it is expressed in.
var at = time.Date(2026, 3, 2, 1, 59, 58, 123456789, time.FixedZone("EET", 2*60*60))

func eventRecord(task string, start time.Time, status telemetry.Status, errText string) telemetry.EventMetrics {
	return telemetry.EventMetrics{
		EventName: "load_orders", TaskID: task, StartTime: start, EndTime: start.Add(1500 * time.Millisecond),
		Status: status, Error: errText, RetryCount: 2, ProcessID: 4242, PipelineID: "run-7",
	}
}

func networkRecord(task string, start time.Time) telemetry.NetworkMetrics {
	return telemetry.NetworkMetrics{
		TaskID: task, Operation: "remote_call", Host: "10.0.0.7", Port: 8080,
		StartTime: start, EndTime: start.Add(250 * time.Millisecond), Status: telemetry.StatusCompleted,
		BytesSent: 512, BytesReceived: 2048,
	}
}

// wantDoc returns the document expected for a record: FormatMetrics of it,
// through JSON, plus @timestamp.
func wantDoc(t testing.TB, record any, start time.Time) map[string]any {
	t.Helper()
	m, err := telemetry.FormatMetrics(record)
	if err != nil {
		t.Fatal(err)
	}
	m["@timestamp"] = start.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
	return roundTrip(t, m)
}

// roundTrip encodes v to JSON and decodes it with json.Number, as the
// stand-in decodes sources.
func roundTrip(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newBubblePublisher returns a publisher to srv that reaches it through
// srv's in-memory RoundTripper, for tests in a synctest bubble; srv must
// have been created outside the bubble.
func newBubblePublisher(t testing.TB, srv *esfake.Server, cfg elasticsearch.Config) *elasticsearch.Publisher {
	t.Helper()
	cfg.Transport = srv.RoundTripper()
	return newPublisher(t, srv, cfg)
}

// newBubbleRecorder returns a Recorder delivering to pub with the retry
// policy p, which the test must close.
func newBubbleRecorder(t testing.TB, pub telemetry.Publisher, p telemetry.RetryPolicy) *telemetry.Recorder {
	t.Helper()
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithRetry(p),
		telemetry.WithBatchTimeout(10*time.Millisecond), telemetry.WithLogger(slogDiscard()))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// recordEvents records n completed event runs, task ids t0, t1...
func recordEvents(t testing.TB, rec *telemetry.Recorder, n int) {
	t.Helper()
	for i := range n {
		task := fmt.Sprint("t", i)
		if err := rec.StartEvent("transform", task); err != nil {
			t.Fatal(err)
		}
		if err := rec.EndEvent(task, nil); err != nil {
			t.Fatal(err)
		}
	}
}
