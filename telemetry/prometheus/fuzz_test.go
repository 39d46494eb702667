package prometheus_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// FuzzLabelValues publishes records with arbitrary event names and
// operations and checks that the registry can always be gathered, with
// each label value the valid-UTF-8 form of the name.
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
		if err := p.PublishEventMetrics(ctx, event(name, time.Millisecond, telemetry.StatusFailed, 1)); err != nil {
			t.Fatal(err)
		}
		if err := p.PublishNetworkMetrics(ctx, netOp(name, time.Millisecond, 1, 2)); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("Gather: %v", err)
		}
		wantEvent := strings.ToValidUTF8(name, "\uFFFD")
		wantOp := wantEvent
		if name == "" {
			wantOp = telemetry.DefaultOperation
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					v := l.GetValue()
					if !utf8.ValidString(v) {
						t.Errorf("%s: label %s=%q is not valid UTF-8", mf.GetName(), l.GetName(), v)
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
