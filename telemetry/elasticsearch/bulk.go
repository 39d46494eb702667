package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// state is what became of one document in one bulk attempt.
type state uint8

const (
	unsent    state = iota // no answer for it: the request failed, or ctx ended first
	indexed                // accepted
	transient              // refused for a passing reason: send again
	rejected               // refused for good: drop
)

// outcome is the result of one document in one bulk attempt.
type outcome struct {
	state  state
	kind   string // kind of error, such as "mapper_parsing_exception" or "http 401"
	reason string // the error's text
}

// bulkFilterPath keeps, of a bulk response, whether there were errors and
// each item's status and error. Every item keeps its status, so the items
// stay aligned with the documents sent.
var bulkFilterPath = []string{"errors", "items.*.status", "items.*.error"}

// ndjsonHeader is sent with every bulk request: the body is NDJSON.
var ndjsonHeader = http.Header{"Content-Type": {"application/x-ndjson"}}

// index sends docs through bulk requests, sending again those refused for a
// passing reason, and returns nil, a *telemetry.DroppedError, or a
// transient or permanent error as PublishBatch documents.
func (p *Publisher) index(ctx context.Context, docs []document) error {
	out := make([]outcome, len(docs))
	pending := make([]int, len(docs))
	for i := range pending {
		pending[i] = i
	}
	var (
		dropped  int
		kinds    = map[string]*kindCount{}
		lastErr  error         // why the documents still pending are
		hint     time.Duration // the server's Retry-After
		attempts int
	)
	for attempt := 0; ; attempt++ {
		attempts++
		if attempt > 0 {
			p.retried.Add(uint64(len(pending)))
		}
		clear(out)
		info := p.bulk(ctx, docs, pending, out)
		hint = info.retryAfter
		next := pending[:0]
		for _, i := range pending {
			o := &out[i]
			switch o.state {
			case indexed:
				p.indexed.Add(1)
			case rejected:
				dropped++
				k := kinds[o.kind]
				if k == nil {
					k = &kindCount{kind: o.kind, reason: o.reason}
					kinds[o.kind] = k
				}
				k.n++
			default:
				next = append(next, i)
				switch {
				case o.state == transient:
					lastErr = errors.New(o.kind + ": " + o.reason)
				case info.err != nil:
					lastErr = info.err
				case ctx.Err() != nil:
					lastErr = ctx.Err()
				default:
					lastErr = errors.New("no result for the document in the bulk response")
				}
			}
		}
		pending = next
		if len(pending) == 0 || attempt >= p.cfg.MaxRetries || ctx.Err() != nil {
			break
		}
		if !wait(ctx, p.backoff(attempt+1, hint)) {
			break
		}
	}
	if dropped > 0 {
		p.noteRejected(ctx, kinds)
	}
	switch {
	case len(pending) > 0:
		err := fmt.Errorf("elasticsearch: %d of %d document(s) not indexed after %d attempt(s): %w",
			len(pending), len(docs), attempts, lastErr)
		if dropped > 0 {
			err = fmt.Errorf("%w (and %d rejected for good: %s)", err, dropped, kindsText(kinds))
		}
		return telemetry.RetryAfter(err, hint)
	case dropped > 0:
		return &telemetry.DroppedError{
			Dropped: dropped,
			Err:     fmt.Errorf("elasticsearch: %d of %d document(s) rejected: %s", dropped, len(docs), kindsText(kinds)),
		}
	}
	return nil
}

// kindCount counts the documents of a call rejected with one kind of error.
type kindCount struct {
	kind, reason string
	n            int
}

// kindsText describes the kinds of rejection of a call, once each.
func kindsText(kinds map[string]*kindCount) string {
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d x %s (%s)", k.n, k.kind, truncate(k.reason)))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// noteRejected counts rejected documents by kind and logs the first
// rejection of each kind, once for the life of p.
func (p *Publisher) noteRejected(ctx context.Context, kinds map[string]*kindCount) {
	var first []*kindCount
	p.reasonMu.Lock()
	for _, k := range kinds {
		if _, seen := p.reasons[k.kind]; !seen {
			first = append(first, k)
		}
		p.reasons[k.kind] += uint64(k.n)
		p.rejected.Add(uint64(k.n))
	}
	p.reasonMu.Unlock()
	for _, k := range first {
		p.logger().LogAttrs(ctx, slog.LevelWarn,
			"elasticsearch: documents rejected and dropped; this kind of rejection is logged once, see Publisher.Stats for counts",
			slog.String("publisher", p.Name()), slog.String("error_type", k.kind),
			slog.String("reason", truncate(k.reason)), slog.Int("documents", k.n))
	}
}

// backoff returns the wait before retry number attempt (1 for the first):
// the server's Retry-After hint if there is one, else exponential backoff
// with jitter; both capped at MaxRetryBackoff.
func (p *Publisher) backoff(attempt int, hint time.Duration) time.Duration {
	if hint > 0 {
		return min(hint, p.cfg.MaxRetryBackoff)
	}
	return retry.Backoff(p.cfg.RetryBackoff, p.cfg.MaxRetryBackoff, attempt)
}

// wait waits d, or until ctx ends; it reports whether it waited all of d.
// It does not start a wait that would outlast ctx's deadline.
func wait(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	return retry.Sleep(ctx, d)
}

// bulkInfo is what one bulk attempt learnt beyond per-document outcomes.
type bulkInfo struct {
	err        error         // the request-level failure, if any
	retryAfter time.Duration // the longest Retry-After seen
}

// bulk sends the documents docs[i] for i in idx through one BulkIndexer,
// closed before it returns, and records each document's outcome in out[i].
func (p *Publisher) bulk(ctx context.Context, docs []document, idx []int, out []outcome) bulkInfo {
	tr := &callTransport{client: p.client, ctx: ctx, timeout: p.cfg.Timeout}
	size := 0
	for _, i := range idx {
		size += len(docs[i].body) + len(docs[i].index) + len(docs[i].id) + 48
	}
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:              tr,
		NumWorkers:          1, // one request at a time, in order
		FlushBytes:          min(size+1, p.cfg.FlushBytes),
		FlushInterval:       time.Hour, // Close flushes
		QueueSizeMultiplier: 64,
		Header:              ndjsonHeader,
		// Only what the item callbacks read: the response shrinks from ~200
		// to ~30 bytes per document (as Logstash's output asks for).
		FilterPath: bulkFilterPath,
	})
	if err != nil { // not returned by this version; keep the contract anyway
		return bulkInfo{err: fmt.Errorf("elasticsearch: bulk indexer: %w", err)}
	}
	for _, i := range idx {
		d := &docs[i]
		o := &out[i]
		item := esutil.BulkIndexerItem{
			Index:      d.index,
			Action:     "index",
			DocumentID: d.id,
			Body:       bytes.NewReader(d.body),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				o.state = indexed
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				*o = tr.classify(res, err)
			},
		}
		if bi.Add(ctx, item) != nil {
			break // ctx ended: the rest stays unsent
		}
	}
	// Close flushes and waits for the callbacks. Requests use tr.ctx, so
	// this returns soon after ctx ends.
	_ = bi.Close(context.WithoutCancel(ctx))
	p.requests.Add(uint64(bi.Stats().NumRequests))
	return tr.info()
}

// callTransport sends the bulk requests of one call: it gives them the
// call's context (the BulkIndexer would use a background one) and
// Config.Timeout, and remembers the last status and Retry-After, which the
// BulkIndexer does not pass to item callbacks.
type callTransport struct {
	client  *es.Client
	ctx     context.Context
	timeout time.Duration

	mu         sync.Mutex
	status     int   // of the last response, 0 if none
	err        error // of the last request-level failure
	retryAfter time.Duration
}

// Perform sends req with the call's context.
func (t *callTransport) Perform(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	res, err := t.client.Perform(req.WithContext(ctx))
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		cancel()
		t.status = 0
		t.err = requestError("bulk request", err)
		return nil, err
	}
	t.status = res.StatusCode
	if res.StatusCode >= 300 {
		t.retryAfter = max(t.retryAfter, retry.ParseRetryAfter(res.Header.Get("Retry-After"), time.Now()))
	}
	res.Body = &cancelBody{ReadCloser: res.Body, cancel: cancel}
	return res, nil
}

func (t *callTransport) info() bulkInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bulkInfo{err: t.err, retryAfter: t.retryAfter}
}

// classify returns the outcome of a document the BulkIndexer reported as
// failed: with err set, the whole request failed; otherwise res is the
// document's item in the bulk response.
func (t *callTransport) classify(res esutil.BulkIndexerResponseItem, err error) outcome {
	if err != nil {
		t.mu.Lock()
		status := t.status
		t.mu.Unlock()
		msg := strings.TrimPrefix(err.Error(), "flush: ")
		if status >= 300 {
			// The BulkIndexer's message is "[<status>] <body>": keep the gist.
			if _, body, ok := strings.Cut(msg, "] "); ok {
				msg = errorSummary([]byte(body))
			}
		}
		switch {
		case status == 0 && strings.Contains(msg, productCheckMessage):
			return outcome{state: rejected, kind: "not elasticsearch", reason: msg}
		case status == 0 || retry.RetryableStatus(status):
			return outcome{state: transient, kind: requestKind(status), reason: msg}
		case status < 300: // the response could not be decoded
			return outcome{state: transient, kind: "invalid bulk response", reason: msg}
		default:
			return outcome{state: rejected, kind: requestKind(status), reason: msg}
		}
	}
	kind := res.Error.Type
	if kind == "" {
		kind = fmt.Sprintf("http %d", res.Status)
	}
	reason := res.Error.Reason
	if res.Error.Cause.Type != "" {
		reason += " (caused by " + res.Error.Cause.Type + ": " + res.Error.Cause.Reason + ")"
	}
	if retry.RetryableStatus(res.Status) {
		return outcome{state: transient, kind: kind, reason: reason}
	}
	return outcome{state: rejected, kind: kind, reason: reason}
}

func requestKind(status int) string {
	if status == 0 {
		return "request failed"
	}
	return fmt.Sprintf("http %d", status)
}

// cancelBody cancels the request's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
