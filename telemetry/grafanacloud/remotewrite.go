package grafanacloud

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Names of the four metrics of the contract. Dashboards and alerts depend
// on them; they are the Prometheus publisher's names.
const (
	// MetricEventDuration is a histogram of the duration of finished event
	// runs, labelled event_name and status (completed or failed).
	MetricEventDuration = metricdef.EventDuration
	// MetricEventRetries counts the retries of finished event runs,
	// labelled event_name.
	MetricEventRetries = metricdef.EventRetries
	// MetricNetworkBytes counts the bytes of finished network operations,
	// labelled operation and direction (sent or received).
	MetricNetworkBytes = metricdef.NetworkBytes
	// MetricNetworkLatency is a histogram of the latency of finished
	// network operations, labelled operation.
	MetricNetworkLatency = metricdef.NetworkLatency
)

// attemptResult is the outcome of one HTTP attempt.
type attemptResult struct {
	status     int           // HTTP status, 0 if no response
	retryAfter time.Duration // from a Retry-After header, 0 if none
	err        error         // nil on success
}

// A sender pushes snapshots with one protocol.
type sender interface {
	// prepare encodes snap once, for all the attempts of one push.
	prepare(snap *snapshot) (func(ctx context.Context) attemptResult, error)
	// close releases the sender's resources.
	close(ctx context.Context) error
}

// maxErrorBody is how much of an error response's body goes into the error.
const maxErrorBody = 512

// remoteWriter pushes with Prometheus remote write 1.0.
type remoteWriter struct {
	url      string
	auth     telemetry.Secret // the Authorization header value
	client   *http.Client
	job      string
	instance string
	eventLe  []string // formatted le of each event bucket, "+Inf" last
	latLe    []string // the same for latency buckets
}

func newRemoteWriter(c *Config, t target, client *http.Client) *remoteWriter {
	return &remoteWriter{
		url:      t.url.String(),
		auth:     basicAuth(c.OrgSlug, c.APIKey),
		client:   client,
		job:      c.Job,
		instance: c.Instance,
		eventLe:  formatBounds(c.EventBuckets),
		latLe:    formatBounds(c.LatencyBuckets),
	}
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

// request builds the remote-write request of snap. Every series carries
// the job and instance labels; labels are sorted by name, as the protocol
// requires.
func (w *remoteWriter) request(snap *snapshot) *prompb.WriteRequest {
	n := snap.series(len(w.eventLe)-1, len(w.latLe)-1)
	req := &prompb.WriteRequest{
		Timeseries: make([]prompb.TimeSeries, 0, n),
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: MetricEventDuration, Help: metricdef.HelpEventDuration, Unit: "seconds"},
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: MetricEventRetries, Help: metricdef.HelpEventRetries},
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: MetricNetworkBytes, Help: metricdef.HelpNetworkBytes, Unit: "bytes"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: MetricNetworkLatency, Help: metricdef.HelpNetworkLatency, Unit: "seconds"},
		},
	}
	if len(snap.delivery) > 0 {
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
	labelSlab := make([]prompb.Label, 0, 6*n)
	samples := make([]prompb.Sample, n)
	ms := snap.time.UnixMilli()
	add := func(name string, v float64, labels ...prompb.Label) {
		start := len(labelSlab)
		labelSlab = append(labelSlab,
			prompb.Label{Name: "__name__", Value: name},
			prompb.Label{Name: "job", Value: w.job},
			prompb.Label{Name: "instance", Value: w.instance})
		labelSlab = append(labelSlab, labels...)
		ls := labelSlab[start:len(labelSlab):len(labelSlab)]
		slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		i := len(req.Timeseries)
		samples[i] = prompb.Sample{Value: v, Timestamp: ms}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: samples[i : i+1 : i+1]})
	}
	hist := func(name string, le []string, h *histogramPoint, l1, l2 prompb.Label) {
		bucket, sum, count := name+"_bucket", name+"_sum", name+"_count"
		withLe := [3]prompb.Label{l1, l2}
		labels := withLe[:2]
		if l2.Name == "" {
			labels = withLe[:1]
		}
		var cum uint64
		for i, c := range h.counts {
			cum += c
			withLe[len(labels)] = prompb.Label{Name: metricdef.LabelLe, Value: le[i]}
			add(bucket, float64(cum), withLe[:len(labels)+1]...)
		}
		add(sum, h.sum, labels...)
		add(count, float64(h.count), labels...)
	}
	for i := range snap.events {
		e := &snap.events[i]
		name := prompb.Label{Name: metricdef.LabelEventName, Value: e.name}
		hist(MetricEventDuration, w.eventLe, &e.completed, name, prompb.Label{Name: metricdef.LabelStatus, Value: metricdef.StatusCompleted})
		hist(MetricEventDuration, w.eventLe, &e.failed, name, prompb.Label{Name: metricdef.LabelStatus, Value: metricdef.StatusFailed})
		add(MetricEventRetries, float64(e.retries), name)
	}
	for i := range snap.ops {
		o := &snap.ops[i]
		op := prompb.Label{Name: metricdef.LabelOperation, Value: o.name}
		hist(MetricNetworkLatency, w.latLe, &o.latency, op, prompb.Label{})
		add(MetricNetworkBytes, float64(o.sent), op, prompb.Label{Name: metricdef.LabelDirection, Value: metricdef.DirectionSent})
		add(MetricNetworkBytes, float64(o.received), op, prompb.Label{Name: metricdef.LabelDirection, Value: metricdef.DirectionReceived})
	}
	for i := range snap.delivery {
		d := &snap.delivery[i]
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

func (w *remoteWriter) prepare(snap *snapshot) (func(context.Context) attemptResult, error) {
	data, err := w.request(snap).Marshal()
	if err != nil {
		return nil, fmt.Errorf("grafanacloud: encode remote-write request: %w", err)
	}
	// A new buffer per push: the transport may still read the body of an
	// abandoned attempt after Do has returned, so it is never reused.
	body := snappy.Encode(nil, data)
	return func(ctx context.Context) attemptResult { return w.post(ctx, body) }, nil
}

// post makes one attempt to send the compressed request body.
func (w *remoteWriter) post(ctx context.Context, body []byte) attemptResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("grafanacloud: remote write: %w", err)}
	}
	req.Header.Set("Authorization", w.auth.Reveal())
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := w.client.Do(req)
	if err != nil {
		return attemptResult{err: fmt.Errorf("grafanacloud: remote write: %w", err)}
	}
	return checkResponse(resp, "remote write to "+w.url)
}

// checkResponse turns resp into an attemptResult, closing its body after
// draining a bounded amount of it, so that the connection is reused.
func checkResponse(resp *http.Response, what string) attemptResult {
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return attemptResult{status: resp.StatusCode}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return attemptResult{
		status:     resp.StatusCode,
		retryAfter: retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		err:        &StatusError{Op: what, Code: resp.StatusCode, Body: strings.TrimSpace(strings.ToValidUTF8(string(msg), "\uFFFD"))},
	}
}

// A StatusError is the error of a push that the endpoint answered with an
// HTTP status other than 2xx. Pushes answered 408, 429 or 5xx are retried;
// the others are not, and their error is marked with [telemetry.Permanent].
type StatusError struct {
	Op   string // what was attempted and where, such as "remote write to https://..."
	Code int    // the HTTP status code
	Body string // the start of the response body, for diagnosis
}

// Error returns a message with the operation, the status and the body.
func (e *StatusError) Error() string {
	msg := "grafanacloud: " + e.Op + ": HTTP " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Temporary reports whether another attempt may succeed: for 408, 429 and
// 5xx, the statuses the module retries everywhere.
func (e *StatusError) Temporary() bool { return retry.RetryableStatus(e.Code) }

func (w *remoteWriter) close(context.Context) error { return nil }
