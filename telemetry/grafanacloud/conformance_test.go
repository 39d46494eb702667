package grafanacloud

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

// conformanceIDs returns the task ids of the first n records of the
// conformance kit. A metrics backend delivers counts, not task ids: n
// records counted stand for the first n ids the kit recorded.
func conformanceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("conformance-", i)
	}
	return ids
}

// TestConformanceRemoteWrite runs the conformance kit against Publishers
// pushing with remote write to a real Prometheus, each with an instance
// label of its own, and reads what was delivered back with PromQL.
func TestConformanceRemoteWrite(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	n := 0
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		n++
		return NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: prom.RemoteWriteURL(),
			Job: "conformance", Instance: "c" + strconv.Itoa(n), Interval: time.Hour, Logger: quiet})
	}, func() (events, network []string) {
		sel := `job="conformance",instance="c` + strconv.Itoa(n) + `"`
		count := func(q string) int {
			v, err := prom.Query(t.Context(), q)
			if err != nil {
				t.Errorf("query: %v", err)
				return 0
			}
			if len(v) != 1 {
				return 0
			}
			return int(v[0].Value)
		}
		return conformanceIDs(count(`sum(event_duration_seconds_count{` + sel + `,event_name="conformance"})`)),
			conformanceIDs(count(`sum(network_latency_seconds_count{` + sel + `,operation="remote_call"})`))
	})
	if err != nil {
		t.Error(err)
	}
}

// TestConformanceOTLP runs the conformance kit against Publishers pushing
// with OTLP to a local receiver that decodes the requests with the official
// OTLP types, and reads what was delivered from the last request.
func TestConformanceOTLP(t *testing.T) {
	var rc *otlpReceiver
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		rc = newOTLPReceiver(t, "123456", testKey)
		return NewPublisher(Config{APIKey: testKey, OrgSlug: "123456", Endpoint: rc.URL + "/otlp", Interval: time.Hour, Logger: quiet})
	}, func() (events, network []string) {
		req, _, n := rc.last()
		if n == 0 {
			return nil, nil
		}
		points, _ := otlpPoints(t, req)
		var ev, ops uint64
		for k, v := range points {
			switch {
			case strings.HasPrefix(k, "event_duration_seconds{event_name=conformance,") && strings.HasSuffix(k, "}_count"):
				ev += v.(uint64)
			case k == "network_latency_seconds{operation=remote_call}_count":
				ops += v.(uint64)
			}
		}
		return conformanceIDs(int(ev)), conformanceIDs(int(ops))
	})
	if err != nil {
		t.Error(err)
	}
}
