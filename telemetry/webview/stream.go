package webview

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/guess"
)

// stream serves the live updates: server-sent events named "update", each
// with the number of records taken so far, sent when a record has arrived
// (at most one per throttle) and at least every tick, so that ages and
// charts move. The pages' script fetches the page again on each. A stream
// let in by a session ends when the session does.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	// Only the view's own pages open a stream. A page of another site
	// could otherwise hold every one (an EventSource, an image, a no-cors
	// fetch: the browser hides the answer from it, but the stream is open
	// until the next write finds it gone). Browsers say who asks in
	// Sec-Fetch-Site; other clients do not send it.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		http.Error(w, "webview: the live updates are for the view's own pages", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	if h.closed.Load() {
		w.WriteHeader(http.StatusNoContent) // EventSource does not reconnect; the page's script tries again slowly
		return
	}
	if h.streams.Add(1) > int64(h.cfg.MaxStreams) {
		h.streams.Add(-1)
		http.Error(w, "webview: too many live-update streams", http.StatusServiceUnavailable)
		return
	}
	defer h.streams.Add(-1)

	// A stream let in by a session ends with it, at its first wake-up
	// after (within a tick): it would otherwise outlive the session, and
	// one opened with a copy of the cookie would go on. The bearer token
	// does not expire.
	_, bearer := guess.BearerToken(r.Header.Get("Authorization"))
	bySession := !h.sessionKey.IsZero() && !bearer

	rc := http.NewResponseController(w)
	send := func(s string) bool {
		rc.SetWriteDeadline(time.Now().Add(h.writeTimeout)) // an error: the server has no deadlines
		if _, err := io.WriteString(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// Watch for records before the first write: a record that arrives
	// once the client has read it must bring an update, not wait for the
	// next tick.
	_, changed := h.col.version()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if !send("retry: 2000\n\n") {
		return
	}
	tick := time.NewTicker(h.tick)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-changed:
		case <-tick.C:
		}
		if bySession && !h.validSession(r) {
			return
		}
		// After a tick without news too: the ages and charts move.
		var v uint64
		v, changed = h.col.version()
		if !send("event: update\ndata: " + strconv.FormatUint(v, 10) + "\n\n") {
			return
		}
		t := time.NewTimer(h.throttle)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-h.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
}
