package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestListenAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"8080", "127.0.0.1:8080"},
		{"0", "127.0.0.1:0"},
		{":9464", ":9464"}, // Go's meaning: every interface
		{"0.0.0.0:9464", "0.0.0.0:9464"},
		{"127.0.0.1:0", "127.0.0.1:0"},
		{"localhost:9000", "localhost:9000"},
		{"[::1]:80", "[::1]:80"},
	} {
		if got, err := listenAddr("x", tc.in); err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "host", "host:", "host:65536", "99999", "-1", "127.0.0.1:http"} {
		var ue *usageError
		if got, err := listenAddr("x", in); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--x") {
			t.Errorf("%q: got %q, %v; want a usage error naming --x", in, got, err)
		}
	}
}

// warnings returns the lines of s that are warnings.
func warnings(s string) []string {
	var w []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, "warning") {
			w = append(w, line)
		}
	}
	return w
}

// checkWarning checks that stderr has exactly one warning line, about
// what listening beyond loopback, if beyond; else none.
func checkWarning(t *testing.T, addr, stderr, what string, beyond bool) {
	t.Helper()
	w := warnings(stderr)
	switch {
	case !beyond && len(w) != 0:
		t.Errorf("%s: got warnings %q, want none on loopback", addr, w)
	case beyond && (len(w) != 1 || !strings.Contains(w[0], what+" listens on ") || !strings.Contains(w[0], "not only loopback") ||
		strings.Count(stderr, "\n") < 1):
		t.Errorf("%s: got warnings %q, want one line saying %s listens on every network interface; stderr:\n%s", addr, w, what, stderr)
	}
}

// The addresses of the listen tests, and whether each is beyond
// loopback.
var listenCases = []struct {
	addr   string
	beyond bool
}{{":0", true}, {"0.0.0.0:0", true}, {"127.0.0.1:0", false}, {"localhost:0", false}}

func TestListenWarning(t *testing.T) {
	for _, tc := range listenCases {
		ln, err := net.Listen("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		listenWarning(&b, "demo", "the thing", ln.Addr(), "what may happen")
		ln.Close()
		checkWarning(t, tc.addr, b.String(), "the thing", tc.beyond)
		if tc.beyond && !strings.HasPrefix(b.String(), "eventpipeline demo: warning: the thing listens on ") ||
			tc.beyond && !strings.HasSuffix(b.String(), "; what may happen\n") {
			t.Errorf("%s: got %q", tc.addr, b.String())
		}
	}
	t.Run("another address", func(t *testing.T) {
		var b strings.Builder
		listenWarning(&b, "worker", "the worker", &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, "risk")
		if want := "eventpipeline worker: warning: the worker listens on 192.0.2.1:1 (not a loopback address): other machines may reach it; risk\n"; b.String() != want {
			t.Errorf("got %q, want %q", b.String(), want)
		}
	})
}

// TestUIListenWarning starts the web view as demo --ui does: one warning
// line beyond loopback, none on it; and its server has its timeouts and
// limits.
func TestUIListenWarning(t *testing.T) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	for _, tc := range listenCases {
		var b syncBuffer
		u, err := startUI(tc.addr, rec, telemetry.NewSecret("t0ken"), nil, &b)
		if err != nil {
			t.Fatal(err)
		}
		s := u.srv
		if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
			t.Errorf("%s: the server lacks a timeout or a header limit: %+v", tc.addr, s)
		}
		u.stop()
		checkWarning(t, tc.addr, b.String(), "the web view", tc.beyond)
		if strings.Contains(b.String(), "t0ken") {
			t.Errorf("%s: the warning shows the token", tc.addr)
		}
	}
}

// TestPrometheusListenWarning runs demo --prometheus as a subprocess:
// one warning line on stderr beyond loopback, none on it; a bare port is
// loopback.
func TestPrometheusListenWarning(t *testing.T) {
	cases := append(listenCases[:len(listenCases):len(listenCases)], struct {
		addr   string
		beyond bool
	}{"0", false})
	for _, tc := range cases {
		cmd := exec.Command(os.Args[0], "demo", "--quiet", "--out-dir", t.TempDir(), "--prometheus", tc.addr)
		cmd.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var url string
		for lines := bufio.NewScanner(out); lines.Scan(); {
			if u, ok := strings.CutPrefix(lines.Text(), "serving prometheus: "); ok {
				url = u
				break
			}
		}
		if url == "" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: the demo did not say where it serves; stderr:\n%s", tc.addr, stderr.String())
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: got %v, want exit code 0 after an interrupt; stderr:\n%s", tc.addr, err, stderr.String())
		}
		checkWarning(t, tc.addr, stderr.String(), "prometheus", tc.beyond)
	}
}

// TestWorkerListenWarning runs worker with a token: one warning line
// beyond loopback (saying that the token travels in clear text), none on
// it.
func TestWorkerListenWarning(t *testing.T) {
	t.Setenv(workerTokenEnv, "w0rker-token")
	for _, tc := range listenCases {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr syncBuffer
		done := make(chan error, 1)
		go func() { done <- runWorker(ctx, []string{"--addr", tc.addr}, &stdout, &stderr) }()
		testutil.Eventually(t, time.Minute, func() error {
			if !strings.Contains(stdout.String(), "worker listening on ") {
				return errors.New("the worker did not say it listens")
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", tc.addr, err)
		}
		checkWarning(t, tc.addr, stderr.String(), "the worker", tc.beyond)
		if tc.beyond && !strings.Contains(stderr.String(), "travels in clear text") {
			t.Errorf("%s: the warning does not say the token travels in clear text:\n%s", tc.addr, stderr.String())
		}
		if strings.Contains(stderr.String(), "w0rker-token") {
			t.Errorf("%s: stderr shows the token", tc.addr)
		}
	}
}
