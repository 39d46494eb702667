package testutil

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCollector starts the real collector, posts one metrics and one
// traces request in OTLP JSON, and checks what the helper reads back from
// the file exporter's output.
func TestCollector(t *testing.T) {
	c := StartCollector(t)
	post := func(path, body string) {
		t.Helper()
		resp, err := http.Post(c.Endpoint+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: got status %d, want 200", path, resp.StatusCode)
		}
	}
	post("/v1/metrics", `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
		"scopeMetrics":[{"scope":{"name":"sc"},"metrics":[
		{"name":"event_retries_total","unit":"{retry}","sum":{"aggregationTemporality":2,"isMonotonic":true,
		 "dataPoints":[{"attributes":[{"key":"event_name","value":{"stringValue":"load"}}],"startTimeUnixNano":"1","timeUnixNano":"2000000000","asInt":"7"}]}},
		{"name":"event_duration_seconds","unit":"s","histogram":{"aggregationTemporality":2,
		 "dataPoints":[{"attributes":[{"key":"status","value":{"stringValue":"failed"}},{"key":"n","value":{"intValue":"3"}}],
		 "timeUnixNano":"2","count":"3","sum":4.5,"bucketCounts":["1","2"],"explicitBounds":[1]}]}},
		{"name":"telemetry_publisher_queue_length","gauge":{"dataPoints":[{"asDouble":2.5}]}}]}]}]}`)
	post("/v1/traces", `{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{"name":"tr"},"spans":[
		{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718","parentSpanId":"2122232425262728",
		 "name":"load","kind":3,"startTimeUnixNano":"1000","endTimeUnixNano":"2000",
		 "attributes":[{"key":"ok","value":{"boolValue":true}}],"status":{"code":2,"message":"disk full"},
		 "events":[{"name":"retry","timeUnixNano":"1500"}]}]}]}]}`)

	var latest map[string]MetricPoint
	Eventually(t, 30*time.Second, func() error {
		var err error
		if latest, err = c.LatestMetrics(); err != nil {
			return err
		}
		if len(latest) != 3 {
			return fmt.Errorf("got %d series, want 3", len(latest))
		}
		return nil
	})
	sum := latest["event_retries_total{event_name=load}"]
	if sum.Kind != "sum" || !sum.Monotonic || sum.Temporality != "cumulative" || sum.Value != 7 || sum.Unit != "{retry}" ||
		sum.Resource["service.name"] != "svc" || sum.Scope != "sc" || sum.Time != time.Unix(2, 0) {
		t.Errorf("got sum point %+v", sum)
	}
	h := latest["event_duration_seconds{n=3,status=failed}"]
	if h.Kind != "histogram" || h.Count != 3 || h.Sum != 4.5 || fmt.Sprint(h.BucketCounts) != "[1 2]" || fmt.Sprint(h.Bounds) != "[1]" {
		t.Errorf("got histogram point %+v", h)
	}
	if g := latest["telemetry_publisher_queue_length{}"]; g.Kind != "gauge" || g.Value != 2.5 {
		t.Errorf("got gauge point %+v", g)
	}

	Eventually(t, 30*time.Second, func() error {
		spans, err := c.Spans()
		if err != nil {
			return err
		}
		if len(spans) != 1 {
			return errors.New("no span yet")
		}
		s := spans[0]
		if s.TraceID != "0102030405060708090a0b0c0d0e0f10" || s.SpanID != "1112131415161718" || s.ParentSpanID != "2122232425262728" ||
			s.Name != "load" || s.Kind != 3 || s.Start != time.Unix(0, 1000) || s.End != time.Unix(0, 2000) ||
			s.Attributes["ok"] != "true" || s.StatusCode != 2 || s.StatusText != "disk full" || s.Scope != "tr" ||
			len(s.Events) != 1 || s.Events[0].Name != "retry" || s.Events[0].Time != time.Unix(0, 1500) {
			t.Errorf("got span %+v", s)
		}
		return nil
	})
}
