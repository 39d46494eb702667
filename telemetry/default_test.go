package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// useDefault makes a fresh default Recorder for the test and restores the
// previous one after it.
func useDefault(t *testing.T) *telemetry.Recorder {
	t.Helper()
	prev := telemetry.Default()
	r := newRecorder(t)
	telemetry.SetDefault(r)
	t.Cleanup(func() { telemetry.SetDefault(prev) })
	return r
}

func TestPackageLevelFunctionsUseTheDefault(t *testing.T) {
	synctest.Test(t, testPackageLevelFunctionsUseTheDefault)
}

func testPackageLevelFunctionsUseTheDefault(t *testing.T) {
	r := useDefault(t)
	if telemetry.Default() != r {
		t.Fatal("SetDefault did not replace the default Recorder")
	}
	p := &memPublisher{}
	must(t, telemetry.MonitorEvents(p))
	must(t, telemetry.StartEvent("e", "a"))
	must(t, telemetry.RecordRetry("a"))
	must(t, telemetry.EndEvent("a", errors.New("failed")))
	must(t, telemetry.StartEvent("e", "b"))
	time.Sleep(20 * time.Millisecond) // in the bubble: exactly 20ms
	must(t, telemetry.EndEvent("b", nil))
	net := telemetry.Default().Network()
	must(t, net.StartOperation("n", "h", 1, ""))
	must(t, net.EndOperation("n", 1, 1, errors.New("refused")))

	if f := telemetry.FailedEvents(); len(f) != 1 || f[0].TaskID != "a" {
		t.Errorf("FailedEvents: got %+v", f)
	}
	if s, err := telemetry.SlowEvents(10 * time.Millisecond); err != nil || len(s) != 1 || s[0].TaskID != "b" || s[0].Duration() != 20*time.Millisecond {
		t.Errorf("SlowEvents: got %+v, %v", s, err)
	}
	if rs := telemetry.RetryStats(); rs.TotalRetries != 1 {
		t.Errorf("RetryStats: got %+v", rs)
	}
	if f := telemetry.FailedNetworkOps(); len(f) != 1 {
		t.Errorf("FailedNetworkOps: got %+v", f)
	}
	if s, err := telemetry.SlowNetworkOps(time.Hour); err != nil || len(s) != 0 {
		t.Errorf("SlowNetworkOps: got %+v, %v", s, err)
	}
	out, err := telemetry.MetricsJSON()
	must(t, err)
	var rep telemetry.Report
	must(t, json.Unmarshal(out, &rep))
	if len(rep.Events) != 2 || len(rep.NetworkOperations) != 1 {
		t.Errorf("MetricsJSON: got %d events, %d network operations", len(rep.Events), len(rep.NetworkOperations))
	}
	must(t, telemetry.Flush(context.Background()))
	if n, _, _ := p.counts(); n != 2 {
		t.Errorf("the monitored publisher got %d events, want 2", n)
	}
	if err := telemetry.MonitorEvents(nil); !errors.Is(err, telemetry.ErrNilPublisher) {
		t.Errorf("MonitorEvents(nil): got %v", err)
	}
	must(t, telemetry.Close(context.Background()))
	if err := telemetry.StartEvent("e", "c"); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("StartEvent after Close: got %v", err)
	}
}

func TestDefaultIsCreatedOnceAndStartsNothing(t *testing.T) {
	// A goroutine left running in the bubble would fail the test.
	synctest.Test(t, testDefaultIsCreatedOnceAndStartsNothing)
}

func testDefaultIsCreatedOnceAndStartsNothing(t *testing.T) {
	a, b := telemetry.Default(), telemetry.Default()
	if a == nil || a != b {
		t.Fatalf("Default returned %p then %p", a, b)
	}
	telemetry.SetDefault(nil) // ignored
	if telemetry.Default() != a {
		t.Error("SetDefault(nil) replaced the default")
	}
	if s := a.PublisherStats(); len(s) != 0 {
		t.Errorf("the default Recorder has publishers: %+v", s)
	}
}
