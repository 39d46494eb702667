package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CollectorEnv is the environment variable that names the OpenTelemetry
// Collector binary the tests start: the build of the module in
// internal/testutil/otelcol, which .ci/run makes (cached) and exports.
const CollectorEnv = "EVENTPIPELINE_OTELCOL"

// collectorHelp says how to get a collector binary.
const collectorHelp = "build it with: export " + CollectorEnv + "=$(.ci/otelcol)   (from the repository's root; " +
	"the first build takes a minute or two, later ones are cached), or run .ci/run"

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// buildCollector runs .ci/otelcol, found from this file's path, once per
// process and returns the path of the binary it prints.
func buildCollector() (string, error) {
	buildOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = errors.New("cannot locate the repository")
			return
		}
		script := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "otelcol")
		cmd := exec.Command("bash", script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			buildErr = fmt.Errorf("%s: %w: %s", script, err, stderr.Bytes())
			return
		}
		built = strings.TrimSpace(string(out))
	})
	return built, buildErr
}

// A Collector is an OpenTelemetry Collector started by [StartCollector]
// for one test: an OTLP/HTTP receiver on 127.0.0.1 and a free port, and a
// file exporter per signal writing into a directory of its own. It is
// stopped when the test ends.
type Collector struct {
	// Endpoint is the base URL of the OTLP/HTTP receiver, such as
	// "http://127.0.0.1:41234"; the signals go to Endpoint+"/v1/metrics"
	// and Endpoint+"/v1/traces".
	Endpoint string
	// Dir holds its config file, its log and the exported files.
	Dir string

	cmd                *exec.Cmd
	done               chan struct{} // closed when the process has exited
	log                string
	metricsOut, traces string
}

// StartCollector starts the collector named by the environment variable
// EVENTPIPELINE_OTELCOL and waits until its receiver answers. Without the
// variable it builds the collector first with .ci/otelcol (once per test
// process; the build is cached, and concurrent test processes wait for one
// another's), so that a plain go test works from a fresh clone. It fails
// the test, saying how to build the collector, if that fails or the binary
// is not an executable file: tests that need a collector never skip. The
// collector is stopped by t.Cleanup, and its log is shown if the test
// failed.
func StartCollector(t testing.TB) *Collector {
	t.Helper()
	bin := os.Getenv(CollectorEnv)
	if bin == "" {
		var err error
		if bin, err = buildCollector(); err != nil {
			t.Fatalf("this test needs the OpenTelemetry Collector of internal/testutil/otelcol, %s is not set, and building it failed: %v; %s", CollectorEnv, err, collectorHelp)
		}
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file (%v): %s", CollectorEnv, bin, err, collectorHelp)
	}
	dir := t.TempDir()
	var lastErr error
	for range 3 { // the free port may be taken in between: try again
		c, err := startCollector(t, bin, dir)
		if err == nil {
			return c
		}
		lastErr = err
	}
	t.Fatalf("the collector did not start: %v", lastErr)
	return nil
}

func startCollector(t testing.TB, bin, dir string) (*Collector, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	sub := filepath.Join(dir, strconv.Itoa(port))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return nil, err
	}
	c := &Collector{
		Endpoint:   "http://" + addr,
		Dir:        sub,
		done:       make(chan struct{}),
		log:        filepath.Join(sub, "collector.log"),
		metricsOut: filepath.Join(sub, "metrics.jsonl"),
		traces:     filepath.Join(sub, "traces.jsonl"),
	}
	config := filepath.Join(sub, "config.yaml")
	if err := os.WriteFile(config, []byte(collectorYAML(addr, c.metricsOut, c.traces)), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c.cmd = cmd
	go func() {
		cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	if err := c.waitReady(60*time.Second, port); err != nil {
		c.stop()
		return nil, fmt.Errorf("%w; its log:\n%s", err, c.Log())
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("collector log:\n%s", c.Log())
		}
	})
	return c, nil
}

// collectorYAML returns the collector's config: the OTLP receiver over
// HTTP only, one file exporter per signal flushing every 100ms, and no
// telemetry of its own (which would listen on a fixed port).
func collectorYAML(addr, metrics, traces string) string {
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  file/metrics:
    path: %s
    flush_interval: 100ms
  file/traces:
    path: %s
    flush_interval: 100ms
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file/metrics]
    traces:
      receivers: [otlp]
      exporters: [file/traces]
`, strconv.Quote(addr), strconv.Quote(metrics), strconv.Quote(traces))
}

// waitReady polls the receiver until it answers over HTTP (any status),
// the process exits or the timeout passes. The collector starts its
// receivers last, once its pipelines are ready. An answer from a process
// other than the collector, which took port before it, is an error
// wrapping errPortTaken.
func (c *Collector) waitReady(timeout time.Duration, port int) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(c.Endpoint + "/v1/metrics")
		if err == nil {
			resp.Body.Close()
			return checkListener(c.cmd.Process.Pid, port)
		}
		select {
		case <-c.done:
			return errors.New("the collector exited during start")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the collector's receiver did not answer after %v", timeout)
		}
	}
}

// stop ends the collector: SIGTERM, then SIGKILL after 10 seconds.
func (c *Collector) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// Log returns what the collector has written to stdout and stderr.
func (c *Collector) Log() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// A MetricPoint is one data point the collector received, with its
// metric's name, unit and kind.
type MetricPoint struct {
	Name        string
	Unit        string
	Kind        string // "sum", "gauge" or "histogram"
	Monotonic   bool   // of a sum
	Temporality string // "cumulative", "delta" or "" (a gauge)
	Resource    map[string]string
	Scope       string
	Attributes  map[string]string
	Start, Time time.Time
	// Value is the value of a sum or gauge point.
	Value float64
	// Count, Sum, Bounds and BucketCounts are those of a histogram point.
	Count        uint64
	Sum          float64
	Bounds       []float64
	BucketCounts []uint64
}

// Key returns the point's name and attributes as name{k=v,...}, keys
// sorted, such as "event_retries_total{event_name=load}".
func (p MetricPoint) Key() string { return p.Name + "{" + formatAttrs(p.Attributes) + "}" }

// A Span is one span the collector received.
type Span struct {
	TraceID      string // 32 hex digits
	SpanID       string // 16 hex digits
	ParentSpanID string // 16 hex digits, or "" for a root span
	Name         string
	Kind         int // OTLP SpanKind: 1 internal, 2 server, 3 client, ...
	Start, End   time.Time
	Attributes   map[string]string
	StatusCode   int // 0 unset, 1 ok, 2 error
	StatusText   string
	Events       []SpanEvent
	Resource     map[string]string
	Scope        string
}

// A SpanEvent is an event of a [Span].
type SpanEvent struct {
	Name       string
	Time       time.Time
	Attributes map[string]string
}

// Metrics returns every metric point the collector has written so far, in
// the order received. Each export is written as one line once flushed
// (every 100ms): poll, such as with [Eventually], for what was just sent.
// A last line not yet complete is left out.
func (c *Collector) Metrics() ([]MetricPoint, error) {
	var points []MetricPoint
	err := readLines(c.metricsOut, func(line []byte) error {
		var doc otlpMetricsJSON
		if err := json.Unmarshal(line, &doc); err != nil {
			return err
		}
		for _, rm := range doc.ResourceMetrics {
			res := attrMap(rm.Resource.Attributes)
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					base := MetricPoint{Name: m.Name, Unit: m.Unit, Resource: res, Scope: sm.Scope.Name}
					switch {
					case m.Sum != nil:
						base.Kind, base.Monotonic, base.Temporality = "sum", m.Sum.IsMonotonic, temporality(m.Sum.AggregationTemporality)
						for _, dp := range m.Sum.DataPoints {
							points = append(points, numberPoint(base, dp))
						}
					case m.Gauge != nil:
						base.Kind = "gauge"
						for _, dp := range m.Gauge.DataPoints {
							points = append(points, numberPoint(base, dp))
						}
					case m.Histogram != nil:
						base.Kind, base.Temporality = "histogram", temporality(m.Histogram.AggregationTemporality)
						for _, dp := range m.Histogram.DataPoints {
							p := base
							p.Attributes = attrMap(dp.Attributes)
							p.Start, p.Time = nanos(dp.StartTimeUnixNano), nanos(dp.TimeUnixNano)
							p.Count = uint64(dp.Count)
							p.Sum = dp.Sum
							p.Bounds = dp.ExplicitBounds
							for _, n := range dp.BucketCounts {
								p.BucketCounts = append(p.BucketCounts, uint64(n))
							}
							points = append(points, p)
						}
					default:
						return fmt.Errorf("metric %s: a kind this helper does not read", m.Name)
					}
				}
			}
		}
		return nil
	})
	return points, err
}

// LatestMetrics returns the last point of each series (name and
// attributes, see [MetricPoint.Key]) the collector received, such as the
// latest value of cumulative counters.
func (c *Collector) LatestMetrics() (map[string]MetricPoint, error) {
	points, err := c.Metrics()
	if err != nil {
		return nil, err
	}
	latest := map[string]MetricPoint{}
	for _, p := range points {
		latest[p.Key()] = p
	}
	return latest, nil
}

// Spans returns every span the collector has written so far, in the order
// received; see [Collector.Metrics] for when they appear.
func (c *Collector) Spans() ([]Span, error) {
	var spans []Span
	err := readLines(c.traces, func(line []byte) error {
		var doc otlpTracesJSON
		if err := json.Unmarshal(line, &doc); err != nil {
			return err
		}
		for _, rs := range doc.ResourceSpans {
			res := attrMap(rs.Resource.Attributes)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := Span{
						TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, Name: s.Name, Kind: s.Kind,
						Start: nanos(s.StartTimeUnixNano), End: nanos(s.EndTimeUnixNano),
						Attributes: attrMap(s.Attributes), StatusCode: s.Status.Code, StatusText: s.Status.Message,
						Resource: res, Scope: ss.Scope.Name,
					}
					for _, e := range s.Events {
						sp.Events = append(sp.Events, SpanEvent{Name: e.Name, Time: nanos(e.TimeUnixNano), Attributes: attrMap(e.Attributes)})
					}
					spans = append(spans, sp)
				}
			}
		}
		return nil
	})
	return spans, err
}

// readLines calls fn with each complete line of the file at path; a
// missing file has none.
func readLines(path string, fn func([]byte) error) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		return nil // a first line still being written
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}

// The OTLP JSON encoding the file exporter writes (the OTLP
// specification's JSON mapping): lowerCamelCase names, 64-bit integers as
// strings, trace and span ids as hex.
type (
	otlpMetricsJSON struct {
		ResourceMetrics []struct {
			Resource     otlpResource `json:"resource"`
			ScopeMetrics []struct {
				Scope   otlpScope `json:"scope"`
				Metrics []struct {
					Name string `json:"name"`
					Unit string `json:"unit"`
					Sum  *struct {
						DataPoints             []otlpNumberPoint `json:"dataPoints"`
						AggregationTemporality int               `json:"aggregationTemporality"`
						IsMonotonic            bool              `json:"isMonotonic"`
					} `json:"sum"`
					Gauge *struct {
						DataPoints []otlpNumberPoint `json:"dataPoints"`
					} `json:"gauge"`
					Histogram *struct {
						DataPoints []struct {
							Attributes        []otlpKeyValue `json:"attributes"`
							StartTimeUnixNano jsonUint       `json:"startTimeUnixNano"`
							TimeUnixNano      jsonUint       `json:"timeUnixNano"`
							Count             jsonUint       `json:"count"`
							Sum               float64        `json:"sum"`
							BucketCounts      []jsonUint     `json:"bucketCounts"`
							ExplicitBounds    []float64      `json:"explicitBounds"`
						} `json:"dataPoints"`
						AggregationTemporality int `json:"aggregationTemporality"`
					} `json:"histogram"`
				} `json:"metrics"`
			} `json:"scopeMetrics"`
		} `json:"resourceMetrics"`
	}
	otlpTracesJSON struct {
		ResourceSpans []struct {
			Resource   otlpResource `json:"resource"`
			ScopeSpans []struct {
				Scope otlpScope `json:"scope"`
				Spans []struct {
					TraceID           string         `json:"traceId"`
					SpanID            string         `json:"spanId"`
					ParentSpanID      string         `json:"parentSpanId"`
					Name              string         `json:"name"`
					Kind              int            `json:"kind"`
					StartTimeUnixNano jsonUint       `json:"startTimeUnixNano"`
					EndTimeUnixNano   jsonUint       `json:"endTimeUnixNano"`
					Attributes        []otlpKeyValue `json:"attributes"`
					Events            []struct {
						Name         string         `json:"name"`
						TimeUnixNano jsonUint       `json:"timeUnixNano"`
						Attributes   []otlpKeyValue `json:"attributes"`
					} `json:"events"`
					Status struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"status"`
				} `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScope struct {
		Name string `json:"name"`
	}
	otlpNumberPoint struct {
		Attributes        []otlpKeyValue `json:"attributes"`
		StartTimeUnixNano jsonUint       `json:"startTimeUnixNano"`
		TimeUnixNano      jsonUint       `json:"timeUnixNano"`
		AsInt             *jsonInt       `json:"asInt"`
		AsDouble          *float64       `json:"asDouble"`
	}
	otlpKeyValue struct {
		Key   string       `json:"key"`
		Value otlpAnyValue `json:"value"`
	}
	otlpAnyValue struct {
		StringValue *string         `json:"stringValue"`
		IntValue    *jsonInt        `json:"intValue"`
		DoubleValue *float64        `json:"doubleValue"`
		BoolValue   *bool           `json:"boolValue"`
		Other       json.RawMessage `json:"arrayValue"`
	}
)

// jsonUint is a uint64 written as a JSON string (or number).
type jsonUint uint64

func (u *jsonUint) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	*u = jsonUint(v)
	return err
}

// jsonInt is an int64 written as a JSON string (or number).
type jsonInt int64

func (i *jsonInt) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(strings.Trim(string(b), `"`), 10, 64)
	*i = jsonInt(v)
	return err
}

func numberPoint(base MetricPoint, dp otlpNumberPoint) MetricPoint {
	p := base
	p.Attributes = attrMap(dp.Attributes)
	p.Start, p.Time = nanos(dp.StartTimeUnixNano), nanos(dp.TimeUnixNano)
	switch {
	case dp.AsInt != nil:
		p.Value = float64(*dp.AsInt)
	case dp.AsDouble != nil:
		p.Value = *dp.AsDouble
	default:
		p.Value = math.NaN()
	}
	return p
}

// attrMap returns attributes as strings: an int or double in Go's format,
// a bool as true or false, an array as its JSON.
func attrMap(kvs []otlpKeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.Value
		switch {
		case v.StringValue != nil:
			m[kv.Key] = *v.StringValue
		case v.IntValue != nil:
			m[kv.Key] = strconv.FormatInt(int64(*v.IntValue), 10)
		case v.DoubleValue != nil:
			m[kv.Key] = strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64)
		case v.BoolValue != nil:
			m[kv.Key] = strconv.FormatBool(*v.BoolValue)
		default:
			m[kv.Key] = string(v.Other)
		}
	}
	return m
}

// formatAttrs returns k=v pairs sorted by key, joined by commas.
func formatAttrs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func nanos(n jsonUint) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

func temporality(t int) string {
	switch t {
	case 1:
		return "delta"
	case 2:
		return "cumulative"
	}
	return ""
}
