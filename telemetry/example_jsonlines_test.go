package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A file whose writer was killed in the middle of a line: every complete
// record is read, and the torn end is reported.
func ExampleErrTornLine() {
	input := `{"metric_type":"event","event_name":"load","task_id":"t1","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":"completed"}
{"metric_type":"event","event_name":"lo`
	events, _, err := telemetry.ReadJSONLines(strings.NewReader(input))
	if errors.Is(err, telemetry.ErrTornLine) {
		fmt.Println("warning:", err)
	} else if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(len(events), "record(s):", events[0].TaskID, events[0].Duration())
	// Output:
	// warning: telemetry: read JSON lines: line 2: torn last line: 39 bytes with no newline after them are not a complete record; ignored
	// 1 record(s): t1 1s
}

// A record that breaks the record contract is not written, so that every
// line of the file can be read back.
func ExampleErrInvalidRecord() {
	p, _ := telemetry.NewJSONLinesPublisher(os.Stdout)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := p.PublishNetworkMetrics(context.Background(), telemetry.NetworkMetrics{
		TaskID: "t1", Operation: "remote_call", Host: "worker", Port: 8700,
		StartTime: start, EndTime: start.Add(time.Second), Status: telemetry.StatusCompleted, BytesSent: -2,
	})
	fmt.Println(errors.Is(err, telemetry.ErrInvalidRecord))
	fmt.Println(err)
	// Output:
	// true
	// telemetry: 1 record(s) dropped: invalid record: network task "t1": bytes_sent is -2, want 0 or more
}
