package nettrace_test

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

// waitCollected runs the garbage collector until r holds n finished
// operations, and returns them; it fails after a generous deadline.
func waitCollected(t *testing.T, r *telemetry.Recorder, n int) []telemetry.NetworkMetrics {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		runtime.GC()
		var done []telemetry.NetworkMetrics
		for _, m := range r.Report().NetworkOperations {
			if m.Status != telemetry.StatusPending {
				done = append(done, m)
			}
		}
		if len(done) >= n {
			return done
		}
		if time.Now().After(deadline) {
			_, pending := r.Network().PendingOperations(0)
			t.Fatalf("after 30s of collections: %d operations still pending, want %d finished", pending, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTransportBodyNeverClosed: a response body dropped without being read
// to its end or closed does not leave its operation pending for the life
// of the Recorder: once the body is garbage, the operation fails, saying
// why.
func TestTransportBodyNeverClosed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("never read")) })
	for proto, s := range bothProtocols(t, h) {
		t.Run(proto, func(t *testing.T) {
			r := newRecorder(t)
			func() {
				client := &http.Client{Transport: &nettrace.Transport{Base: s.base, Network: r.Network()}}
				resp, err := client.Get(s.srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Proto != proto {
					t.Fatalf("got %s, want %s", resp.Proto, proto)
				}
				// The body is dropped: neither read nor closed.
			}()
			m := waitCollected(t, r, 1)[0]
			if m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "response body not closed") {
				t.Errorf("got %+v, want failed as a body never closed", m)
			}
		})
	}
}

// TestDialerConnNeverClosed: a connection dropped without Close fails its
// operation once it is garbage, with the bytes it moved.
func TestDialerConnNeverClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	r := newRecorder(t)
	func() {
		d := &nettrace.Dialer{Network: r.Network()}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		// c is dropped without Close.
	}()
	m := waitCollected(t, r, 1)[0]
	if m.Status != telemetry.StatusFailed || m.BytesSent != 5 || !strings.Contains(m.Error, "connection not closed") {
		t.Errorf("got %+v, want failed as a connection never closed, 5 bytes sent", m)
	}
}
