package prometheus

import (
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry"
	prom "github.com/prometheus/client_golang/prometheus"
)

// Names of the delivery self-metrics, before the namespace prefix. Each has
// the label publisher, the [telemetry.PublisherStats] name of a publisher
// of the Recorder the Publisher is attached to ("prometheus",
// "elasticsearch", ...), bounded as event names are.
const (
	// MetricPublished counts the records a publisher accepted.
	MetricPublished = metricdef.Published
	// MetricFailedAttempts counts publish calls that returned an error or
	// panicked, retried or not.
	MetricFailedAttempts = metricdef.FailedAttempts
	// MetricDropped counts the records a publisher lost, with the label
	// reason: "queue_full" (its queue was full), "failed" (given up after a
	// permanent error or the last retry) or "closed" (still queued when
	// Close ran out of time).
	MetricDropped = metricdef.Dropped
	// MetricPanics counts publish calls that panicked.
	MetricPanics = metricdef.Panics
	// MetricQueueLength is the number of records waiting in a publisher's
	// queue at scrape time; always 0 for a synchronous publisher.
	MetricQueueLength = metricdef.QueueLength
	// MetricQueueCapacity is the size of a publisher's queue; 0 for a
	// synchronous publisher, which has none.
	MetricQueueCapacity = metricdef.QueueCapacity
)

// deliveryCollector exports the PublisherStats of a Recorder, read at
// scrape time. Until it has a Recorder, it collects nothing.
type deliveryCollector struct {
	r                                                          atomic.Pointer[telemetry.Recorder]
	published, failedAttempts, dropped, panics, queued, queCap *prom.Desc
}

var _ prom.Collector = (*deliveryCollector)(nil)

func newDeliveryCollector(namespace string, constLabels prom.Labels) *deliveryCollector {
	desc := func(name, help string, labels ...string) *prom.Desc {
		return prom.NewDesc(prom.BuildFQName(namespace, "", name), help, labels, constLabels)
	}
	return &deliveryCollector{
		published:      desc(MetricPublished, metricdef.HelpPublished, metricdef.LabelPublisher),
		failedAttempts: desc(MetricFailedAttempts, metricdef.HelpFailedAttempts, metricdef.LabelPublisher),
		dropped:        desc(MetricDropped, metricdef.HelpDropped, metricdef.LabelPublisher, metricdef.LabelReason),
		panics:         desc(MetricPanics, metricdef.HelpPanics, metricdef.LabelPublisher),
		queued:         desc(MetricQueueLength, metricdef.HelpQueueLength, metricdef.LabelPublisher),
		queCap:         desc(MetricQueueCapacity, metricdef.HelpQueueCapacity, metricdef.LabelPublisher),
	}
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
		name := metricdef.LabelValue(s.Name)
		counter := func(d *prom.Desc, v uint64, labels ...string) {
			ch <- prom.MustNewConstMetric(d, prom.CounterValue, float64(v), labels...)
		}
		gauge := func(d *prom.Desc, v int, labels ...string) {
			ch <- prom.MustNewConstMetric(d, prom.GaugeValue, float64(v), labels...)
		}
		counter(c.published, s.Published, name)
		counter(c.failedAttempts, s.FailedAttempts, name)
		counter(c.dropped, s.DroppedQueueFull, name, metricdef.ReasonQueueFull)
		counter(c.dropped, s.DroppedFailed, name, metricdef.ReasonFailed)
		counter(c.dropped, s.DroppedClosed, name, metricdef.ReasonClosed)
		counter(c.panics, s.Panics, name)
		gauge(c.queued, s.Queued, name)
		gauge(c.queCap, s.QueueCapacity, name)
	}
}
