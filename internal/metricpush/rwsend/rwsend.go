// Package rwsend is the Prometheus remote write 1.0 [metricpush.Sender]:
// it encodes a snapshot as a prompb.WriteRequest (classic histograms as
// _bucket{le}, _sum and _count series, counters and gauges, every series
// with the constant labels, such as job and instance), compresses it with
// snappy and posts it. It is not part of the module's API.
package rwsend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Config configures a [Sender]. Every field must be set but Headers and
// Labels.
type Config struct {
	// URL is the remote-write URL.
	URL string
	// Headers are sent with every request; they may hold credentials.
	Headers map[string]telemetry.Secret
	// Client sends the requests.
	Client *http.Client
	// Labels are added to every series, such as job and instance. Their
	// names must be valid and distinct from the metrics' own labels.
	Labels map[string]string
	// EventBuckets, LatencyBuckets and WaitBuckets are the histograms'
	// bounds.
	EventBuckets   []float64
	LatencyBuckets []float64
	WaitBuckets    []float64
	// Prefix starts every error message, such as "remotewrite".
	Prefix string
	// StatusError makes the error of a push answered with an HTTP status
	// other than 2xx: op says what was attempted and where.
	StatusError func(op string, code int, body string) error
}

// Sender pushes with Prometheus remote write 1.0.
type Sender struct {
	c       Config
	url     string         // c.URL as errors show it: safetext.URLString
	labels  []prompb.Label // Labels, sorted by name
	eventLe []string       // formatted le of each event bucket, "+Inf" last
	latLe   []string       // the same for latency buckets
	waitLe  []string       // the same for wait buckets
}

var _ metricpush.Sender = (*Sender)(nil)

// New returns a Sender configured by c. It does no network I/O.
func New(c Config) *Sender {
	s := &Sender{c: c, url: safetext.URLString(c.URL), eventLe: formatBounds(c.EventBuckets), latLe: formatBounds(c.LatencyBuckets),
		waitLe: formatBounds(c.WaitBuckets)}
	for name, v := range c.Labels {
		s.labels = append(s.labels, prompb.Label{Name: name, Value: v})
	}
	slices.SortFunc(s.labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// formatBounds returns the le label values of bounds and +Inf, formatted
// as client_golang formats them in the text exposition.
func formatBounds(bounds []float64) []string {
	le := make([]string, 0, len(bounds)+1)
	for _, b := range bounds {
		le = append(le, strconv.FormatFloat(b, 'g', -1, 64))
	}
	return append(le, "+Inf")
}

// Request builds the remote-write request of snap. Every series carries
// the constant labels; labels are sorted by name, as the protocol
// requires.
func (s *Sender) Request(snap *metricpush.Snapshot) *prompb.WriteRequest {
	n := snap.Series(len(s.eventLe)-1, len(s.latLe)-1, len(s.waitLe)-1)
	req := &prompb.WriteRequest{
		Timeseries: make([]prompb.TimeSeries, 0, n),
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: metricdef.EventDuration, Help: metricdef.HelpEventDuration, Unit: "seconds"},
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: metricdef.EventRetries, Help: metricdef.HelpEventRetries},
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: metricdef.NetworkBytes, Help: metricdef.HelpNetworkBytes, Unit: "bytes"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: metricdef.NetworkLatency, Help: metricdef.HelpNetworkLatency, Unit: "seconds"},
		},
	}
	for i := range snap.Events {
		if snap.Events[i].Waited { // event_wait_seconds exists only once a run had an enqueue time
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_HISTOGRAM,
				MetricFamilyName: metricdef.EventWait, Help: metricdef.HelpEventWait, Unit: "seconds"})
			break
		}
	}
	if len(snap.Delivery) > 0 {
		req.Metadata = append(req.Metadata,
			prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: metricdef.Published, Help: metricdef.HelpPublished},
			prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: metricdef.FailedAttempts, Help: metricdef.HelpFailedAttempts},
			prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: metricdef.Dropped, Help: metricdef.HelpDropped},
			prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: metricdef.Panics, Help: metricdef.HelpPanics},
			prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: metricdef.QueueLength, Help: metricdef.HelpQueueLength},
			prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: metricdef.QueueCapacity, Help: metricdef.HelpQueueCapacity})
	}
	// One slab each for the labels and samples of all series: a push
	// allocates a few large blocks instead of two small ones per series.
	per := 1 + len(s.labels) + 3
	labelSlab := make([]prompb.Label, 0, per*n)
	samples := make([]prompb.Sample, n)
	ms := snap.Time.UnixMilli()
	add := func(name string, v float64, labels ...prompb.Label) {
		start := len(labelSlab)
		labelSlab = append(labelSlab, prompb.Label{Name: "__name__", Value: name})
		labelSlab = append(labelSlab, s.labels...)
		labelSlab = append(labelSlab, labels...)
		ls := labelSlab[start:len(labelSlab):len(labelSlab)]
		slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		i := len(req.Timeseries)
		samples[i] = prompb.Sample{Value: v, Timestamp: ms}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: samples[i : i+1 : i+1]})
	}
	hist := func(name string, le []string, h *metricpush.HistogramPoint, l1, l2 prompb.Label) {
		bucket, sum, count := name+"_bucket", name+"_sum", name+"_count"
		withLe := [3]prompb.Label{l1, l2}
		labels := withLe[:2]
		if l2.Name == "" {
			labels = withLe[:1]
		}
		var cum uint64
		for i, c := range h.Counts {
			cum += c
			withLe[len(labels)] = prompb.Label{Name: metricdef.LabelLe, Value: le[i]}
			add(bucket, float64(cum), withLe[:len(labels)+1]...)
		}
		add(sum, h.Sum, labels...)
		add(count, float64(h.Count), labels...)
	}
	for i := range snap.Events {
		e := &snap.Events[i]
		name := prompb.Label{Name: metricdef.LabelEventName, Value: e.Name}
		hist(metricdef.EventDuration, s.eventLe, &e.Completed, name, prompb.Label{Name: metricdef.LabelStatus, Value: metricdef.StatusCompleted})
		hist(metricdef.EventDuration, s.eventLe, &e.Failed, name, prompb.Label{Name: metricdef.LabelStatus, Value: metricdef.StatusFailed})
		add(metricdef.EventRetries, float64(e.Retries), name)
		if e.Waited {
			hist(metricdef.EventWait, s.waitLe, &e.Wait, name, prompb.Label{})
		}
	}
	for i := range snap.Ops {
		o := &snap.Ops[i]
		op := prompb.Label{Name: metricdef.LabelOperation, Value: o.Name}
		hist(metricdef.NetworkLatency, s.latLe, &o.Latency, op, prompb.Label{})
		add(metricdef.NetworkBytes, float64(o.Sent), op, prompb.Label{Name: metricdef.LabelDirection, Value: metricdef.DirectionSent})
		add(metricdef.NetworkBytes, float64(o.Received), op, prompb.Label{Name: metricdef.LabelDirection, Value: metricdef.DirectionReceived})
	}
	for i := range snap.Delivery {
		d := &snap.Delivery[i]
		pub := prompb.Label{Name: metricdef.LabelPublisher, Value: d.Name}
		add(metricdef.Published, float64(d.Published), pub)
		add(metricdef.FailedAttempts, float64(d.FailedAttempts), pub)
		add(metricdef.Dropped, float64(d.DroppedQueueFull), pub, prompb.Label{Name: metricdef.LabelReason, Value: metricdef.ReasonQueueFull})
		add(metricdef.Dropped, float64(d.DroppedFailed), pub, prompb.Label{Name: metricdef.LabelReason, Value: metricdef.ReasonFailed})
		add(metricdef.Dropped, float64(d.DroppedClosed), pub, prompb.Label{Name: metricdef.LabelReason, Value: metricdef.ReasonClosed})
		add(metricdef.Panics, float64(d.Panics), pub)
		add(metricdef.QueueLength, float64(d.Queued), pub)
		add(metricdef.QueueCapacity, float64(d.QueueCapacity), pub)
	}
	return req
}

// Prepare encodes snap once, for every attempt of one push.
func (s *Sender) Prepare(snap *metricpush.Snapshot) (func(context.Context) metricpush.Result, error) {
	data, err := s.Request(snap).Marshal()
	if err != nil {
		return nil, fmt.Errorf("%s: encode remote-write request: %w", s.c.Prefix, err)
	}
	// A new buffer per push: the transport may still read the body of an
	// abandoned attempt after Do has returned, so it is never reused.
	body := snappy.Encode(nil, data)
	return func(ctx context.Context) metricpush.Result { return s.post(ctx, body) }, nil
}

// post makes one attempt to send the compressed request body.
func (s *Sender) post(ctx context.Context, body []byte) metricpush.Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.URL, bytes.NewReader(body))
	if err != nil {
		return metricpush.Result{Err: fmt.Errorf("%s: remote write: %w", s.c.Prefix, err)}
	}
	for k, v := range s.c.Headers {
		req.Header.Set(k, v.Reveal())
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := s.c.Client.Do(req)
	if err != nil {
		// The client's *url.Error quotes the URL with its query: show it
		// as the other errors do (the error is the client's, made for
		// this call).
		if ue, ok := err.(*url.Error); ok {
			ue.URL = safetext.URLString(ue.URL)
		}
		return metricpush.Result{Err: fmt.Errorf("%s: remote write: %w", s.c.Prefix, err)}
	}
	return s.checkResponse(resp, "remote write to "+s.url)
}

// checkResponse turns resp into a Result, closing its body after draining
// a bounded amount of it, so that the connection is reused.
func (s *Sender) checkResponse(resp *http.Response, what string) metricpush.Result {
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return metricpush.Result{Status: resp.StatusCode}
	}
	msg, err := io.ReadAll(io.LimitReader(resp.Body, safetext.MaxBody))
	total, partial := len(msg), err != nil
	if !partial {
		// The rest is counted, up to maxCounted bytes in all and one
		// more to see whether there is more, so that the error says how
		// long the body was, or at least how long.
		rest, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxCounted-int64(total)+1))
		total += int(rest)
		partial = err != nil || total > maxCounted
	}
	body := safetext.BodyStart(string(msg), total)
	if partial {
		body = safetext.BodyStartAtLeast(string(msg), total)
	}
	return metricpush.Result{
		Status:     resp.StatusCode,
		RetryAfter: retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Err:        s.c.StatusError(what, resp.StatusCode, body),
	}
}

// maxCounted is the most bytes of a rejection's body that checkResponse
// reads, to count them: a longer body is "at least" this long, and a
// receiver that answers with gigabytes costs us 1 MiB.
const maxCounted = 1 << 20

// Close does nothing: the Pusher releases the client's connections.
func (s *Sender) Close(context.Context) error { return nil }
