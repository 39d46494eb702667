package otelmetric

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

var errRefused = errors.New("instrument refused")

// refusingProvider is a MeterProvider whose meters refuse some
// instruments, whose ForceFlush fails with flushErr and whose callback
// registrations fail to unregister with unregisterErr.
type refusingProvider struct {
	noop.MeterProvider
	refuse        map[string]bool
	flushErr      error
	unregisterErr error
}

func (p *refusingProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return refusingMeter{p: p}
}

func (p *refusingProvider) ForceFlush(context.Context) error { return p.flushErr }

type refusingMeter struct {
	noop.Meter
	p *refusingProvider
}

func (m refusingMeter) err(name string) error {
	if m.p.refuse[name] {
		return errRefused
	}
	return nil
}

func (m refusingMeter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	h, _ := m.Meter.Float64Histogram(name, opts...)
	return h, m.err(name)
}

func (m refusingMeter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	g, _ := m.Meter.Int64ObservableGauge(name, opts...)
	return g, m.err(name)
}

func (m refusingMeter) RegisterCallback(metric.Callback, ...metric.Observable) (metric.Registration, error) {
	return registration{err: m.p.unregisterErr}, nil
}

type registration struct {
	noop.Registration
	err error
}

func (r registration) Unregister() error { return r.err }

func TestMeterProviderRefusesInstruments(t *testing.T) {
	mp := &refusingProvider{refuse: map[string]bool{"event_duration_seconds": true, "telemetry_publisher_queue_length": true}}
	_, err := NewPublisher(Config{MeterProvider: mp, Logger: quiet})
	if !errors.Is(err, errRefused) || !strings.HasPrefix(err.Error(), "otelmetric: create instruments: ") ||
		strings.Count(err.Error(), errRefused.Error()) != 2 {
		t.Errorf("got %v, want both refusals wrapped in otelmetric: create instruments", err)
	}
}

func TestMeterProviderFlushAndUnregisterErrors(t *testing.T) {
	errFlush, errUnregister := errors.New("exporter down"), errors.New("already unregistered")
	mp := &refusingProvider{flushErr: errFlush, unregisterErr: errUnregister}
	p, err := NewPublisher(Config{MeterProvider: mp, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(context.Background()); !errors.Is(err, errFlush) || !strings.HasPrefix(err.Error(), "otelmetric: flush the MeterProvider: ") {
		t.Errorf("Flush: got %v, want the MeterProvider's error wrapped", err)
	}
	if err := p.Close(context.Background()); !errors.Is(err, errUnregister) || !strings.HasPrefix(err.Error(), "otelmetric: unregister the self-metrics: ") {
		t.Errorf("Close: got %v, want the unregistration's error wrapped", err)
	}
	if err := p.Close(context.Background()); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
}

func TestInvalidRecordsRefused(t *testing.T) {
	p, _ := newManual(t, Config{})
	ctx := context.Background()
	pending := finishedEvent("e", telemetry.StatusPending, time.Second, 0)
	if err := p.PublishEventMetrics(ctx, pending); err == nil || !strings.HasPrefix(err.Error(), "otelmetric: ") {
		t.Errorf("pending event: got %v, want an otelmetric: error", err)
	}
	negative := finishedOp("op", time.Second, -1, 0)
	if err := p.PublishNetworkMetrics(ctx, negative); err == nil || !strings.HasPrefix(err.Error(), "otelmetric: ") {
		t.Errorf("negative bytes: got %v, want an otelmetric: error", err)
	}
}

// TestOverflowLoggedToDefault checks that the overflow warning goes to
// slog.Default when Config.Logger is nil, looked up when it is logged.
func TestOverflowLoggedToDefault(t *testing.T) {
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	p, err := NewPublisher(Config{MeterProvider: noop.NewMeterProvider(), MaxLabelValues: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if err := p.PublishEventMetrics(ctx, finishedEvent(name, telemetry.StatusCompleted, time.Second, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if got := buf.String(); !strings.Contains(got, `level=WARN msg="otelmetric: too many distinct event_name values`) || !strings.Contains(got, "event_name=b") {
		t.Errorf("default log %q lacks the overflow warning for b", got)
	}
}
