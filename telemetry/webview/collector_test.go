package webview

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func newTestCollector(c *clock, cfg Config) *collector {
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	return newCollector(&cfg, c.now)
}

func event(name, id string, d time.Duration, failed bool) telemetry.EventMetrics {
	start := time.Unix(1000, 0)
	m := telemetry.EventMetrics{EventName: name, TaskID: id, StartTime: start, EndTime: start.Add(d), Status: telemetry.StatusCompleted}
	if failed {
		m.Status, m.Error = telemetry.StatusFailed, "boom"
	}
	return m
}

func TestCollectorPerSecond(t *testing.T) {
	c := newClock()
	col := newTestCollector(c, Config{Window: time.Minute})
	ctx := context.Background()
	col.PublishEventMetrics(ctx, event("a", "1", time.Millisecond, false))
	col.PublishEventMetrics(ctx, event("a", "2", time.Millisecond, true))
	col.PublishNetworkMetrics(ctx, telemetry.NetworkMetrics{TaskID: "n", Status: telemetry.StatusFailed, BytesSent: 10, BytesReceived: 20})
	c.advance(2 * time.Second)
	col.PublishEventMetrics(ctx, event("a", "3", time.Millisecond, false))

	secs := col.perSecond(c.now())
	if len(secs) != 60 {
		t.Fatalf("got %d seconds, want 60", len(secs))
	}
	last, first := secs[59], secs[57]
	if last.completed != 1 || last.failed != 0 || first.completed != 1 || first.failed != 1 || first.netFailed != 1 || first.bytesSent != 10 || first.bytesReceived != 20 {
		t.Errorf("got %+v two seconds ago and %+v now", first, last)
	}
	// A minute later the slots are reused: the old counts are gone.
	c.advance(time.Minute)
	col.PublishEventMetrics(ctx, event("a", "4", time.Millisecond, true))
	var completed, failed uint32
	for _, s := range col.perSecond(c.now()) {
		completed, failed = completed+s.completed, failed+s.failed
	}
	if completed != 0 || failed != 1 {
		t.Errorf("after the window: got %d completed, %d failed; want 0 and 1", completed, failed)
	}
}

func TestCollectorByName(t *testing.T) {
	c := newClock()
	col := newTestCollector(c, Config{MaxEventNames: 2})
	ctx := context.Background()
	for i := 1; i <= 300; i++ { // more than durSamples: the oldest 44 are forgotten
		col.PublishEventMetrics(ctx, event("a", fmt.Sprint(i), time.Duration(i)*time.Millisecond, i%10 == 0))
	}
	col.PublishEventMetrics(ctx, event("b", "b1", time.Second, false))
	col.PublishEventMetrics(ctx, event("c", "c1", 2*time.Second, false)) // beyond MaxEventNames
	col.PublishEventMetrics(ctx, event("d", "d1", 3*time.Second, true))
	got := col.byName()
	if len(got) != 3 || got[0].Name != "a" || got[1].Name != "b" || got[2].Name != otherNames {
		t.Fatalf("got %+v, want a, b and the other names", got)
	}
	a := got[0]
	if a.Completed != 270 || a.Failed != 30 || a.Samples != durSamples {
		t.Errorf("a: got %+v", a)
	}
	// The samples are 45ms..300ms: nearest rank of 256 samples.
	if a.P50 != 172*time.Millisecond || a.P90 != 275*time.Millisecond || a.P99 != 298*time.Millisecond || a.Max != 300*time.Millisecond {
		t.Errorf("a: got p50 %v, p90 %v, p99 %v, max %v", a.P50, a.P90, a.P99, a.Max)
	}
	if o := got[2]; o.Completed != 1 || o.Failed != 1 || o.Max != 3*time.Second {
		t.Errorf("other names: got %+v", o)
	}
}

func TestCollectorBounded(t *testing.T) {
	c := newClock()
	col := newTestCollector(c, Config{RecentRuns: 3, RecentFailures: 2})
	ctx := context.Background()
	long := strings.Repeat("é", 5000)
	for i := range 10 {
		m := event("e", fmt.Sprint(i), time.Millisecond, i%2 == 0)
		m.Error = long
		col.PublishEventMetrics(ctx, m)
	}
	recent := col.events(false, 100, nil)
	failed := col.events(true, 100, nil)
	if len(recent) != 3 || recent[0].TaskID != "9" || recent[2].TaskID != "7" {
		t.Errorf("recent: got %v, want 9, 8, 7", ids(recent))
	}
	if len(failed) != 2 || failed[0].TaskID != "8" || failed[1].TaskID != "6" {
		t.Errorf("failed: got %v, want 8, 6", ids(failed))
	}
	if e := failed[0].Error; len(e) > maxErrorText || !utf8.ValidString(e) || !strings.HasSuffix(e, "…") {
		t.Errorf("an error text of %d bytes was kept as %d bytes (valid UTF-8: %v)", len(long), len(e), utf8.ValidString(e))
	}
	if got := col.events(false, 1, nil); len(got) != 1 {
		t.Errorf("limit 1: got %d", len(got))
	}
}

func ids(ms []telemetry.EventMetrics) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.TaskID)
	}
	return out
}

func TestCollectorWakesWaiters(t *testing.T) {
	col := newTestCollector(newClock(), Config{})
	v, changed := col.version()
	select {
	case <-changed:
		t.Fatal("changed before a record")
	default:
	}
	col.PublishNetworkMetrics(context.Background(), telemetry.NetworkMetrics{TaskID: "n"})
	<-changed
	if v2, _ := col.version(); v2 != v+1 {
		t.Errorf("got version %d, want %d", v2, v+1)
	}
}

func TestVisible(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		keepLines bool
		want      string
	}{
		{"plain", "extract <b>&", false, "extract <b>&"},
		{"controls", "a\x1b[2Jb\x00\x7f", false, `a\x1b[2Jb\x00\x7f`},
		{"c1", "a\u009bb", false, `a\u009bb`},
		{"bidi", "abc\u202edef\u2066", false, `abc\u202edef\u2066`},
		{"separators", "a\u2028b\u2029", false, `a\u2028b\u2029`},
		{"invalid UTF-8", "a\xffb\xc3", false, `a\xffb\xc3`},
		{"lines", "a\nb\tc", false, `a\nb\tc`},
		{"lines kept", "a\nb\tc\r", true, "a\nb\tc\\r"},
		{"non-characters", "a\uFFFEb", false, `a\ufffeb`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := visible(tc.in, tc.keepLines); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 6, "abc…"},
		{"ééééé", 7, "éé…"}, // not cut inside a character
	} {
		if got := clip(tc.in, tc.n); got != tc.want || len(got) > tc.n {
			t.Errorf("clip(%q, %d): got %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// An event name longer than the view keeps (maxName bytes) is counted under
// its cut form: each of its runs adds to the same counts and durations,
// rather than starting them again, and none goes to the other names.
func TestCollectorLongEventName(t *testing.T) {
	col := newTestCollector(newClock(), Config{MaxEventNames: 2})
	ctx := context.Background()
	long := strings.Repeat("x", maxName+50)
	for i := range 5 {
		col.PublishEventMetrics(ctx, event(long, fmt.Sprint(i), time.Duration(i+1)*time.Millisecond, i == 4))
	}
	col.PublishEventMetrics(ctx, event("b", "b1", time.Millisecond, false))
	col.PublishEventMetrics(ctx, event(long, "5", time.Millisecond, false))
	got := col.byName()
	if len(got) != 2 {
		t.Fatalf("got %d names, want the long name and b: %+v", len(got), got)
	}
	l := got[1]
	if l.Name != clip(long, maxName) || l.Completed != 5 || l.Failed != 1 || l.Samples != 6 || l.Max != 5*time.Millisecond {
		t.Errorf("the long name: got %+v, want 5 completed, 1 failed, 6 samples, max 5ms", l)
	}
}
