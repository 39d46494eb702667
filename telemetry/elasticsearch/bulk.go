package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// state is what became of one document in one call.
type state uint8

const (
	unsent    state = iota // no answer for it: a request failed, or ctx ended first
	indexed                // accepted in this call
	earlier                // accepted in an earlier call: not sent again
	transient              // refused for a passing reason: worth another attempt
	rejected               // refused for good: drop
	refused                // refused for good in an earlier call: not sent again, dropped
)

// outcome is the result of one document in one call.
type outcome struct {
	state  state
	kind   string // kind of error, such as "mapper_parsing_exception" or "http 401"
	reason string // the error's text
}

// bulkFilterPath keeps, of a bulk response, whether there were errors and
// each item's status and error: about 30 bytes per document instead of 200.
// Every item keeps its status, so the items stay aligned with the documents
// sent.
var bulkFilterPath = []string{"errors", "items.*.status", "items.*.error"}

// bulkResponse is a bulk response cut down by bulkFilterPath. Every action
// of our requests is "index".
type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []struct {
		Index bulkItem `json:"index"`
	} `json:"items"`
}

// bulkItem is the result of one action of a bulk request.
type bulkItem struct {
	Status int `json:"status"`
	Error  struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		CausedBy struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"caused_by"`
	} `json:"error"`
}

// index sends docs through bulk requests of at most Config.FlushBytes, one
// after the other, and returns nil, a *telemetry.DroppedError, or a
// transient error (a *telemetry.PartialError if documents of the batch are
// indexed) as PublishBatch documents.
func (p *Publisher) index(ctx context.Context, docs []document) error {
	out := make([]outcome, len(docs))
	p.recall(docs, out)

	bufp := p.getBuf()
	defer p.putBuf(bufp)
	buf := (*bufp)[:0]
	var (
		reqErr error         // the last request-level failure
		hint   time.Duration // the longest Retry-After
		idx    []int         // documents of the request being built
	)
	// send sends the items of idx, buf[:n], and keeps the rest of buf for
	// the next request. It reports whether to go on.
	var post func(body []byte, idx []int) bool
	post = func(body []byte, idx []int) bool {
		after, err := p.bulk(ctx, body, idx, out)
		hint = max(hint, after)
		if errors.Is(err, errTooLarge) {
			// Too large for the cluster (or a proxy): send each half
			// alone, down to single documents, which bulk rejects.
			half, n := len(idx)/2, 0
			for _, i := range idx[:half] {
				n += itemLen(&docs[i])
			}
			return post(body[:n], idx[:half]) && post(body[n:], idx[half:])
		}
		if err != nil {
			reqErr = err
			// Unless the request was refused for a reason of its own,
			// the cluster is unreachable or busy: the other documents
			// stay unsent, for the Recorder to retry.
			return telemetry.IsPermanent(err)
		}
		return true
	}
	send := func(n int) bool {
		ok := post(buf[:n], idx)
		buf, idx = buf[:copy(buf, buf[n:])], idx[:0]
		return ok
	}
	stopped := false
	for i := range docs {
		if s := out[i].state; s == earlier || s == refused {
			continue
		}
		if stopped = ctx.Err() != nil; stopped {
			break
		}
		before := len(buf)
		buf = appendItem(buf, &docs[i])
		// A document larger than FlushBytes goes alone.
		if len(idx) > 0 && len(buf) > p.cfg.FlushBytes {
			if stopped = !send(before); stopped {
				break
			}
		}
		idx = append(idx, i)
	}
	if !stopped && len(idx) > 0 {
		send(len(buf))
	}
	*bufp = buf
	return p.settle(ctx, docs, out, reqErr, hint)
}

// itemLen returns the length of the item appendItem appends for d.
func itemLen(d *document) int {
	return len(`{"index":{"_index":`) + len(d.index) + len(`,"_id":"`) + len(d.id) + len("\"}}\n") + len(d.body) + 1
}

// appendItem appends the action and source lines of d to b.
func appendItem(b []byte, d *document) []byte {
	b = append(b, `{"index":{"_index":`...)
	b = append(b, d.index...) // a JSON string already
	b = append(b, `,"_id":"`...)
	b = append(b, d.id...) // base64url: nothing to escape
	b = append(b, "\"}}\n"...)
	b = append(b, d.body...)
	return append(b, '\n')
}

// settle counts the outcomes of a call, remembers them if the call is to
// be retried, and returns its error.
func (p *Publisher) settle(ctx context.Context, docs []document, out []outcome, reqErr error, hint time.Duration) error {
	var (
		delivered, pending, dropped, fresh int
		kinds                              = map[string]*kindCount{}
		lastErr                            error // why the pending documents are
	)
	for i := range out {
		o := &out[i]
		switch o.state {
		case indexed:
			p.indexed.Add(1)
			delivered++
		case earlier:
			delivered++
		case rejected, refused:
			dropped++
			k := kinds[o.kind]
			if k == nil {
				k = &kindCount{kind: o.kind, reason: truncate(o.reason)}
				kinds[o.kind] = k
			}
			k.n++
			if o.state == rejected {
				k.fresh++
				fresh++
			}
		case transient:
			pending++
			lastErr = errors.New(o.kind + ": " + o.reason)
		default: // unsent
			pending++
			if lastErr == nil {
				switch {
				case reqErr != nil:
					lastErr = reqErr
				case ctx.Err() != nil:
					lastErr = ctx.Err()
				default:
					lastErr = errors.New("no result for the document in the bulk response")
				}
			}
		}
	}
	if fresh > 0 {
		p.noteRejected(ctx, kinds)
	}
	switch {
	case pending > 0:
		p.remember(docs, out, kinds)
		err := fmt.Errorf("elasticsearch: %d of %d document(s) not indexed: %w", pending, len(docs), lastErr)
		if dropped > 0 {
			err = fmt.Errorf("%w (and %d rejected for good: %s)", err, dropped, kindsText(kinds))
		}
		if delivered > 0 {
			// If the Recorder gives up on the batch, these count as
			// published, not dropped.
			err = &telemetry.PartialError{Delivered: delivered, Err: err}
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

// recall marks the documents that an earlier call, which failed in part,
// indexed or saw refused for good, and counts those it sends again.
func (p *Publisher) recall(docs []document, out []outcome) {
	p.resendMu.Lock()
	defer p.resendMu.Unlock()
	if len(p.resend) == 0 {
		return
	}
	for i := range docs {
		o, ok := p.resend[docs[i].id]
		if !ok {
			continue
		}
		delete(p.resend, docs[i].id)
		if o.state == earlier || o.state == refused {
			out[i] = o
		} else {
			p.retried.Add(1)
		}
	}
}

// remember notes the documents of a call that failed in part: those
// indexed (now or earlier) are not sent again when the same records come
// back, nor are those refused for good (now or earlier, with their kind of
// error in kinds), which are counted as dropped again; the others are
// counted as retried then.
func (p *Publisher) remember(docs []document, out []outcome, kinds map[string]*kindCount) {
	p.resendMu.Lock()
	defer p.resendMu.Unlock()
	if len(p.resend)+len(docs) > maxResend {
		clear(p.resend)
	}
	if len(docs) > maxResend {
		return
	}
	for i := range docs {
		var o outcome
		switch out[i].state {
		case indexed, earlier:
			o.state = earlier
		case rejected, refused:
			// The kind's reason, shared by the documents refused alike.
			k := kinds[out[i].kind]
			o = outcome{state: refused, kind: k.kind, reason: k.reason}
		}
		p.resend[docs[i].id] = o
	}
}

// kindCount counts the documents of a call rejected with one kind of error.
type kindCount struct {
	kind, reason string // reason: that of the first, truncated
	n            int    // documents rejected, in this call or an earlier one
	fresh        int    // of them, those rejected in this call
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

// noteRejected counts the documents rejected in this call by kind and
// logs the first rejection of each kind, once for the life of p.
func (p *Publisher) noteRejected(ctx context.Context, kinds map[string]*kindCount) {
	var first []*kindCount
	p.reasonMu.Lock()
	for _, k := range kinds {
		if k.fresh == 0 {
			continue // counted by the call that saw them
		}
		if _, seen := p.reasons[k.kind]; !seen {
			first = append(first, k)
		}
		p.reasons[k.kind] += uint64(k.fresh)
		p.rejected.Add(uint64(k.fresh))
	}
	p.reasonMu.Unlock()
	for _, k := range first {
		p.logger().LogAttrs(ctx, slog.LevelWarn,
			"elasticsearch: documents rejected and dropped; this kind of rejection is logged once, see Publisher.Stats for counts",
			slog.String("publisher", p.Name()), slog.String("error_type", k.kind),
			slog.String("reason", truncate(k.reason)), slog.Int("documents", k.n))
	}
}

// errTooLarge is the error of bulk for a request of several documents
// answered 413 Request Entity Too Large: the request is to be split.
var errTooLarge = errors.New("elasticsearch: bulk request: 413 Request Entity Too Large")

// bulk sends body, the items of docs[i] for i in idx, in one bulk request,
// and records each document's outcome in out[i]. It returns the server's
// Retry-After and the error of the request as a whole, if it failed
// (permanent if it is not worth another attempt), or errTooLarge, with no
// outcome recorded, if a request of several documents was answered 413.
func (p *Publisher) bulk(ctx context.Context, body []byte, idx []int, out []outcome) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := newRequest(ctx, http.MethodPost, "/_bulk",
		url.Values{"filter_path": {strings.Join(bulkFilterPath, ",")}}, body, "application/x-ndjson")
	if err != nil {
		return 0, telemetry.Permanent(fmt.Errorf("elasticsearch: bulk request: %w", err))
	}
	p.requests.Add(1)
	all := func(o outcome) {
		for _, i := range idx {
			out[i] = o
		}
	}
	res, err := p.client.Perform(req)
	if err != nil {
		err = requestError("bulk request", err)
		if telemetry.IsPermanent(err) {
			all(outcome{state: rejected, kind: "not elasticsearch", reason: err.Error()})
		} else {
			all(outcome{state: unsent})
		}
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		if res.StatusCode == http.StatusRequestEntityTooLarge && len(idx) > 1 {
			return 0, errTooLarge
		}
		err := statusError("bulk request", res.StatusCode, res.Header, raw)
		o := outcome{state: transient, kind: fmt.Sprintf("http %d", res.StatusCode), reason: errorSummary(raw)}
		if telemetry.IsPermanent(err) {
			o.state = rejected
		}
		all(o)
		return retry.ParseRetryAfter(res.Header.Get("Retry-After"), time.Now()), err
	}
	var r bulkResponse
	// Bounded: a reply larger than any reply to these documents is not
	// read into memory whole, but fails to decode.
	err = json.NewDecoder(io.LimitReader(res.Body, maxBulkReply(len(idx)))).Decode(&r)
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	switch {
	case err != nil:
		all(outcome{state: transient, kind: "invalid bulk response", reason: err.Error()})
	case len(r.Items) == len(idx):
		for n, i := range idx {
			out[i] = itemOutcome(&r.Items[n].Index)
		}
	case !r.Errors:
		all(outcome{state: indexed})
	default:
		all(outcome{state: transient, kind: "invalid bulk response",
			reason: fmt.Sprintf("%d items for %d documents", len(r.Items), len(idx))})
	}
	return 0, nil
}

// maxBulkReply returns how much of the reply to a bulk request of n
// documents is read: far more than the status and error of each (filtered
// by bulkFilterPath, a few hundred bytes even with an error).
func maxBulkReply(n int) int64 { return 64<<10 + int64(n)*(8<<10) }

// itemOutcome classifies the result of one item of a bulk response.
func itemOutcome(it *bulkItem) outcome {
	if it.Status >= 200 && it.Status < 300 {
		return outcome{state: indexed}
	}
	kind := it.Error.Type
	if kind == "" {
		kind = fmt.Sprintf("http %d", it.Status)
	}
	reason := it.Error.Reason
	if it.Error.CausedBy.Type != "" {
		reason += " (caused by " + it.Error.CausedBy.Type + ": " + it.Error.CausedBy.Reason + ")"
	}
	if it.Status == 0 || retry.RetryableStatus(it.Status) {
		return outcome{state: transient, kind: kind, reason: reason}
	}
	return outcome{state: rejected, kind: kind, reason: reason}
}
