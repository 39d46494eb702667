package rwsend_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/metricpush/rwsend"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// bodyError is the error of a rejected push in these tests: it keeps the
// body text the Sender made of the answer.
type bodyError struct {
	code int
	body string
}

func (e *bodyError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

// push makes one attempt to push an empty snapshot to url and returns its
// result.
func push(t *testing.T, srv *httptest.Server) metricpush.Result {
	t.Helper()
	s := rwsend.New(rwsend.Config{
		URL:            srv.URL,
		Client:         srv.Client(),
		EventBuckets:   metricdef.EventBuckets(),
		LatencyBuckets: metricdef.LatencyBuckets(),
		WaitBuckets:    metricdef.WaitBuckets(),
		Prefix:         "remotewrite",
		StatusError: func(op string, code int, body string) error {
			return &bodyError{code: code, body: body}
		},
	})
	attempt, err := s.Prepare(&metricpush.Snapshot{Time: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return attempt(context.Background())
}

// TestRejectionBodyLength checks the marker that says how long the body
// of a rejection was: the exact length when the whole body was counted,
// "at least" the bytes counted when the count stopped at its bound or at
// a broken connection, never a count that was not measured.
func TestRejectionBodyLength(t *testing.T) {
	const mib = 1 << 20
	// cut is what the error keeps of a long body of x, followed by marker.
	cut := func(marker string) string { return strings.Repeat("x", safetext.MaxBody-len(marker)) + marker }
	tests := []struct {
		name string
		body int // bytes of x in the answer
		sent int // bytes the server sends before it hangs up; 0: all
		want string
	}{
		{"short", 100, 0, strings.Repeat("x", 100)},
		{"MaxBody", safetext.MaxBody, 0, strings.Repeat("x", safetext.MaxBody)},
		{"1 MiB", mib, 0, cut("… [truncated, 1048576 bytes]")},
		{"1 MiB and a byte", mib + 1, 0, cut("… [truncated, at least 1048577 bytes]")},
		{"8 MiB", 8 * mib, 0, cut("… [truncated, at least 1048577 bytes]")},
		{"cut off after 100 KiB of 1 MiB", mib, 100 << 10, cut("… [truncated, at least 102400 bytes]")},
		{"cut off after 100 bytes", mib, 100, strings.Repeat("x", 100) + "… [truncated, at least 100 bytes]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(tc.body))
				w.WriteHeader(http.StatusBadRequest)
				if tc.sent == 0 {
					w.Write([]byte(strings.Repeat("x", tc.body)))
					return
				}
				w.Write([]byte(strings.Repeat("x", tc.sent)))
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close()
			}))
			t.Cleanup(srv.Close)
			res := push(t, srv)
			if res.Status != http.StatusBadRequest {
				t.Errorf("got status %d, want 400", res.Status)
			}
			var be *bodyError
			if !errors.As(res.Err, &be) {
				t.Fatalf("got error %v, want the StatusError's", res.Err)
			}
			if be.code != http.StatusBadRequest || be.body != tc.want {
				t.Errorf("got %d and body\n%q\nwant 400 and\n%q", be.code, be.body, tc.want)
			}
		})
	}
}
