package telemetrytest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

func TestMemoryPublisherConforms(t *testing.T) {
	var last *telemetrytest.Publisher
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		last = &telemetrytest.Publisher{}
		return last, nil
	}, func() (events, network []string) {
		for _, m := range last.Events() {
			events = append(events, m.TaskID)
		}
		for _, m := range last.Network() {
			network = append(network, m.TaskID)
		}
		return events, network
	})
	if err != nil {
		t.Error(err)
	}
}

// lossy loses every tenth record and never refuses after Close.
type lossy struct {
	telemetrytest.Publisher
	n int
}

func (l *lossy) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	l.n++
	if l.n%10 == 0 {
		return nil
	}
	return l.Publisher.PublishEventMetrics(ctx, m)
}

func (l *lossy) Close(context.Context) error { return nil }

func TestConformanceCatchesViolations(t *testing.T) {
	var last *lossy
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		last = &lossy{}
		return last, nil
	}, func() (events, network []string) {
		for _, m := range last.Events() {
			events = append(events, m.TaskID)
		}
		for _, m := range last.Network() {
			network = append(network, m.TaskID)
		}
		return events, network
	})
	if err == nil {
		t.Fatal("a lossy publisher passed the conformance checks")
	}
	for _, want := range []string{"90 event records delivered, want the 100 recorded", "second Close returned nil",
		"publish after Close: got <nil>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

func TestPublisherFailAndReset(t *testing.T) {
	boom := errors.New("boom")
	p := &telemetrytest.Publisher{Fail: func(call int) error {
		if call == 1 {
			return boom
		}
		return nil
	}}
	ctx := context.Background()
	if err := p.PublishEventMetrics(ctx, telemetry.EventMetrics{TaskID: "a"}); !errors.Is(err, boom) {
		t.Errorf("first call: got %v, want boom", err)
	}
	if err := p.PublishEventMetrics(ctx, telemetry.EventMetrics{TaskID: "b"}); err != nil {
		t.Errorf("second call: got %v", err)
	}
	if got := p.Events(); len(got) != 1 || got[0].TaskID != "b" {
		t.Errorf("got %+v, want only b", got)
	}
	p.Reset()
	if len(p.Events()) != 0 {
		t.Error("Reset kept records")
	}
}

func ExamplePublisher() {
	p := &telemetrytest.Publisher{}
	r, _ := telemetry.NewRecorder(telemetry.WithPublishers(p))
	r.StartEvent("extract", "task-1")
	r.EndEvent("task-1", errors.New("timeout"))
	r.Close(context.Background())

	for _, m := range p.Events() {
		fmt.Println(m.TaskID, m.Status, m.Error)
	}
	// Output:
	// task-1 failed timeout
}

// failingFlush is a Publisher whose Flush fails.
type failingFlush struct{ telemetrytest.Publisher }

func (*failingFlush) Flush(context.Context) error { return errors.New("backend unreachable") }

// failingClose is a Publisher whose first Close fails.
type failingClose struct{ telemetrytest.Publisher }

func (p *failingClose) Close(ctx context.Context) error {
	if err := p.Publisher.Close(ctx); err != nil {
		return err
	}
	return errors.New("cannot release the connection")
}

// openObserver is an Observer that still observes after Close.
type openObserver struct{ telemetrytest.Publisher }

func (*openObserver) Synchronous() bool { return true }

func (*openObserver) ObserveEvent(context.Context, telemetry.EventObservation) error { return nil }

func (*openObserver) ObserveNetwork(context.Context, telemetry.NetworkObservation) error { return nil }

// TestConformanceReportsEachViolation checks the message of each
// violation the kit can find.
func TestConformanceReportsEachViolation(t *testing.T) {
	old := slog.Default() // the kit's Recorders log the drops there
	slog.SetDefault(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { slog.SetDefault(old) })
	boom := errors.New("boom")
	tests := []struct {
		name string
		new  func() (telemetry.Publisher, error)
		want string
	}{
		{"constructor fails", func() (telemetry.Publisher, error) { return nil, boom }, "telemetrytest: new publisher: boom"},
		{"constructor returns nil", func() (telemetry.Publisher, error) { return nil, nil },
			"telemetrytest: new publisher returned no error and telemetry: nil publisher"},
		{"constructor returns a nil pointer", func() (telemetry.Publisher, error) { return (*telemetrytest.Publisher)(nil), nil },
			"telemetrytest: new publisher returned no error and telemetry: nil publisher"},
		{"records dropped", func() (telemetry.Publisher, error) {
			return &telemetrytest.Publisher{Fail: func(int) error { return telemetry.Permanent(boom) }}, nil
		}, "dropped 200 records"},
		{"Flush fails", func() (telemetry.Publisher, error) { return &failingFlush{}, nil },
			"delivers every record: flush: telemetry: flush publisher telemetrytest_test.failingFlush: backend unreachable"},
		{"Close fails", func() (telemetry.Publisher, error) { return &failingClose{}, nil }, "close: first Close: "},
		{"observes after Close", func() (telemetry.Publisher, error) { return &openObserver{}, nil },
			"observe after Close: got <nil>, want an error wrapping telemetry.ErrClosed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := telemetrytest.TestPublisher(tc.new, func() (events, network []string) { return nil, nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
