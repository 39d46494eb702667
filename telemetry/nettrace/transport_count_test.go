package nettrace_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

// ended is an Observer that keeps every start and end it is given, to
// check that each operation ends exactly once.
type ended struct {
	mu     sync.Mutex
	starts int
	ends   []endCall
}

type endCall struct {
	id             string
	sent, received int64
	err            error
}

func (e *ended) StartOperation(string, string, int, string, ...telemetry.StartOption) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts++
	return nil
}

func (e *ended) EndOperation(id string, sent, received int64, err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ends = append(e.ends, endCall{id, sent, received, err})
	return nil
}

func (e *ended) calls() (int, []endCall) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts, append([]endCall(nil), e.ends...)
}

// bothProtocols starts h over HTTP/1.1 and over HTTP/2 (TLS), and returns
// each server with a base transport that speaks its protocol, with
// compression on, as http.DefaultTransport.
func bothProtocols(t *testing.T, h http.Handler) map[string]struct {
	srv  *httptest.Server
	base *http.Transport
} {
	t.Helper()
	h1 := httptest.NewServer(h)
	t.Cleanup(h1.Close)
	h2 := httptest.NewUnstartedServer(h)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	out := map[string]struct {
		srv  *httptest.Server
		base *http.Transport
	}{}
	for name, s := range map[string]*httptest.Server{"HTTP/1.1": h1, "HTTP/2.0": h2} {
		base := s.Client().Transport.(*http.Transport).Clone()
		t.Cleanup(base.CloseIdleConnections)
		out[name] = struct {
			srv  *httptest.Server
			base *http.Transport
		}{s, base}
	}
	return out
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTransportCountsCompressedBytes: a gzip-encoded response that the
// transport decompresses counts the bytes that came, not the larger
// decompressed body, and the caller still gets the body decompressed,
// with the headers http.Transport gives it.
func TestTransportCountsCompressedBytes(t *testing.T) {
	plain := strings.Repeat("telemetry ", 10_000)
	compressed := gzipped(t, plain)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			io.WriteString(w, plain)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(compressed)
	})
	for proto, s := range bothProtocols(t, h) {
		t.Run(proto, func(t *testing.T) {
			r := newRecorder(t)
			client := &http.Client{Transport: &nettrace.Transport{Base: s.base, Network: r.Network()}}
			req, _ := http.NewRequest(http.MethodGet, s.srv.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != plain || resp.Proto != proto {
				t.Fatalf("got %s %d bytes, %v; want %s and the %d bytes decompressed", resp.Proto, len(got), err, proto, len(plain))
			}
			if !resp.Uncompressed || resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != -1 {
				t.Errorf("got Uncompressed %v, Content-Encoding %q, ContentLength %d; want them as http.Transport sets them",
					resp.Uncompressed, resp.Header.Get("Content-Encoding"), resp.ContentLength)
			}
			if len(req.Header) != 0 {
				t.Errorf("the caller's request was modified: headers %v", req.Header)
			}
			if m := onlyOperation(t, r); m.BytesReceived != int64(len(compressed)) || m.Status != telemetry.StatusCompleted {
				t.Errorf("got %+v, want %d bytes received (compressed), not %d", m, len(compressed), len(plain))
			}

			// A caller that asks for gzip itself gets it as it came.
			r2 := newRecorder(t)
			client = &http.Client{Transport: &nettrace.Transport{Base: s.base, Network: r2.Network()}}
			req, _ = http.NewRequest(http.MethodGet, s.srv.URL, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, compressed) || resp.Uncompressed {
				t.Errorf("got %d bytes, Uncompressed %v; want the %d compressed bytes", len(got), resp.Uncompressed, len(compressed))
			}
			if m := onlyOperation(t, r2); m.BytesReceived != int64(len(compressed)) {
				t.Errorf("got %+v, want %d bytes received", m, len(compressed))
			}
		})
	}
}

// TestTransportCorruptGzipFails: a body that is not the gzip it claims
// to be fails the operation with the decompression error.
func TestTransportCorruptGzipFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, "not gzip at all")
	}))
	t.Cleanup(srv.Close)
	r := newRecorder(t)
	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, gzip.ErrHeader) {
		t.Fatalf("got %v, want gzip.ErrHeader, as http.Transport gives", err)
	}
	if m := onlyOperation(t, r); m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "gzip: invalid header") {
		t.Errorf("got %+v, want failed with the gzip error", m)
	}
}

// TestTransportBodylessResponsesEndAtOnce: a response that cannot have a
// body (to HEAD, 204, 304) ends its operation when RoundTrip returns, over
// HTTP/2 as over HTTP/1.1, and closing its body later ends nothing more.
func TestTransportBodylessResponsesEndAtOnce(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip") // left alone, as http.Transport does with no body
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "body of a GET")
		}
	})
	for proto, s := range bothProtocols(t, h) {
		for _, c := range []struct{ method, path string }{{http.MethodHead, "/"}, {http.MethodGet, "/204"}, {http.MethodGet, "/304"}} {
			t.Run(proto+" "+c.method+" "+c.path, func(t *testing.T) {
				obs := &ended{}
				client := &http.Client{Transport: &nettrace.Transport{Base: s.base, Network: obs}}
				req, _ := http.NewRequest(c.method, s.srv.URL+c.path, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if _, ends := obs.calls(); len(ends) != 1 || ends[0].err != nil || ends[0].received != 0 {
					t.Errorf("%s %d: before Close got ends %+v, want one, completed", resp.Proto, resp.StatusCode, ends)
				}
				if resp.Header.Get("Content-Encoding") != "gzip" || resp.Uncompressed {
					t.Errorf("got Content-Encoding %q, Uncompressed %v; want the header kept, as http.Transport does",
						resp.Header.Get("Content-Encoding"), resp.Uncompressed)
				}
				resp.Body.Close()
				if starts, ends := obs.calls(); starts != 1 || len(ends) != 1 {
					t.Errorf("after Close: got %d starts and ends %+v, want one of each", starts, ends)
				}
			})
		}
	}
}

// resendingTransport reads part of the request body, then sends the
// request again with a body from GetBody, as http.Transport does when the
// connection it picked turns out to be closed.
type resendingTransport struct{ base http.RoundTripper }

func (rt resendingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	io.ReadFull(req.Body, make([]byte, 3))
	req.Body.Close()
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r2 := *req
	r2.Body = body
	return rt.base.RoundTrip(&r2)
}

func TestTransportCountsTheResentBody(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	t.Cleanup(srv.Close)
	r := newRecorder(t)
	client := &http.Client{Transport: &nettrace.Transport{Base: resendingTransport{http.DefaultTransport}, Network: r.Network()}}
	const payload = `{"order":12345,"lines":[1,2,3]}`
	resp, err := client.Post(srv.URL, "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got != payload {
		t.Fatalf("server got %q, want %q", got, payload)
	}
	if m := onlyOperation(t, r); m.BytesSent != int64(len(payload)) {
		t.Errorf("got %d bytes sent, want the %d of the body that was sent", m.BytesSent, len(payload))
	}
}

// TestTransportEndsOnce goes through the ways a response body is done
// with, over both protocols, and checks that each operation ends exactly
// once, with the bytes read and the right error.
func TestTransportEndsOnce(t *testing.T) {
	payload := strings.Repeat("x", 64<<10)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/stall":
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			select {
			case <-block:
			case <-r.Context().Done():
			}
		default:
			io.WriteString(w, payload)
		}
	})
	for proto, s := range bothProtocols(t, h) {
		t.Run(proto, func(t *testing.T) {
			do := func(t *testing.T, ctx context.Context, path string, body io.Reader) (*ended, *http.Response) {
				obs := &ended{}
				client := &http.Client{Transport: &nettrace.Transport{Base: s.base, Network: obs}}
				method := http.MethodGet
				if body != nil {
					method = http.MethodPost
				}
				req, _ := http.NewRequestWithContext(ctx, method, s.srv.URL+path, body)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return obs, resp
			}
			check := func(t *testing.T, obs *ended, wantStarts int) []endCall {
				t.Helper()
				starts, ends := obs.calls()
				if starts != wantStarts || len(ends) != wantStarts {
					t.Fatalf("got %d starts and ends %+v, want %d of each", starts, ends, wantStarts)
				}
				return ends
			}
			t.Run("read to EOF then closed twice", func(t *testing.T) {
				// A body of unknown length: chunked over HTTP/1.1.
				obs, resp := do(t, context.Background(), "/", io.MultiReader(strings.NewReader("hello")))
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				resp.Body.Close()
				if e := check(t, obs, 1)[0]; e.sent != 5 || e.received != int64(len(payload)) || e.err != nil {
					t.Errorf("got %+v, want 5 sent, %d received, no error", e, len(payload))
				}
			})
			t.Run("closed before the end", func(t *testing.T) {
				obs, resp := do(t, context.Background(), "/", nil)
				io.ReadFull(resp.Body, make([]byte, 10))
				resp.Body.Close()
				if e := check(t, obs, 1)[0]; e.received != 10 || e.err != nil {
					t.Errorf("got %+v, want 10 received, completed", e)
				}
			})
			t.Run("redirect: one operation per request", func(t *testing.T) {
				obs, resp := do(t, context.Background(), "/redirect", nil)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ends := check(t, obs, 2)
				if ends[1].received != int64(len(payload)) || ends[0].err != nil || ends[1].err != nil {
					t.Errorf("got %+v, want the redirect then the final response, completed", ends)
				}
			})
			t.Run("context cancelled mid-body", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				obs, resp := do(t, ctx, "/stall", nil)
				b := make([]byte, 4)
				io.ReadFull(resp.Body, b)
				cancel()
				_, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				e := check(t, obs, 1)[0]
				if err == nil || !errors.Is(e.err, context.Canceled) || e.received != 4 {
					t.Errorf("read error %v, recorded %+v; want 4 received and failed with context.Canceled", err, e)
				}
			})
		})
	}
}

// TestTransportConcurrent sends requests from many goroutines through one
// Transport into one Recorder (run with -race): every operation ends, with
// its own counts, and none stays pending.
func TestTransportConcurrent(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(bytes.Repeat(b, 2))
	})
	for proto, s := range bothProtocols(t, h) {
		t.Run(proto, func(t *testing.T) {
			r := newRecorder(t)
			client := &http.Client{Transport: &nettrace.Transport{Base: s.base, Network: r.Network()}}
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					body := strings.Repeat("y", 100+i)
					resp, err := client.Post(s.srv.URL, "text/plain", strings.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				})
			}
			wg.Wait()
			ops := r.Report().NetworkOperations
			if len(ops) != 20 {
				t.Fatalf("got %d operations, want 20", len(ops))
			}
			for _, m := range ops {
				if m.Status != telemetry.StatusCompleted || m.BytesReceived != 2*m.BytesSent || m.BytesSent < 100 {
					t.Errorf("got %+v, want completed with twice the bytes back", m)
				}
			}
			if _, n := r.Network().PendingOperations(0); n != 0 {
				t.Errorf("got %d pending operations, want 0", n)
			}
		})
	}
}

// TestTransportBrokenBaseClosesBody: when the base returns neither a
// response nor an error, RoundTrip fails, and, as the RoundTripper
// contract asks of it on every error, closes the request body (the base
// left it open).
func TestTransportBrokenBaseClosesBody(t *testing.T) {
	r := newRecorder(t)
	body := &closeRecorder{Reader: strings.NewReader("abc")}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", body)
	tr := &nettrace.Transport{Network: r.Network(), Base: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })}
	if _, err := tr.RoundTrip(req); err == nil || !body.closed {
		t.Errorf("got %v, body closed %v; want an error and the body closed", err, body.closed)
	}
}

// TestTransportRedirectsUnderOneTaskID: the requests of a redirect share
// their context, so the task id of WithTaskID: http.Client closes each
// redirect's body before it sends the next request, so every request is
// recorded, one after the other, under that id.
func TestTransportRedirectsUnderOneTaskID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a":
			http.Redirect(w, r, "/b", http.StatusFound)
		case "/b":
			http.Redirect(w, r, "/c", http.StatusTemporaryRedirect)
		default:
			io.WriteString(w, "done")
		}
	}))
	t.Cleanup(srv.Close)
	r := newRecorder(t)
	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}
	req, _ := http.NewRequestWithContext(nettrace.WithTaskID(context.Background(), "job-1"), http.MethodGet, srv.URL+"/a", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ops := r.Report().NetworkOperations
	if len(ops) != 3 {
		t.Fatalf("got %d operations, want 3 (two redirects and the final request): %+v", len(ops), ops)
	}
	for _, m := range ops {
		if m.TaskID != "job-1" || m.Status != telemetry.StatusCompleted {
			t.Errorf("got %+v, want completed under job-1", m)
		}
	}
}
