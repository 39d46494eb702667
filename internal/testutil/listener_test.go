package testutil

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// takenPort makes the launchers' first port a port that srv, a server of
// this test process, already listens on, as when another process took the
// port found free before the server started could bind it; the next ports
// are free ones. It returns that port.
func takenPort(t *testing.T, addr net.Addr) int {
	t.Helper()
	port := addr.(*net.TCPAddr).Port
	var calls atomic.Int64
	prev := freePort
	freePort = func() (int, error) {
		if calls.Add(1) == 1 {
			return port, nil
		}
		return prev()
	}
	t.Cleanup(func() { freePort = prev })
	return port
}

// answerAll is an HTTP server that answers 200 to everything: a
// Prometheus readiness check or a collector's receiver would take it for
// the server they started.
func answerAll(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	return srv
}

// TestStartRedisPortTaken: a Redis server that answers PING on the port
// found free, before the one started binds it, is not taken for it.
func TestStartRedisPortTaken(t *testing.T) {
	lookBinary(t, "redis-server", redisInstall)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // another process's server: answers every line with PONG
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				lines := bufio.NewScanner(c)
				for lines.Scan() {
					c.Write([]byte("+PONG\r\n"))
				}
			}()
		}
	}()
	taken := takenPort(t, ln.Addr())
	r := StartRedis(t)
	if r.Port == taken {
		t.Fatalf("StartRedis returned the server of another process on port %d", taken)
	}
	if err := checkListener(r.p.cmd.Process.Pid, r.Port); err != nil {
		t.Error(err)
	}
}

// TestStartPrometheusPortTaken: another HTTP server on the port found free
// is not taken for the Prometheus started.
func TestStartPrometheusPortTaken(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("skipping: no prometheus binary in $PATH")
	}
	other := answerAll(t)
	taken := takenPort(t, other.Listener.Addr())
	p := StartPrometheus(t, PrometheusConfig{})
	if strings.HasSuffix(p.URL, ":"+strconv.Itoa(taken)) {
		t.Fatalf("StartPrometheus returned the server of another process at %s", p.URL)
	}
}

// TestStartCollectorPortTaken: another HTTP server on the port found free
// is not taken for the collector started.
func TestStartCollectorPortTaken(t *testing.T) {
	other := answerAll(t)
	taken := takenPort(t, other.Listener.Addr())
	c := StartCollector(t)
	if strings.HasSuffix(c.Endpoint, ":"+strconv.Itoa(taken)) {
		t.Fatalf("StartCollector returned the server of another process at %s", c.Endpoint)
	}
}

// TestStartCollectorPortTakenOnAllAddresses: a server of another process
// listening on every address ([::]:port, which also answers at
// 127.0.0.1:port) is not taken for the collector started either.
func TestStartCollectorPortTakenOnAllAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("skipping: no IPv6 wildcard listener here: %v", err)
	}
	other := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}}
	other.Start()
	t.Cleanup(other.Close)
	taken := takenPort(t, ln.Addr())
	c := StartCollector(t)
	if strings.HasSuffix(c.Endpoint, ":"+strconv.Itoa(taken)) {
		t.Fatalf("StartCollector returned the server of another process at %s", c.Endpoint)
	}
}
