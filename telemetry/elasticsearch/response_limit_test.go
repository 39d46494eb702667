package elasticsearch_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// endlessReply is a bulk reply that starts as valid JSON and goes on with
// one string of n bytes; it counts the bytes read from it.
type endlessReply struct {
	head string
	left int
	read *atomic.Int64
}

func (r *endlessReply) Read(p []byte) (int, error) {
	n := 0
	if r.head != "" {
		n = copy(p, r.head)
		r.head = r.head[n:]
	}
	for n < len(p) && r.left > 0 {
		p[n] = 'a'
		n++
		r.left--
	}
	r.read.Add(int64(n))
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *endlessReply) Close() error { return nil }

// hugeReplyTransport answers every request with 200, the product header
// and an endless bulk reply of 256 MiB.
type hugeReplyTransport struct{ read atomic.Int64 }

func (tr *hugeReplyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: req,
		Header: http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {"Elasticsearch"}},
		Body:   &endlessReply{head: `{"errors":true,"items":[{"index":{"status":400,"error":{"type":"x","reason":"`, left: 256 << 20, read: &tr.read},
	}, nil
}

// TestHugeBulkReplyBounded checks that a bulk reply far larger than any
// reply to the documents sent is not read into memory whole: the call
// fails with a transient error after reading a bounded part of it.
func TestHugeBulkReplyBounded(t *testing.T) {
	tr := &hugeReplyTransport{}
	p, err := elasticsearch.NewPublisher(elasticsearch.Config{Transport: tr, SkipTemplate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	now := time.Now()
	err = p.PublishEventMetrics(context.Background(), telemetry.EventMetrics{EventName: "e", TaskID: "t",
		StartTime: now, EndTime: now, Status: telemetry.StatusCompleted})
	if err == nil || telemetry.IsPermanent(err) || !strings.Contains(err.Error(), "invalid bulk response") {
		t.Errorf("got error %v, want a transient invalid bulk response", err)
	}
	if got := tr.read.Load(); got > 8<<20 {
		t.Errorf("got %d bytes of the reply read, want at most 8 MiB for one document", got)
	}
}
