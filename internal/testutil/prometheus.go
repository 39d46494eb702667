// Package testutil holds helpers that only this module's own tests use,
// such as launchers for a real Prometheus server and a real OpenTelemetry
// Collector.
package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// PrometheusConfig says how [StartPrometheus] runs a Prometheus server.
// The zero value runs one that scrapes nothing.
type PrometheusConfig struct {
	// Targets are the host:port addresses scraped, all in one job named
	// "eventpipeline". nil means none.
	Targets []string
	// MetricsPath is the HTTP path scraped on each target. Empty means
	// "/metrics".
	MetricsPath string
	// ScrapeInterval is the scrape (and rule evaluation) interval. Zero
	// means one second.
	ScrapeInterval time.Duration
	// RuleFiles are rule files the server loads. nil means none.
	RuleFiles []string
	// Flags are extra command-line flags, such as
	// "--web.enable-remote-write-receiver" or
	// "--enable-feature=native-histograms".
	Flags []string
	// StartTimeout is how long to wait for the server to become ready.
	// Zero means 60 seconds, as for the other servers of this package: a
	// busy machine (CI starts servers while it compiles the packages'
	// tests) can be slow to start one.
	StartTimeout time.Duration
}

// Prometheus is a Prometheus server started by [StartPrometheus] for one
// test. It is stopped when the test ends.
type Prometheus struct {
	// URL is the server's base URL, such as "http://127.0.0.1:41234".
	URL string
	// API is a client of the server's HTTP API.
	API v1.API
	// Dir holds its config file, data directory and log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string        // path of its output
}

// StartPrometheus starts the prometheus binary found in $PATH as a plain
// process on 127.0.0.1 and a free port, with a config file and data
// directory of its own under t.TempDir(), and waits until it is ready. It
// skips the test if there is no prometheus binary, and fails it if the
// server does not start. The server is stopped by t.Cleanup.
func StartPrometheus(t testing.TB, cfg PrometheusConfig) *Prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skipf("skipping: no prometheus binary in $PATH (%v); install it, e.g. apt-get install prometheus", err)
	}
	if cfg.MetricsPath == "" {
		cfg.MetricsPath = "/metrics"
	}
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = time.Second
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(prometheusYAML(cfg)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The port is found free, then released for the server to take: another
	// process may grab it in between, so a failed start is tried again.
	var lastErr error
	for range 3 {
		p, err := startPrometheus(t, bin, dir, config, cfg)
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return nil
}

func startPrometheus(t testing.TB, bin, dir, config string, cfg PrometheusConfig) (*Prometheus, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	data := filepath.Join(dir, "data-"+strconv.Itoa(port))
	logPath := filepath.Join(dir, "prometheus-"+strconv.Itoa(port)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + data,
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, cfg.Flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Prometheus{URL: "http://" + addr, Dir: dir, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	if err := p.waitReady(cfg.StartTimeout, port); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w; its log:\n%s", err, p.Log())
	}
	client, err := api.NewClient(api.Config{Address: p.URL})
	if err != nil {
		p.stop()
		return nil, err
	}
	p.API = v1.NewAPI(client)
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.Log())
		}
	})
	return p, nil
}

// waitReady polls /-/ready until it answers 200, the process exits or the
// timeout passes. A 200 from a process other than the server, which took
// port before it, is an error wrapping errPortTaken.
func (p *Prometheus) waitReady(timeout time.Duration, port int) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return checkListener(p.cmd.Process.Pid, port)
			}
		}
		select {
		case <-p.done:
			return errors.New("prometheus exited during start")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus not ready after %v", timeout)
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 10 seconds.
func (p *Prometheus) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// RemoteWriteURL returns the URL of the server's remote-write receiver,
// which exists only if Flags held "--web.enable-remote-write-receiver".
func (p *Prometheus) RemoteWriteURL() string { return p.URL + "/api/v1/write" }

// Log returns what the server has written to stdout and stderr.
func (p *Prometheus) Log() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Query runs the instant query q now and returns its result as a vector.
// A scalar result is returned as a vector of one sample without labels.
func (p *Prometheus) Query(ctx context.Context, q string) (model.Vector, error) {
	v, _, _, err := p.API.Query(ctx, q, time.Now())
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	switch v := v.(type) {
	case model.Vector:
		return v, nil
	case *model.Scalar:
		return model.Vector{{Metric: model.Metric{}, Value: v.Value, Timestamp: v.Timestamp}}, nil
	default:
		return nil, fmt.Errorf("query %q: got a %s, want a vector", q, v.Type())
	}
}

// Eventually calls check every 250 ms until it returns nil or timeout
// passes, and then fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// prometheusYAML returns the server's config file.
func prometheusYAML(cfg PrometheusConfig) string {
	var b strings.Builder
	iv := model.Duration(cfg.ScrapeInterval).String()
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", iv, iv)
	if len(cfg.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range cfg.RuleFiles {
			fmt.Fprintf(&b, "  - %s\n", strconv.Quote(f))
		}
	}
	if len(cfg.Targets) == 0 {
		b.WriteString("scrape_configs: []\n")
	} else {
		fmt.Fprintf(&b, "scrape_configs:\n  - job_name: eventpipeline\n    metrics_path: %s\n    static_configs:\n      - targets:\n",
			strconv.Quote(cfg.MetricsPath))
		for _, t := range cfg.Targets {
			fmt.Fprintf(&b, "          - %s\n", strconv.Quote(t))
		}
	}
	return b.String()
}
