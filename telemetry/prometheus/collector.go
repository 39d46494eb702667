package prometheus

import (
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/internal/seriescache"
	"github.com/eventpipeline/eventpipeline/telemetry"
	prom "github.com/prometheus/client_golang/prometheus"
)

// Names of the delivery self-metrics, before the namespace prefix. Each has
// the label publisher, the [telemetry.PublisherStats] name of a publisher
// attached to Config.Recorder ("prometheus", "elasticsearch", ...).
const (
	// MetricPublished counts the records a publisher accepted.
	MetricPublished = "telemetry_publisher_records_published_total"
	// MetricFailedAttempts counts publish calls that returned an error or
	// panicked, retried or not.
	MetricFailedAttempts = "telemetry_publisher_failed_attempts_total"
	// MetricDropped counts the records a publisher lost, with the label
	// reason: "queue_full" (its queue was full, or closed with records in
	// it) or "failed" (given up after a permanent error or the last retry).
	MetricDropped = "telemetry_publisher_records_dropped_total"
	// MetricPanics counts publish calls that panicked.
	MetricPanics = "telemetry_publisher_panics_total"
	// MetricQueueLength is the number of records waiting in a publisher's
	// queue at scrape time; always 0 for a synchronous publisher.
	MetricQueueLength = "telemetry_publisher_queue_length"
	// MetricQueueCapacity is the size of a publisher's queue; 0 for a
	// synchronous publisher, which has none.
	MetricQueueCapacity = "telemetry_publisher_queue_capacity"
)

// deliveryCollector exports the PublisherStats of a Recorder, read at
// scrape time. Until it has a Recorder, it collects nothing.
type deliveryCollector struct {
	r                                                          atomic.Pointer[telemetry.Recorder]
	published, failedAttempts, dropped, panics, queued, queCap *prom.Desc
}

var _ prom.Collector = (*deliveryCollector)(nil)

func newDeliveryCollector(r *telemetry.Recorder, namespace string, constLabels prom.Labels) *deliveryCollector {
	desc := func(name, help string, labels ...string) *prom.Desc {
		return prom.NewDesc(prom.BuildFQName(namespace, "", name), help, labels, constLabels)
	}
	c := &deliveryCollector{
		published: desc(MetricPublished,
			"Records accepted by each telemetry publisher.", "publisher"),
		failedAttempts: desc(MetricFailedAttempts,
			"Publish calls of each telemetry publisher that returned an error or panicked, retried or not.", "publisher"),
		dropped: desc(MetricDropped,
			"Records lost by each telemetry publisher, by reason: queue_full or failed.", "publisher", "reason"),
		panics: desc(MetricPanics,
			"Publish calls of each telemetry publisher that panicked.", "publisher"),
		queued: desc(MetricQueueLength,
			"Records waiting in the queue of each telemetry publisher.", "publisher"),
		queCap: desc(MetricQueueCapacity,
			"Size of the queue of each telemetry publisher; 0 for synchronous publishers.", "publisher"),
	}
	if r != nil {
		c.r.Store(r)
	}
	return c
}

// Describe sends the descriptors of every self-metric.
func (c *deliveryCollector) Describe(ch chan<- *prom.Desc) {
	for _, d := range []*prom.Desc{c.published, c.failedAttempts, c.dropped, c.panics, c.queued, c.queCap} {
		ch <- d
	}
}

// Collect sends the current counters of every publisher of the Recorder.
func (c *deliveryCollector) Collect(ch chan<- prom.Metric) {
	r := c.r.Load()
	if r == nil {
		return
	}
	for _, s := range r.PublisherStats() {
		name := seriescache.LabelValue(s.Name)
		counter := func(d *prom.Desc, v uint64, labels ...string) {
			ch <- prom.MustNewConstMetric(d, prom.CounterValue, float64(v), labels...)
		}
		gauge := func(d *prom.Desc, v int, labels ...string) {
			ch <- prom.MustNewConstMetric(d, prom.GaugeValue, float64(v), labels...)
		}
		counter(c.published, s.Published, name)
		counter(c.failedAttempts, s.FailedAttempts, name)
		counter(c.dropped, s.DroppedQueueFull, name, "queue_full")
		counter(c.dropped, s.DroppedFailed, name, "failed")
		counter(c.panics, s.Panics, name)
		gauge(c.queued, s.Queued, name)
		gauge(c.queCap, s.QueueCapacity, name)
	}
}
