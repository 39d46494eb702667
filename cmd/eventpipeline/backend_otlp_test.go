package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
)

// TestDemoAndWorkerPushOverOTLP runs a worker as a process of its own and
// the demo against it, both with --otlp to a real OpenTelemetry Collector,
// and checks that the collector received the metrics of each: the demo's
// events under service.name eventpipeline, the events the worker ran under
// eventpipeline-worker. A header from OTEL_EXPORTER_OTLP_HEADERS goes along
// (plain http is fine to loopback). Then it checks the traces: the demo's
// run is one trace across the two processes, the worker's event spans
// children of the demo's remote-call client spans.
func TestDemoAndWorkerPushOverOTLP(t *testing.T) {
	c := testutil.StartCollector(t)
	t.Setenv(envOTLPHeaders, "X-Test=a%20b")
	worker := exec.Command(os.Args[0], "worker", "--addr", "127.0.0.1:0", "--otlp", c.Endpoint)
	worker.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
	out, err := worker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	worker.Stderr = &stderr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { worker.Process.Kill(); worker.Wait() })
	lines := bufio.NewScanner(out)
	var addr string
	for lines.Scan() {
		line := lines.Text()
		if rest, ok := strings.CutPrefix(line, "worker listening on "); ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
		if strings.HasPrefix(line, "worker pushing its metrics and traces over OTLP to "+c.Endpoint+"/v1/metrics") {
			break
		}
	}
	if addr == "" {
		t.Fatalf("the worker did not say where it listens and pushes; stderr:\n%s", stderr.String())
	}

	stdout, errOut, code := runCmd(t, "demo", "--quiet", "--worker", addr, "--out-dir", t.TempDir(), "--otlp", c.Endpoint)
	if code != exitOK {
		t.Fatalf("demo: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errOut)
	}
	// The worker pushes its last values when it stops.
	if err := worker.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for lines.Scan() {
		}
		done <- worker.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the worker did not stop after an interrupt")
	}

	testutil.Eventually(t, 30*time.Second, func() error {
		points, err := c.LatestMetrics()
		if err != nil {
			return err
		}
		runs := map[string]uint64{} // service/event_name: runs
		for _, p := range points {
			if p.Name == metricdef.EventDuration {
				runs[p.Resource["service.name"]+"/"+p.Attributes[metricdef.LabelEventName]] += p.Count
			}
		}
		var errs []error
		// geocode and score run on the worker.
		for _, k := range []string{"eventpipeline-worker/geocode", "eventpipeline-worker/score", "eventpipeline/extract", "eventpipeline/load"} {
			if runs[k] == 0 {
				errs = append(errs, fmt.Errorf("no run of %s", k))
			}
		}
		if len(errs) > 0 {
			errs = append(errs, fmt.Errorf("got runs %v", runs))
		}
		return errors.Join(errs...)
	})
	var spans []testutil.Span
	testutil.Eventually(t, 30*time.Second, func() error {
		var err error
		if spans, err = c.Spans(); err != nil {
			return err
		}
		n := 0
		for _, s := range spans {
			if s.Resource["service.name"] == "eventpipeline-worker" {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("no span of the worker among %d", len(spans))
		}
		return nil
	})
	byID := map[string]testutil.Span{}
	var runs []testutil.Span
	for _, s := range spans {
		byID[s.SpanID] = s
		if s.Name == pipeline.RunSpanName {
			runs = append(runs, s)
		}
	}
	if len(runs) != 1 || runs[0].ParentSpanID != "" || runs[0].Resource["service.name"] != "eventpipeline" {
		t.Fatalf("got run spans %+v, want one root span of the demo", runs)
	}
	run := runs[0]
	workerSpans := 0
	for _, s := range spans {
		if s.TraceID != run.TraceID {
			t.Errorf("span %s (%s) is in trace %s, want the run's %s", s.Name, s.Resource["service.name"], s.TraceID, run.TraceID)
		}
		if s.Resource["service.name"] != "eventpipeline-worker" || s.Kind != 1 {
			continue
		}
		workerSpans++
		call, ok := byID[s.ParentSpanID]
		if !ok || call.Kind != 3 || call.Resource["service.name"] != "eventpipeline" {
			t.Errorf("worker span %s: parent %+v, want a client span of the demo", s.Name, call)
			continue
		}
		if s.Attributes["eventpipeline.task.id"] != call.Attributes["eventpipeline.task.id"] {
			t.Errorf("worker span %s has task id %q, want its call's %q", s.Name, s.Attributes["eventpipeline.task.id"], call.Attributes["eventpipeline.task.id"])
		}
		if event, ok := byID[call.ParentSpanID]; !ok || event.Name != s.Name || byID[event.ParentSpanID].SpanID != run.SpanID {
			t.Errorf("call of worker span %s: parent %+v, want the demo's %s span under the run", s.Name, event, s.Name)
		}
	}
	if workerSpans < 2 { // geocode and score
		t.Errorf("got %d event spans of the worker, want at least 2", workerSpans)
	}
}

func TestParseOTLPHeaders(t *testing.T) {
	h, err := parseOTLPHeaders("Authorization=Bearer%20t0ken, X-Scope-OrgID = tenant-1")
	if err != nil || len(h) != 2 || h["Authorization"].Reveal() != "Bearer t0ken" || h["X-Scope-OrgID"].Reveal() != "tenant-1" {
		t.Errorf("got %v, %v", h, err)
	}
	for _, bad := range []string{"novalue", "=x", "k=%zz-s3cret"} {
		if _, err := parseOTLPHeaders(bad); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: got %v, want an error that quotes no value", bad, err)
		}
	}
}

func TestOTLPFlagRefusesHeadersOverPlainHTTP(t *testing.T) {
	t.Setenv(envOTLPHeaders, "Authorization=Bearer%20t0ken")
	_, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(), "--otlp", "http://collector.example.com:4318")
	if code == exitOK || !strings.Contains(errOut, "--otlp-allow-insecure") || strings.Contains(errOut, "t0ken") {
		t.Errorf("got exit code %d, stderr %q; want a failure pointing to --otlp-allow-insecure, without the token", code, errOut)
	}
}

// FuzzParseOTLPHeaders checks that any value of OTEL_EXPORTER_OTLP_HEADERS
// is either parsed into non-empty keys or rejected with an error that
// quotes no value.
func FuzzParseOTLPHeaders(f *testing.F) {
	for _, s := range []string{"Authorization=Bearer%20t0ken", "a=1,b=2", "k=%zz-s3cret", "novalue", "=x", "", " , "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseOTLPHeaders(s)
		if err != nil {
			for pair := range strings.SplitSeq(s, ",") {
				if _, v, ok := strings.Cut(pair, "="); ok && len(v) >= 8 && strings.Contains(err.Error(), v) {
					t.Errorf("error %q quotes the value %q", err, v)
				}
			}
			return
		}
		for k := range h {
			if k == "" || strings.TrimSpace(k) != k {
				t.Errorf("%q: got key %q", s, k)
			}
		}
	})
}

// TestWorkerHidesQuerySecret runs a worker with an --otlp endpoint whose
// query holds a token, which the OTLP exporter would not send: the worker
// refuses it, and its error shows the endpoint with the token replaced by
// xxxxx.
func TestWorkerHidesQuerySecret(t *testing.T) {
	const secret = "s3cr3t-in-the-query"
	worker := exec.Command(os.Args[0], "worker", "--addr", "127.0.0.1:0", "--otlp", "http://127.0.0.1:1/?api_key="+secret)
	worker.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
	var stdout, stderr strings.Builder
	worker.Stdout, worker.Stderr = &stdout, &stderr
	if err := worker.Run(); err == nil {
		t.Fatalf("the worker ran, want it to refuse the endpoint; stdout:\n%s", stdout.String())
	}
	if got := stderr.String(); !strings.Contains(got, "?api_key=xxxxx") || !strings.Contains(got, "must not have a ?query") {
		t.Errorf("got stderr %q, want the refusal with the query value redacted", got)
	}
	if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
		t.Errorf("the worker shows the query's secret:\n%s\n%s", stdout.String(), stderr.String())
	}
}

// TestDemoReportsSpansNotExported runs the demo with --otlp to a receiver
// that takes the metrics but rejects the spans with 400: the demo says on
// stderr how many spans it could not export, logs the rejection once (not
// again through the SDK's error handler), never the header's value, and
// exits 1, as for records a backend did not take.
func TestDemoReportsSpansNotExported(t *testing.T) {
	t.Setenv(envOTLPHeaders, "Authorization=Bearer%20s3cr3t-t0ken")
	var spanRequests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/traces" {
			spanRequests.Add(1)
			http.Error(w, "spans refused", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	_, errOut, code := runCmd(t, "demo", "--quiet", "--out-dir", t.TempDir(), "--otlp", srv.URL)
	if code != exitFailure {
		t.Errorf("got exit code %d, want %d; stderr:\n%s", code, exitFailure, errOut)
	}
	re := regexp.MustCompile(`eventpipeline demo: otlp: (\d+) of (\d+) spans not exported \((\d+) rejected by the endpoint`)
	m := re.FindStringSubmatch(errOut)
	if m == nil || m[1] == "0" || m[1] != m[2] || m[1] != m[3] {
		t.Errorf("got stderr:\n%s\nwant every span reported as not exported, rejected", errOut)
	}
	if spanRequests.Load() == 0 {
		t.Error("no span export reached the receiver")
	}
	if strings.Contains(errOut, "s3cr3t") {
		t.Errorf("stderr reveals the header:\n%s", errOut)
	}
	if n := strings.Count(errOut, "body: spans refused"); n != 1 {
		t.Errorf("got the rejection %d times on stderr, want it logged once:\n%s", n, errOut)
	}
}
