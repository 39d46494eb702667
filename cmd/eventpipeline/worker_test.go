package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// writePKI writes the certificates and keys of a test PKI to dir and
// returns their paths.
func writePKI(t *testing.T, dir string, pki *testutil.PKI) (cert, key, ca string) {
	t.Helper()
	cert, key, ca = filepath.Join(dir, "worker.pem"), filepath.Join(dir, "worker-key.pem"), filepath.Join(dir, "ca.pem")
	for path, data := range map[string][]byte{cert: pki.ServerCertPEM, key: pki.ServerKeyPEM, ca: pki.CAPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, ca
}

func TestWorkerFlagsAndRefusals(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writePKI(t, dir, testutil.NewPKI(t))
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name       string
		args       []string
		token      string // EVENTPIPELINE_WORKER_TOKEN
		wantCode   int
		wantStderr string
	}{
		{name: "non-loopback without authentication", args: []string{"--addr", "0.0.0.0:0"}, wantCode: exitUsage,
			wantStderr: "eventpipeline worker: refusing to listen on 0.0.0.0:0 without authentication: anyone who reaches it could run the worker's events; " +
				"set EVENTPIPELINE_WORKER_TOKEN to a shared token (and use --tls-cert/--tls-key), or use --client-ca, or listen on a loopback address\n"},
		{name: "every interface without authentication", args: []string{"--addr", ":8700"}, wantCode: exitUsage, wantStderr: "refusing to listen on :8700 without authentication"},
		{name: "a host name without authentication", args: []string{"--addr", "example.com:8700"}, wantCode: exitUsage, wantStderr: "refusing to listen on example.com:8700"},
		{name: "non-loopback with TLS but no authentication", args: []string{"--addr", "192.0.2.1:1", "--tls-cert", cert, "--tls-key", key},
			wantCode: exitUsage, wantStderr: "refusing to listen on 192.0.2.1:1 without authentication"},
		{name: "non-loopback with a token: listens", args: []string{"--addr", "192.0.2.1:1"}, token: "t0ken",
			wantCode: exitFailure, wantStderr: "listen tcp 192.0.2.1:1"},
		{name: "non-loopback with client certificates: listens", args: []string{"--addr", "192.0.2.1:1", "--tls-cert", cert, "--tls-key", key, "--client-ca", ca},
			wantCode: exitFailure, wantStderr: "listen tcp 192.0.2.1:1"},
		{name: "cert without key", args: []string{"--tls-cert", cert}, wantCode: exitUsage, wantStderr: "--tls-cert and --tls-key go together"},
		{name: "key without cert", args: []string{"--tls-key", key}, wantCode: exitUsage, wantStderr: "--tls-cert and --tls-key go together"},
		{name: "client CA without cert", args: []string{"--client-ca", ca}, wantCode: exitUsage, wantStderr: "--client-ca needs --tls-cert and --tls-key"},
		{name: "unreadable cert", args: []string{"--tls-cert", notPEM, "--tls-key", key}, wantCode: exitFailure, wantStderr: "loading --tls-cert and --tls-key"},
		{name: "client CA without certificates", args: []string{"--tls-cert", cert, "--tls-key", key, "--client-ca", notPEM},
			wantCode: exitFailure, wantStderr: "loading --client-ca: no PEM certificate in " + notPEM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(workerTokenEnv, tc.token)
			stdout, stderr, code := runCmd(t, append([]string{"worker"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("got exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			contains(t, "stderr", stderr, tc.wantStderr)
			if stdout != "" {
				t.Errorf("got stdout %q, want none: the worker must not listen", stdout)
			}
		})
	}
}

// startWorkerCmd runs `worker args...` in this process until the test
// ends and returns the address it listens on.
func startWorkerCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"worker"}, args...), outW, &stderr)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		cancel()
		t.Fatalf("the worker printed nothing; exit code %d, stderr:\n%s", <-done, stderr.String())
	}
	first := lines.Text()
	addr, _, _ := strings.Cut(strings.TrimPrefix(first, "worker listening on "), " ")
	t.Cleanup(func() {
		cancel()
		for lines.Scan() {
			if got := lines.Text(); got != "worker stopped" {
				t.Errorf("got %q after the interrupt, want %q", got, "worker stopped")
			}
		}
		if code := <-done; code != exitOK {
			t.Errorf("got exit code %d after the interrupt, want 0; stderr:\n%s", code, stderr.String())
		}
	})
	t.Logf("%s", first)
	return addr
}

func TestWorkerTLSClientCertificatesAndToken(t *testing.T) {
	pki, other := testutil.NewPKI(t), testutil.NewPKI(t)
	cert, key, ca := writePKI(t, t.TempDir(), pki)
	t.Setenv(workerTokenEnv, "s3cret-token")
	addr := startWorkerCmd(t, "--addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--client-ca", ca)
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	token := telemetry.NewSecret("s3cret-token")
	good := &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.Client}}
	tests := []struct {
		name       string
		tls        *tls.Config
		token      telemetry.Secret
		wantStatus int  // of a RemoteError
		wantFail   bool // a TLS failure
	}{
		{name: "client certificate and token", tls: good, token: token},
		{name: "client certificate, no token", tls: good, wantStatus: 401},
		{name: "client certificate, wrong token", tls: good, token: telemetry.NewSecret("guess"), wantStatus: 401},
		{name: "no client certificate", tls: &tls.Config{RootCAs: pki.CAPool}, token: token, wantFail: true},
		{name: "client certificate of another CA", tls: &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{other.Client}}, token: token, wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := pipeline.Remote("geocode", pipeline.RemoteConfig{Host: host, Port: port, TLS: tc.tls, Token: tc.token, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Process(context.Background(), nil)
			var re *pipeline.RemoteError
			switch {
			case tc.wantStatus != 0:
				if !errors.As(err, &re) || re.StatusCode != tc.wantStatus {
					t.Errorf("got %v, want a RemoteError %d", err, tc.wantStatus)
				}
			case tc.wantFail:
				if err == nil || errors.As(err, &re) {
					t.Errorf("got %v, %v; want the TLS handshake to fail", out, err)
				}
			default:
				if m, ok := out.(map[string]any); err != nil || !ok || m["Lyon"] == nil {
					t.Errorf("got %v, %v; want the geocodes", out, err)
				}
			}
		})
	}
	// Plain HTTP to the TLS worker fails.
	e, _ := pipeline.Remote("geocode", pipeline.RemoteConfig{Host: host, Port: port, Token: token, Timeout: 10 * time.Second})
	var re *pipeline.RemoteError
	if _, err := e.Process(context.Background(), nil); !errors.As(err, &re) || re.StatusCode != 400 {
		t.Errorf("plain HTTP to the TLS worker: got %v, want a 400 answer", err)
	}
}

// TestDemoSendsWorkerToken runs the demo's remote events on a worker
// process that asks for a token; the demo sends it from the same
// environment variable.
func TestDemoSendsWorkerToken(t *testing.T) {
	t.Setenv(workerTokenEnv, "s3cret-token")
	cmd := exec.Command(os.Args[0], "worker", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatal("the worker printed nothing")
	}
	first := lines.Text()
	if !strings.Contains(first, "(http, authentication: token;") {
		t.Errorf("got %q, want it to say the worker asks for a token", first)
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(first, "worker listening on "), " ")

	stdout, stderr, code := runCmd(t, "demo", "--worker", addr, "--out-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("got exit code %d; stderr:\n%s", code, stderr)
	}
	contains(t, "stdout", stdout, "== network operations (4: 2 completed, 2 failed")

	t.Setenv(workerTokenEnv, "")
	stdout, _, _ = runCmd(t, "demo", "--worker", addr, "--out-dir", t.TempDir())
	contains(t, "stdout", stdout, "(401): pipeline: worker: unauthorized: a bearer token is required")
}
