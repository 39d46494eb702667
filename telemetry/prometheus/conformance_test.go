package prometheus_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// conformanceIDs returns the task ids of the first n records of the
// conformance kit. A metrics backend delivers counts, not task ids: n
// records counted stand for the first n ids the kit recorded.
func conformanceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("conformance-", i)
	}
	return ids
}

// TestConformance runs the conformance kit against a serving Publisher,
// reading what was delivered from its /metrics as Prometheus scrapes it:
// the count of the kit's event runs (both statuses) and of its network
// operations.
func TestConformance(t *testing.T) {
	var last *prometheus.Publisher
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		p, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
		last = p
		return p, err
	}, func() (events, network []string) {
		resp, err := http.Get(last.URL())
		if err != nil {
			t.Errorf("scrape: %v", err)
			return nil, nil
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Errorf("parse the scrape: %v", err)
			return nil, nil
		}
		count := func(family, label, value string) int {
			var n uint64
			for _, m := range mfs[family].GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == label && l.GetValue() == value {
						n += m.GetHistogram().GetSampleCount()
					}
				}
			}
			return int(n)
		}
		return conformanceIDs(count(prometheus.MetricEventDuration, "event_name", "conformance")),
			conformanceIDs(count(prometheus.MetricNetworkLatency, "operation", telemetry.DefaultOperation))
	})
	if err != nil {
		t.Error(err)
	}
}
