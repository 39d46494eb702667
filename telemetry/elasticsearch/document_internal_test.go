package elasticsearch

import (
	"strconv"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestIndexNamerAcrossTheEpoch checks the day cache of indexNamer against
// EventIndex for records of consecutive days on both sides of the Unix
// epoch, where seconds since the epoch are negative and division rounds
// toward zero.
func TestIndexNamerAcrossTheEpoch(t *testing.T) {
	n := indexNamer{prefix: "p"}
	for _, start := range []time.Time{
		time.Date(1969, 12, 30, 23, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 6, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC),
	} {
		got := n.quoted(0, eventIndexPart, start)
		if want := strconv.Quote(EventIndex("p", telemetry.EventMetrics{StartTime: start})); got != want {
			t.Errorf("%v: got %s, want %s", start, got, want)
		}
	}
}
