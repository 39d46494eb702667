package metricdef_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestStatusValuesAreTheCore(t *testing.T) {
	if metricdef.StatusCompleted != string(telemetry.StatusCompleted) || metricdef.StatusFailed != string(telemetry.StatusFailed) {
		t.Errorf("got statuses %q, %q, want the core's %q, %q",
			metricdef.StatusCompleted, metricdef.StatusFailed, telemetry.StatusCompleted, telemetry.StatusFailed)
	}
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("x", 256<<10)
	tests := []struct {
		name, in string
		same     bool // returned unchanged
	}{
		{"plain", "load", true},
		{"empty", "", true},
		{"max length", strings.Repeat("a", label.MaxLen), true},
		{"too long", long, false},
		{"invalid UTF-8", "a\xff", false},
		{"overflow", metricdef.Overflow, false},
		{"overflow prefix", metricdef.Overflow + "x", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := metricdef.LabelValue(tc.in)
			if (got == tc.in) != tc.same {
				t.Errorf("LabelValue(%.40q) = %.40q, want it unchanged: %v", tc.in, got, tc.same)
			}
			if len(got) > label.MaxLen || !utf8.ValidString(got) {
				t.Errorf("LabelValue(%.40q) = %.40q: %d bytes, valid %v; want at most %d valid bytes",
					tc.in, got, len(got), utf8.ValidString(got), label.MaxLen)
			}
			if got == metricdef.Overflow {
				t.Errorf("LabelValue(%.40q) is the reserved %q", tc.in, metricdef.Overflow)
			}
			if again := metricdef.LabelValue(tc.in); again != got {
				t.Errorf("LabelValue is not stable: %q then %q", got, again)
			}
		})
	}
	// Values that differ only in invalid bytes, or past the length limit,
	// stay distinct.
	distinct := []string{"a\xff", "a\xfe", "a\uFFFD", long, long + "y", metricdef.Overflow, "_overflow~"}
	seen := map[string]string{}
	for _, in := range distinct {
		v := metricdef.LabelValue(in)
		if prev, ok := seen[v]; ok {
			t.Errorf("LabelValue(%.20q) and LabelValue(%.20q) are both %.40q", prev, in, v)
		}
		seen[v] = in
	}
	if got := metricdef.LabelValue(metricdef.Overflow); !strings.HasPrefix(got, metricdef.Overflow+"~") || len(got) != len(metricdef.Overflow)+17 {
		t.Errorf("LabelValue(%q) = %q, want it with a ~ and 16 hex digits", metricdef.Overflow, got)
	}
}

func TestLabelValueAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { metricdef.LabelValue("transform") }); n != 0 {
		t.Errorf("LabelValue of a plain name: %v allocations, want 0", n)
	}
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		name string
		get  func() []float64
	}{{"event", metricdef.EventBuckets}, {"latency", metricdef.LatencyBuckets}, {"wait", metricdef.WaitBuckets}} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.get()
			if len(b) == 0 || !slices.IsSorted(b) || slices.Compact(slices.Clone(b)) == nil || len(slices.Compact(slices.Clone(b))) != len(b) {
				t.Errorf("got %v, want strictly increasing bounds", b)
			}
			b[0] = -1
			if tc.get()[0] == -1 {
				t.Error("changing the returned slice changed the defaults")
			}
		})
	}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"completed event", metricdef.CheckEvent("e", "completed"), nil},
		{"failed event", metricdef.CheckEvent("e", "failed"), nil},
		{"pending event", metricdef.CheckEvent("e", "pending"), metricdef.ErrNotFinished},
		{"unknown status", metricdef.CheckEvent("e", "done"), metricdef.ErrNotFinished},
		{"empty name", metricdef.CheckEvent("", "completed"), metricdef.ErrEmptyEventName},
		{"completed operation", metricdef.CheckNetwork("completed", 0, 1), nil},
		{"pending operation", metricdef.CheckNetwork("pending", 0, 0), metricdef.ErrNotFinished},
		{"negative sent", metricdef.CheckNetwork("failed", -1, 0), metricdef.ErrNegativeBytes},
		{"negative received", metricdef.CheckNetwork("completed", 0, -2), metricdef.ErrNegativeBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) || (tc.want == nil) != (tc.err == nil) {
				t.Errorf("got %v, want %v", tc.err, tc.want)
			}
		})
	}
}

func TestCheckBuckets(t *testing.T) {
	tests := []struct {
		name string
		b    []float64
		want []string
	}{
		{"nil: the defaults", nil, nil},
		{"increasing", []float64{0.1, 1, 10}, nil},
		{"empty", []float64{}, []string{"B is empty: leave it nil for the defaults"}},
		{"NaN and infinity", []float64{math.NaN(), 1, math.Inf(1)}, []string{"B[0] is NaN: bounds must be finite", "B[2] is +Inf: bounds must be finite"}},
		{"not increasing", []float64{1, 2, 2, 1}, []string{"B are not strictly increasing: 2 after 2", "B are not strictly increasing: 1 after 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := metricdef.CheckBuckets("B", tc.b); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCheckBounds checks CheckBounds: the checks of CheckBuckets but for
// the one for an empty slice, which it accepts.
func TestCheckBounds(t *testing.T) {
	tests := []struct {
		name string
		b    []float64
		want []string
	}{
		{"nil", nil, nil},
		{"empty", []float64{}, nil},
		{"increasing", []float64{-1, 0, 1e300}, nil},
		{"infinities", []float64{math.Inf(-1), 1, math.Inf(1)}, []string{"B[0] is -Inf: bounds must be finite", "B[2] is +Inf: bounds must be finite"}},
		{"NaN", []float64{1, math.NaN()}, []string{"B[1] is NaN: bounds must be finite"}},
		{"decreasing", []float64{1, 0.5}, []string{"B are not strictly increasing: 0.5 after 1"}},
		{"duplicate", []float64{1, 1}, []string{"B are not strictly increasing: 1 after 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := metricdef.CheckBounds("B", tc.b); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.b != nil && len(tc.b) == 0 {
				return
			}
			if got := metricdef.CheckBuckets("B", tc.b); !slices.Equal(got, tc.want) {
				t.Errorf("CheckBuckets: got %q, want %q, as CheckBounds", got, tc.want)
			}
		})
	}
}
