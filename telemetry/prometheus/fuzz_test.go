package prometheus_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// FuzzLabelValues publishes records with arbitrary event names and
// operations and checks that the registry can always be gathered, with
// each label value the bounded, valid-UTF-8 form of the name, never the
// reserved overflow value.
func FuzzLabelValues(f *testing.F) {
	for _, s := range []string{"load", "", "bad\xffname", "\xc3", "日本語", "a\"b\\c\n", "_overflow", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		reg := prom.NewRegistry()
		p, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(context.Background())
		ctx := context.Background()
		err = p.PublishEventMetrics(ctx, event(name, time.Millisecond, telemetry.StatusFailed, 1))
		if (err != nil) != (name == "") {
			t.Fatalf("event name %q: got error %v, want one only for an empty name", name, err)
		}
		if err := p.PublishNetworkMetrics(ctx, netOp(name, time.Millisecond, 1, 2)); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("Gather: %v", err)
		}
		wantEvent := metricdef.LabelValue(name)
		wantOp := wantEvent
		if name == "" {
			wantOp = telemetry.DefaultOperation
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					v := l.GetValue()
					if !utf8.ValidString(v) || len(v) > label.MaxLen || v == prometheus.OverflowLabelValue {
						t.Errorf("%s: label %s=%q is not valid UTF-8 of at most %d bytes other than %s",
							mf.GetName(), l.GetName(), v, label.MaxLen, prometheus.OverflowLabelValue)
					}
					switch l.GetName() {
					case "event_name":
						if v != wantEvent {
							t.Errorf("event_name %q, want %q", v, wantEvent)
						}
					case "operation":
						if v != wantOp {
							t.Errorf("operation %q, want %q", v, wantOp)
						}
					}
				}
			}
		}
	})
}
