package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestVariationPhases(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		after          time.Duration
		incident, slow bool
	}{
		{0, true, false},
		{29 * time.Second, true, false},
		{30 * time.Second, false, false},
		{45 * time.Second, false, true},
		{55 * time.Second, false, false},
		{90 * time.Second, true, false},
		{105 * time.Second, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.after.String(), func(t *testing.T) {
			v := &variation{start: start, now: func() time.Time { return start.Add(tc.after) }}
			if v.incident() != tc.incident || v.slowWorker() != tc.slow {
				t.Errorf("got incident %v, slow worker %v; want %v, %v", v.incident(), v.slowWorker(), tc.incident, tc.slow)
			}
			for range 100 {
				if d := v.latency(100 * time.Millisecond); d < 60*time.Millisecond || d > 420*time.Millisecond {
					t.Fatalf("latency of 100ms: got %v, want 60ms to 420ms", d)
				}
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		var v *variation
		if v.incident() || v.slowWorker() || v.chance(1, 1) || v.latency(time.Second) != time.Second {
			t.Error("a nil variation varies")
		}
	})
}

func TestUIFlag(t *testing.T) {
	t.Setenv(uiTokenEnv, "")
	for _, tc := range []struct{ arg, want string }{
		{"8080", "127.0.0.1:8080"},
		{"127.0.0.1:0", "127.0.0.1:0"},
		{"localhost:9000", "localhost:9000"},
		{"[::1]:80", "[::1]:80"},
	} {
		f, err := parseDemoFlags([]string{"--ui", tc.arg}, io.Discard)
		if err != nil || f.ui != tc.want || !f.continuous() {
			t.Errorf("--ui %s: got %q, %v (continuous %v); want %s", tc.arg, f.ui, err, f.continuous(), tc.want)
		}
	}
	t.Setenv(uiTokenEnv, "tok")
	if f, err := parseDemoFlags([]string{"--ui", "0.0.0.0:8080"}, io.Discard); err != nil || f.uiToken.Reveal() != "tok" {
		t.Errorf("--ui 0.0.0.0:8080 with a token: got %v, token set %v", err, !f.uiToken.IsZero())
	}
}

// TestDemoDuration runs the demo that keeps running for a short while: it
// ends by itself, with the summary and the files, and exit code 0.
func TestDemoDuration(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runCmd(t, "demo", "--quiet", "--duration", "1500ms", "--out-dir", dir)
	if code != exitOK {
		t.Fatalf("got exit code %d, want 0; stderr:\n%s", code, stderr)
	}
	contains(t, "stdout", stdout, "running the sample pipeline again and again for 1.5s",
		"Ran the sample pipeline", "stopped after 1.5s", "== events by status", "== retry statistics", "telemetry.jsonl (")
	if strings.Contains(stdout, "press Ctrl-C") || stderr != "" {
		t.Errorf("with nothing served the demo waited, or wrote on stderr:\n%s\n%s", stdout, stderr)
	}
	f, err := os.Open(filepath.Join(dir, "telemetry.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, network, err := telemetry.ReadJSONLines(f)
	if err != nil || len(events) < 6 || len(network) == 0 {
		t.Errorf("got %d events, %d network operations, %v; want a run's worth or more", len(events), len(network), err)
	}
}

// TestDemoLiveWithPrometheusAndWebView runs `demo --prometheus --ui` with a
// token, as a subprocess, and a real Prometheus that scrapes it with the
// alerting rules: the failure-rate alert fires on the demo's data, the web
// view asks for the token and shows the failures, and Ctrl-C ends the demo
// with its summary and exit code 0. The rules' "for" durations (10 minutes
// for the failure rate) are set to 0 in the copy that the server loads, so
// that "firing" does not take ten minutes.
func TestDemoLiveWithPrometheusAndWebView(t *testing.T) {
	const token = "ui-t0ken"
	cmd := exec.Command(os.Args[0], "demo", "--quiet", "--out-dir", t.TempDir(),
		"--prometheus", "127.0.0.1:0", "--ui", "127.0.0.1:0", "--duration", "10m")
	cmd.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1", uiTokenEnv+"="+token)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	serving := map[string]string{}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		line := lines.Text()
		if rest, ok := strings.CutPrefix(line, "serving "); ok {
			name, u, _ := strings.Cut(rest, ": ")
			serving[name] = u
		}
		if strings.HasPrefix(line, "running the sample pipeline again and again for 10m0s") {
			break
		}
	}
	metricsURL, viewURL := serving["prometheus"], serving["web view"]
	if !strings.HasPrefix(metricsURL, "http://127.0.0.1:") || !strings.HasPrefix(viewURL, "http://127.0.0.1:") {
		t.Fatalf("the demo did not say what it serves (got %v); stderr:\n%s", serving, stderr.String())
	}
	var stdout syncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		for lines.Scan() {
			fmt.Fprintln(&stdout, lines.Text())
		}
		io.Copy(io.Discard, out)
	}()

	u, err := url.Parse(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{
		Targets:     []string{u.Host},
		MetricsPath: u.Path,
		RuleFiles:   []string{alertsWithoutFor(t)},
	})
	testutil.Eventually(t, time.Minute, func() error {
		res, err := prom.API.Alerts(context.Background())
		if err != nil {
			return err
		}
		var seen []string
		for _, a := range res.Alerts {
			if a.Labels["alertname"] == "EventFailureRateHigh" && a.State == v1.AlertStateFiring {
				return nil
			}
			seen = append(seen, fmt.Sprintf("%s %s %s", a.Labels["alertname"], a.Labels["event_name"], a.State))
		}
		return fmt.Errorf("EventFailureRateHigh is not firing; alerts: %v", seen)
	})

	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, viewURL+strings.TrimPrefix(path, "/"), nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/failed", ""); code != http.StatusUnauthorized {
		t.Errorf("the web view without the token: got %d, want 401", code)
	}
	if code, body := get("/failed", token); code != 200 || !strings.Contains(body, "connection refused") {
		t.Errorf("the failed runs: got %d, want 200 with the notify service's failures:\n%s", code, body)
	}
	if code, body := get("/", token); code != 200 || !strings.Contains(body, "prometheus") || !strings.Contains(body, "webview") {
		t.Errorf("the overview: got %d, want 200 with both publishers:\n%s", code, body)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Errorf("got %v, want exit code 0 after Ctrl-C; stderr:\n%s", err, stderr.String())
	}
	contains(t, "stdout", stdout.String(), "stopped by Ctrl-C", "== events by status", "== failed events", "connection refused", "telemetry.jsonl (")
	if strings.Contains(stderr.String(), token) {
		t.Error("the token is on stderr")
	}
}

// alertsWithoutFor writes a copy of the example alerting rules whose "for"
// durations are 0, and returns its path.
func alertsWithoutFor(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "telemetry", "prometheus_alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(b, []byte("${1}for: 0s"))
	if !strings.Contains(string(rules), "for: 0s") {
		t.Fatal("no for: in the rules")
	}
	path := filepath.Join(t.TempDir(), "alerts.yml")
	if err := os.WriteFile(path, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestDemoReusesWorkerConnections runs the demo that keeps running against
// a worker that counts its connections, and checks that the runs share
// them: a new set of remote events for each run had a transport of its
// own each time, whose idle connections piled up (hundreds of file
// descriptors within the worker's minute of idle timeout, enough for "too
// many open files" under a limit of 256).
func TestDemoReusesWorkerConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	stop, err := serveWorkerWith(cl, pipeline.WorkerConfig{Logger: slog.New(slog.DiscardHandler)}, workerEvents(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	var stdout, stderr strings.Builder
	err = runDemo(context.Background(), []string{"--quiet", "--duration", "2s", "--worker", ln.Addr().String(), "--out-dir", t.TempDir()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`Ran the sample pipeline (\d+) times`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no count of runs in:\n%s", stdout.String())
	}
	runs, _ := strconv.Atoi(m[1])
	// geocode and score run at once: two connections, kept for every run.
	if n := cl.n.Load(); runs < 2 || n > 2 {
		t.Errorf("%d runs made %d connections to the worker, want at most 2 for 2 runs or more", runs, n)
	}
}

// TestNotifyServiceFollowsTheIncidents checks that the notify service
// listens while the variation is calm and refuses connections during an
// incident, on the variation's clock, set by the test. The service checks
// the phase every 100ms: the test polls, with a generous deadline.
func TestNotifyServiceFollowsTheIncidents(t *testing.T) {
	start := time.Unix(1000, 0)
	var mu sync.Mutex
	elapsed := 30 * time.Second // calm
	v := &variation{start: start, now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return start.Add(elapsed)
	}}
	setPhase := func(d time.Duration) {
		mu.Lock()
		elapsed = d
		mu.Unlock()
	}
	s, err := startNotifyService(v, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	waitUp := func(want bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			if (err == nil) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("service at %s: want up %v, got dial error %v", addr, want, err)
			}
		}
	}
	waitUp(true)
	setPhase(90 * time.Second) // an incident
	waitUp(false)
	setPhase(125 * time.Second) // calm again
	waitUp(true)
}
