package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A Publisher indexes telemetry records into Elasticsearch through the bulk
// API: event records into <prefix>-event-YYYY.MM.DD and network records
// into <prefix>-network-YYYY.MM.DD (the UTC date of the record's start).
//
// Attach it to a [telemetry.Recorder]: the Recorder hands it batches (see
// [telemetry.WithMaxBatchSize] and [telemetry.WithBatchTimeout]) from a
// goroutine of its own, so recording never waits for Elasticsearch, and
// retries a batch that failed, with its [telemetry.RetryPolicy]: a
// Publisher makes one attempt per call and has no retry policy of its own.
// A Publisher is safe for concurrent use. Create one with [NewPublisher];
// the zero Publisher is not usable.
//
// Printing a Publisher with any fmt verb, or logging it with slog, shows
// its hosts and index prefix only, never its credentials.
type Publisher struct {
	cfg    settings
	client *client
	name   string // template name

	tmplSem  chan struct{} // held while the template is being installed
	tmplDone atomic.Bool   // installed by this publisher

	closed   atomic.Bool
	inflight sync.WaitGroup
	closeMu  sync.RWMutex // held for reading by publish calls, for writing by Close

	requests, indexed, retried, rejected atomic.Uint64

	reasonMu sync.Mutex
	reasons  map[string]uint64 // documents rejected for good, by kind of error

	// resend remembers, by document id, what became of the documents of
	// calls that failed in part: earlier for those Elasticsearch indexed,
	// refused (with the kind of error) for those it refused for good,
	// unsent for the others. When the Recorder retries such a batch, only
	// the unsent ones are sent again. At most maxResend entries.
	resendMu sync.Mutex
	resend   map[string]outcome

	bufs sync.Pool // *[]byte holding the encoded documents of a call
}

// maxResend bounds Publisher.resend: 64 batches of the Recorder's default
// size. Beyond it, the memory is cleared, which costs only documents sent
// again (their deterministic ids make that harmless).
const maxResend = 64 * telemetry.DefaultMaxBatchSize

var (
	_ telemetry.Publisher      = (*Publisher)(nil)
	_ telemetry.BatchPublisher = (*Publisher)(nil)
	_ telemetry.Closer         = (*Publisher)(nil)
	_ telemetry.Namer          = (*Publisher)(nil)
)

// NewPublisher returns a new Publisher configured by cfg. It checks cfg and
// reports every problem found in one error (wrapping [ErrInsecure] if
// credentials would be sent over plain http to a host other than
// loopback), but it does not contact Elasticsearch: the index template is
// installed before the first bulk request (call [Publisher.InstallTemplate]
// to do it, and see any error, at start-up), so an unreachable cluster never
// makes the constructor fail or block.
func NewPublisher(cfg Config) (*Publisher, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	opts := []elastictransport.Option{
		elastictransport.WithURLs(s.urls...),
		elastictransport.WithTransport(s.transport),
		elastictransport.WithUserAgent(userAgent),
		// One attempt per request: retries, with backoff, are the Recorder's.
		elastictransport.WithDisableRetry(),
	}
	switch {
	case !s.APIKey.IsZero():
		opts = append(opts, elastictransport.WithAPIKey(s.APIKey.Reveal()))
	case s.Username != "":
		opts = append(opts, elastictransport.WithBasicAuth(s.Username, s.Password.Reveal()))
	}
	tp, err := elastictransport.NewClient(opts...)
	if err != nil {
		// Config.validate checked what NewClient checks, so this is not
		// expected; do not wrap err, which may quote a credential.
		return nil, errors.New("elasticsearch: cannot create the client from this Config")
	}
	compat, _ := strconv.ParseBool(os.Getenv(compatibilityEnv))
	return &Publisher{
		cfg:     s,
		client:  &client{tp: tp, compat: compat},
		name:    templateName(s.IndexPrefix),
		tmplSem: make(chan struct{}, 1),
		reasons: make(map[string]uint64),
		resend:  make(map[string]outcome),
	}, nil
}

// Name returns "elasticsearch", the name of the publisher in
// [telemetry.PublisherStats].
func (p *Publisher) Name() string { return "elasticsearch" }

// IndexPrefix returns the prefix of the indices p writes to.
func (p *Publisher) IndexPrefix() string { return p.cfg.IndexPrefix }

// LogValue shows the kind of publisher, its hosts (none with a Cloud ID)
// and its index prefix, never its credentials.
func (p *Publisher) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("publisher", p.Name()),
		slog.Any("hosts", p.cfg.hosts),
		slog.Bool("cloud_id", !p.cfg.CloudID.IsZero()),
		slog.String("index_prefix", p.cfg.IndexPrefix),
	)
}

// String describes p by its hosts and index prefix, never its credentials.
func (p *Publisher) String() string {
	hosts := strings.Join(p.cfg.hosts, ",")
	if !p.cfg.CloudID.IsZero() {
		hosts = "(Cloud ID)"
	}
	return "elasticsearch.Publisher{hosts: " + hosts + ", index_prefix: " + p.cfg.IndexPrefix + "}"
}

// Format writes [Publisher.String] whatever the verb, so that %v, %+v, %#v,
// %x or any other verb never shows the credentials p holds.
func (p *Publisher) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

func (p *Publisher) logger() *slog.Logger {
	if p.cfg.Logger != nil {
		return p.cfg.Logger
	}
	return slog.Default()
}

// PublishEventMetrics indexes one event record, with a bulk request of its
// own. A Recorder uses [Publisher.PublishBatch] instead; this method is for
// direct use. Errors are as for PublishBatch.
func (p *Publisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	b := telemetry.Batch{Events: []telemetry.EventMetrics{m}}
	return p.PublishBatch(ctx, &b)
}

// PublishNetworkMetrics indexes one network record, as PublishEventMetrics
// does.
func (p *Publisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	b := telemetry.Batch{Network: []telemetry.NetworkMetrics{m}}
	return p.PublishBatch(ctx, &b)
}

// PublishBatch indexes every record of b through the bulk API, in as few
// requests as Config.FlushBytes allows, one request at a time, after
// installing the index template if that was not done yet. A request
// answered 413 Request Entity Too Large is sent again in halves, down to
// single documents. It keeps no
// reference to b. It makes one attempt: it never retries by itself.
//
// If documents were refused for a passing reason (an item or the whole
// request answered 408, 429 or 5xx, the request not getting through, ctx
// ending), it returns a transient error, with the server's Retry-After if
// any ([telemetry.RetryAfter]), for the Recorder to retry the batch. If
// other documents of the batch are indexed, by this call or an earlier one
// with the same records, the error is a [*telemetry.PartialError] with
// their count: should the Recorder give up on the batch, they count as
// published and only the others as dropped. When the same records come
// again, the documents this Publisher already indexed, or saw rejected for
// good, are not sent again (and a document sent twice overwrites itself,
// see [DocumentID]). Documents rejected for good, such as by a mapping
// error, or by a bulk request refused as a whole for a lasting reason (400,
// 401, 403...), are not worth another attempt: if every other document was
// indexed, it returns a [*telemetry.DroppedError] with their count (those
// rejected in earlier calls with the same records included) and the
// reasons, and logs the first rejection of each kind of error. If the index
// template cannot be installed, it returns that error, marked
// [telemetry.Permanent] unless the status was 408, 429 or 5xx or the
// cluster could not be reached.
//
// It honours ctx, and returns an error wrapping [telemetry.ErrClosed] after
// [Publisher.Close].
func (p *Publisher) PublishBatch(ctx context.Context, b *telemetry.Batch) error {
	if b == nil || b.Len() == 0 {
		return nil
	}
	p.closeMu.RLock()
	if p.closed.Load() {
		p.closeMu.RUnlock()
		return telemetry.Permanent(fmt.Errorf("elasticsearch: publish: %w", telemetry.ErrClosed))
	}
	p.inflight.Add(1)
	p.closeMu.RUnlock()
	defer p.inflight.Done()

	if err := p.ensureTemplate(ctx); err != nil {
		return err
	}

	bufp := p.getBuf()
	defer p.putBuf(bufp)
	docs := make([]document, 0, b.Len())
	*bufp, docs = encodeBatch((*bufp)[:0], docs, p.cfg.IndexPrefix, b)
	return p.index(ctx, docs)
}

// document is one encoded record of a call.
type document struct {
	index string // the JSON string of the index name
	id    string // DocumentID of the record
	body  []byte // the source
}

// encodeBatch appends the documents of b to buf and returns them.
func encodeBatch(buf []byte, docs []document, prefix string, b *telemetry.Batch) ([]byte, []document) {
	names := indexNamer{prefix: prefix}
	type span struct{ start, end int }
	spans := make([]span, 0, b.Len())
	var js []byte
	for i := range b.Events {
		m := &b.Events[i]
		js, _ = m.MarshalJSON() // never fails
		start := len(buf)
		buf = appendDocument(buf, m.StartTime, js)
		spans = append(spans, span{start, len(buf)})
		docs = append(docs, document{index: names.quoted(0, eventIndexPart, m.StartTime), id: DocumentID(*m)})
	}
	for i := range b.Network {
		m := &b.Network[i]
		js, _ = m.MarshalJSON()
		start := len(buf)
		buf = appendDocument(buf, m.StartTime, js)
		spans = append(spans, span{start, len(buf)})
		docs = append(docs, document{index: names.quoted(1, networkIndexPart, m.StartTime), id: DocumentID(*m)})
	}
	// buf may have moved while growing: slice it only now.
	for i, s := range spans {
		docs[i].body = buf[s.start:s.end:s.end]
	}
	return buf, docs
}

const maxPooledBuf = 4 << 20

func (p *Publisher) getBuf() *[]byte {
	if bp, ok := p.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (p *Publisher) putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	*bp = (*bp)[:0]
	p.bufs.Put(bp)
}

// Stats are counters of a Publisher since it was created. They count
// attempts: a document in a batch that the Recorder sends again (after the
// call failed for other documents) is counted again. The Recorder's
// [telemetry.PublisherStats] count each record once.
type Stats struct {
	// BulkRequests is the number of bulk requests sent, failed ones included.
	BulkRequests uint64 `json:"bulk_requests"`
	// Indexed is the number of documents Elasticsearch accepted.
	Indexed uint64 `json:"indexed"`
	// Retried is the number of documents sent again, in a later call with
	// the same records, after a passing failure (408, 429, 5xx, request not
	// through). Documents of such a call that were indexed are not sent
	// again, and not counted.
	Retried uint64 `json:"retried"`
	// Rejected is the number of documents rejected for good, such as by a
	// mapping error, and so dropped; each is counted once, as it is not
	// sent again when its batch is retried.
	Rejected uint64 `json:"rejected"`
	// RejectedByReason splits Rejected by kind of error, such as
	// "mapper_parsing_exception" or "http 401".
	RejectedByReason map[string]uint64 `json:"rejected_by_reason,omitempty"`
}

// Stats returns the counters of p.
func (p *Publisher) Stats() Stats {
	s := Stats{
		BulkRequests: p.requests.Load(),
		Indexed:      p.indexed.Load(),
		Retried:      p.retried.Load(),
		Rejected:     p.rejected.Load(),
	}
	p.reasonMu.Lock()
	if len(p.reasons) > 0 {
		s.RejectedByReason = make(map[string]uint64, len(p.reasons))
		for k, v := range p.reasons {
			s.RejectedByReason[k] = v
		}
	}
	p.reasonMu.Unlock()
	return s
}

// Close marks p closed, waits for the publish calls in progress to end
// (or for ctx), and closes the idle connections of the transport p made.
// A Publisher keeps no records of its own between calls: what a Recorder
// buffers is delivered by [telemetry.Recorder.Close] before it calls Close.
// After Close, publish calls return an error wrapping [telemetry.ErrClosed];
// a second Close returns one too. It returns ctx.Err() if ctx ends first.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeMu.Lock()
	first := p.closed.CompareAndSwap(false, true)
	p.closeMu.Unlock()
	if !first {
		return fmt.Errorf("elasticsearch: close: %w", telemetry.ErrClosed)
	}
	done := make(chan struct{})
	go func() {
		p.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.cfg.Transport == nil {
		if t, ok := p.cfg.transport.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}
	return nil
}

// InstallTemplate installs (or replaces) the index template of p:
// PUT _index_template/<prefix>, for the indices <prefix>-*, with explicit
// mappings of every document field. It is idempotent. A Publisher calls it
// itself before its first bulk request unless Config.SkipTemplate is set;
// call it at start-up to learn at once whether it works.
//
// It makes one attempt, limited by ctx and Config.Timeout. A refusal for a
// lasting reason (4xx other than 408 and 429) is an error marked
// [telemetry.Permanent].
func (p *Publisher) InstallTemplate(ctx context.Context) error {
	select {
	case p.tmplSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("elasticsearch: install index template %q: %w", p.name, ctx.Err())
	}
	defer func() { <-p.tmplSem }()
	return p.installTemplate(ctx)
}

// ensureTemplate installs the template once, unless Config.SkipTemplate.
func (p *Publisher) ensureTemplate(ctx context.Context) error {
	if p.cfg.SkipTemplate || p.tmplDone.Load() {
		return nil
	}
	select {
	case p.tmplSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("elasticsearch: install index template %q: %w", p.name, ctx.Err())
	}
	defer func() { <-p.tmplSem }()
	if p.tmplDone.Load() {
		return nil
	}
	return p.installTemplate(ctx)
}

func (p *Publisher) installTemplate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := newRequest(ctx, http.MethodPut, "/_index_template/"+url.PathEscape(p.name), nil,
		templateBody(p.cfg.IndexPrefix), "application/json")
	if err != nil {
		return telemetry.Permanent(fmt.Errorf("elasticsearch: install index template %q: %w", p.name, err))
	}
	res, err := p.client.Perform(req)
	if err != nil {
		return requestError(fmt.Sprintf("install index template %q", p.name), err)
	}
	defer res.Body.Close()
	if res.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return statusError(fmt.Sprintf("install index template %q", p.name), res.StatusCode, res.Header, body)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	p.tmplDone.Store(true)
	p.logger().LogAttrs(ctx, slog.LevelInfo, "elasticsearch: index template installed",
		slog.String("template", p.name), slog.String("index_patterns", p.cfg.IndexPrefix+"-*"),
		slog.Int("version", TemplateVersion))
	return nil
}

// requestError wraps the error of a request that got no response: it is
// worth retrying, except when the server is not Elasticsearch.
func requestError(what string, err error) error {
	e := fmt.Errorf("elasticsearch: %s: %w", what, err)
	if errors.Is(err, errNotElasticsearch) {
		return telemetry.Permanent(e)
	}
	return e
}

// statusError returns the error of a request refused with code: transient
// (with the server's Retry-After) for 408, 429 and 5xx, else permanent.
func statusError(what string, code int, h http.Header, body []byte) error {
	err := fmt.Errorf("elasticsearch: %s: %d %s: %s", what, code, http.StatusText(code), errorSummary(body))
	if retry.RetryableStatus(code) {
		return telemetry.RetryAfter(err, retry.ParseRetryAfter(h.Get("Retry-After"), time.Now()))
	}
	return telemetry.Permanent(err)
}

// errorSummary returns "type: reason" of an Elasticsearch error body, or
// the start of the body.
func errorSummary(body []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var obj struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(e.Error, &obj) == nil && obj.Type != "" {
			return truncate(obj.Type + ": " + obj.Reason)
		}
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			return truncate(s)
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "(empty body)"
	}
	return truncate(string(bytes.TrimSpace(body)))
}

// truncate returns a server's text as errors and log lines keep it: on
// one line, escaped, and cut to safetext.MaxBody bytes with its length
// ([safetext.Body]), as every publisher keeps a receiver's answer.
func truncate(s string) string { return safetext.Body(s) }
