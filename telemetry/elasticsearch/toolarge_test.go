package elasticsearch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// TestRequestTooLargeIsSplit has a node that accepts bulk bodies of at
// most 2000 bytes (http.max_content_length, or a proxy's limit, below
// FlushBytes): a request it answers 413 is split in halves until each
// fits, so every document is indexed, and only a document too large to
// go alone is dropped, counted once as "http 413".
func TestRequestTooLargeIsSplit(t *testing.T) {
	srv := newServer(t, esfake.Options{MaxContentLength: 2000})
	var logs logBuffer
	pub := newPublisher(t, srv, elasticsearch.Config{SkipTemplate: true, Logger: logs.logger()})
	var b telemetry.Batch
	for i := range 20 {
		b.Events = append(b.Events, eventRecord(fmt.Sprint("t", i), at, telemetry.StatusCompleted, ""))
	}
	if err := pub.PublishBatch(context.Background(), &b); err != nil {
		t.Fatalf("publish: got %v, want every document indexed", err)
	}
	if got := srv.Count(); got != 20 {
		t.Errorf("documents: got %d, want 20", got)
	}
	st := pub.Stats()
	if st.Indexed != 20 || st.Rejected != 0 {
		t.Errorf("stats: got %+v, want 20 indexed, none rejected", st)
	}
	var tooLarge, items int
	for _, r := range srv.Requests() {
		if r.Status == 413 {
			tooLarge++
		} else {
			items += r.Items
		}
	}
	if tooLarge == 0 || items != 20 {
		t.Errorf("requests: got %d answered 413 and %d items indexed, want some 413 and 20 items sent once", tooLarge, items)
	}

	// One document alone is larger than the limit.
	srv.Reset()
	b = telemetry.Batch{}
	for i := range 6 {
		errText := ""
		if i == 4 {
			errText = strings.Repeat("x", 3000)
		}
		b.Events = append(b.Events, eventRecord(fmt.Sprint("u", i), at, telemetry.StatusFailed, errText))
	}
	err := pub.PublishBatch(context.Background(), &b)
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 1 || !strings.Contains(err.Error(), "http 413") {
		t.Fatalf("publish: got %v, want a DroppedError of 1 document refused with http 413", err)
	}
	if got := srv.Count(); got != 5 {
		t.Errorf("documents: got %d, want the 5 that fit", got)
	}
	if st := pub.Stats(); st.Rejected != 1 || st.RejectedByReason["http 413"] != 1 {
		t.Errorf("stats: got %+v, want 1 rejected as http 413", st)
	}
	if got := logs.count(`"error_type":"http 413"`); got != 1 {
		t.Errorf("log lines about the 413: got %d, want 1\n%s", got, logs.String())
	}
}

// TestRequestTooLargeCountedExactly runs the split through a Recorder, in
// a synctest bubble, with a document refused with 429 once and one with a
// mapping error among the halves: each document is counted once, the 429
// one sent again alone.
func TestRequestTooLargeCountedExactly(t *testing.T) {
	srv := newServer(t, esfake.Options{MaxContentLength: 2500})
	calls := map[string]int{}
	srv.SetItemFunc(func(_, _ string, src map[string]any) *esfake.ItemError {
		task, _ := src["task_id"].(string)
		calls[task]++
		switch {
		case task == "t2" && calls[task] == 1:
			return esfake.Rejected()
		case task == "t8":
			return esfake.MappingError("retry_count", "long", task, "many")
		}
		return nil
	})
	synctest.Test(t, func(t *testing.T) {
		pub := newBubblePublisher(t, srv, elasticsearch.Config{SkipTemplate: true})
		rec := newBubbleRecorder(t, pub, telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond})
		recordEvents(t, rec, 10)
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := rec.PublisherStats()[0]
		if got.Published != 9 || got.DroppedFailed != 1 || got.FailedAttempts != 2 {
			t.Errorf("publisher stats: got %+v, want 9 published, 1 dropped, 2 failed attempts (the 429, then the DroppedError)", got)
		}
		if n := srv.Count(); n != 9 {
			t.Errorf("documents: got %d, want 9", n)
		}
		st := pub.Stats()
		if st.Indexed != 9 || st.Retried != 1 || st.Rejected != 1 || st.RejectedByReason["mapper_parsing_exception"] != 1 {
			t.Errorf("elasticsearch stats: got %+v, want 9 indexed, 1 retried, 1 rejected by mapping", st)
		}
		tooLarge := 0
		for _, r := range srv.Requests() {
			if r.Status == 413 {
				tooLarge++
			}
		}
		if tooLarge == 0 {
			t.Error("no request was answered 413: the test does not split")
		}
		for task, n := range calls {
			if want := map[string]int{"t2": 2}[task]; n != max(want, 1) {
				t.Errorf("%s reached the index %d times, want %d", task, n, max(want, 1))
			}
		}
	})
}
