package webview

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestRunPageHostileText checks the run page, which reads a run from the
// Recorder rather than from the view's own bounded copies: its texts are
// escaped and cut as on the other pages, whatever their length.
func TestRunPageHostileText(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	long := strings.Repeat("x", 1<<20)
	const id = "t\u202e1"
	if err := f.rec.StartEvent("<b>\x1b]8;;http://evil\x07"+long, id, telemetry.WithPipelineID("p\u2066"+long)); err != nil {
		t.Fatal(err)
	}
	if err := f.rec.EndEvent(id, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	if err := f.rec.Network().StartOperation(id, "h\u202e"+long, 80, "op\x1b[2J"+long); err != nil {
		t.Fatal(err)
	}
	if err := f.rec.Network().EndOperation(id, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
	resp, body := f.get(t, "/run?id="+"t%E2%80%AE1")
	if resp.StatusCode != 200 {
		t.Fatalf("got %d, want 200", resp.StatusCode)
	}
	for _, bad := range []string{"<b>", "\x1b", "\x07", "\u2066"} {
		if strings.Contains(body, bad) {
			t.Errorf("the run page contains %q", bad)
		}
	}
	// The task id asked for is echoed in the search box only, as typed
	// (see TestThresholdNotEchoed); everywhere else it is escaped.
	if n := strings.Count(body, "\u202e"); n != 1 {
		t.Errorf("the run page contains U+202E %d times, want once (the search box)", n)
	}
	for _, want := range []string{`&lt;b&gt;\x1b]8;;http://evil\axxx`, `t\u202e1`, `p\u2066xxx`, `h\u202exxx`, `op\x1b[2Jxxx`} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page does not show %q", want)
		}
	}
	// Four texts of 1 MiB each: cut as the view's lists cut them.
	if len(body) > 64<<10 {
		t.Errorf("the run page has %d bytes, want the long texts cut (at most 64 KiB)", len(body))
	}
}
