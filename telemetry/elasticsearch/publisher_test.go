package elasticsearch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

func TestPublishBatchDocuments(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{IndexPrefix: "pipeline-metrics"})

	ev := eventRecord("t1", at, telemetry.StatusFailed, "boom: \"quoted\"\nsecond line")
	ok := eventRecord("t2", at.Add(3*time.Second), telemetry.StatusCompleted, "") // 2026-03-02 UTC
	ok.ProcessID, ok.PipelineID, ok.RetryCount = 0, "", 0
	nw := networkRecord("t1", at)
	b := &telemetry.Batch{Events: []telemetry.EventMetrics{ev, ok}, Network: []telemetry.NetworkMetrics{nw}}
	if err := pub.PublishBatch(context.Background(), b); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}

	want := []struct {
		index  string
		record any
		start  time.Time
	}{
		{"pipeline-metrics-event-2026.03.01", ev, ev.StartTime},
		{"pipeline-metrics-event-2026.03.02", ok, ok.StartTime},
		{"pipeline-metrics-network-2026.03.01", nw, nw.StartTime},
	}
	if got, wantN := srv.Indices(), []string{want[0].index, want[1].index, want[2].index}; !reflect.DeepEqual(got, wantN) {
		t.Fatalf("indices: got %q, want %q", got, wantN)
	}
	for _, w := range want {
		docs := srv.Docs(w.index)
		if len(docs) != 1 {
			t.Fatalf("index %s: got %d documents, want 1", w.index, len(docs))
		}
		if got, wantDoc := docs[0].Source, wantDoc(t, w.record, w.start); !reflect.DeepEqual(got, wantDoc) {
			t.Errorf("index %s: document\n got %v\nwant %v", w.index, got, wantDoc)
		}
		if got, want := docs[0].ID, elasticsearch.DocumentID(w.record); got != want {
			t.Errorf("index %s: _id got %q, want %q", w.index, got, want)
		}
	}
	// Spot-check the documented contract fields in the raw JSON.
	raw := string(srv.Docs(want[0].index)[0].Raw)
	for _, s := range []string{
		`"@timestamp":"2026-03-01T23:59:58.123456789Z"`, `"metric_type":"event"`, `"event_name":"load_orders"`,
		`"status":"failed"`, `"duration_seconds":1.5`, `"start_time":"2026-03-01T23:59:58.123456789Z"`,
	} {
		if !strings.Contains(raw, s) {
			t.Errorf("document %s lacks %s", raw, s)
		}
	}
	if got := srv.BulkRequests(); got != 1 {
		t.Errorf("bulk requests: got %d, want 1", got)
	}
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/_bulk") && r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("bulk Content-Type: got %q, want application/x-ndjson", r.Header.Get("Content-Type"))
		}
	}
}

func TestIndexNamesUseUTCDate(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		want  string
	}{
		{"before UTC midnight, next day locally", time.Date(2026, 1, 1, 1, 30, 0, 0, time.FixedZone("", 2*3600)), "p-event-2025.12.31"},
		{"after UTC midnight, previous day locally", time.Date(2025, 12, 31, 20, 0, 0, 0, time.FixedZone("", -5*3600)), "p-event-2026.01.01"},
		{"exactly midnight", time.Date(2026, 7, 4, 0, 0, 0, 0, time.UTC), "p-event-2026.07.04"},
		{"last nanosecond", time.Date(2026, 7, 4, 23, 59, 59, 999999999, time.UTC), "p-event-2026.07.04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.EventMetrics{StartTime: tc.start}
			if got := elasticsearch.EventIndex("p", m); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			n := telemetry.NetworkMetrics{StartTime: tc.start}
			if got, want := elasticsearch.NetworkIndex("p", n), strings.Replace(tc.want, "-event-", "-network-", 1); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestHostWithoutScheme(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{Hosts: []string{srv.Addr()}}) // "127.0.0.1:port"
	if err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, "")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := srv.Count(); got != 1 {
		t.Errorf("documents: got %d, want 1", got)
	}
	if got := srv.Indices(); len(got) != 1 || got[0] != "event-pipeline-metrics-event-2026.03.01" {
		t.Errorf("indices: got %q, want the default prefix", got)
	}
}

func TestAuthentication(t *testing.T) {
	const user, pass, key = "elastic", "s3cr3t-pa55", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	srv := newServer(t, esfake.Options{Username: user, Password: pass, APIKey: key})
	tests := []struct {
		name      string
		cfg       elasticsearch.Config
		wantErr   bool
		wantAuthz string // prefix of the Authorization header sent
	}{
		{"basic", elasticsearch.Config{Username: user, Password: telemetry.NewSecret(pass)}, false, "Basic "},
		{"api key", elasticsearch.Config{APIKey: telemetry.NewSecret(key)}, false, "ApiKey " + key},
		{"wrong password", elasticsearch.Config{Username: user, Password: telemetry.NewSecret("wrong-" + pass)}, true, "Basic "},
		{"none", elasticsearch.Config{}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			pub := newPublisher(t, srv, tc.cfg)
			err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, ""))
			if (err != nil) != tc.wantErr {
				t.Fatalf("publish: got error %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !telemetry.IsPermanent(err) {
					t.Errorf("error %v: want it marked permanent (401 is not retried)", err)
				}
				if !strings.Contains(err.Error(), "401") {
					t.Errorf("error %q does not give the status", err)
				}
				if strings.Contains(err.Error(), pass) {
					t.Errorf("error %q leaks the password", err)
				}
			}
			reqs := srv.Requests()
			if len(reqs) == 0 {
				t.Fatal("no request reached the server")
			}
			if got := reqs[0].Header.Get("Authorization"); !strings.HasPrefix(strings.ToLower(got), strings.ToLower(tc.wantAuthz)) || (tc.wantAuthz == "" && got != "") {
				t.Errorf("Authorization: got %q, want prefix %q", got, tc.wantAuthz)
			}
		})
	}
}

func TestTemplateInstalledOnce(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	var logs logBuffer
	pub := newPublisher(t, srv, elasticsearch.Config{IndexPrefix: "pm", Logger: logs.logger()})
	ctx := context.Background()
	for i := range 3 {
		if err := pub.PublishEventMetrics(ctx, eventRecord(fmt.Sprint("t", i), at, telemetry.StatusCompleted, "")); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.TemplatePuts(); got != 1 {
		t.Errorf("template installations: got %d, want 1", got)
	}
	raw, ok := srv.Template("pm")
	if !ok {
		t.Fatal("template pm not installed")
	}
	var tmpl struct {
		IndexPatterns []string `json:"index_patterns"`
		Template      struct {
			Mappings struct {
				Properties map[string]struct {
					Type string `json:"type"`
				} `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tmpl.IndexPatterns, []string{"pm-*"}) {
		t.Errorf("index_patterns: got %q, want [pm-*]", tmpl.IndexPatterns)
	}
	wantTypes := map[string]string{
		"@timestamp": "date_nanos", "metric_type": "keyword", "event_name": "keyword", "task_id": "keyword",
		"status": "keyword", "host": "keyword", "operation": "keyword", "start_time": "date_nanos",
		"end_time": "date_nanos", "retry_count": "long", "process_id": "long", "port": "long",
		"bytes_sent": "long", "bytes_received": "long", "duration_seconds": "double",
		"latency_seconds": "double", "error": "text", "pipeline_id": "keyword",
		"enqueue_time": "date_nanos", "wait_seconds": "double", "trace_id": "keyword", "span_id": "keyword",
		"trace_sampled": "boolean",
	}
	for f, want := range wantTypes {
		if got := tmpl.Template.Mappings.Properties[f].Type; got != want {
			t.Errorf("mapping of %s: got %q, want %q", f, got, want)
		}
	}
	// Installing again is harmless.
	if err := pub.InstallTemplate(ctx); err != nil {
		t.Errorf("InstallTemplate again: %v", err)
	}
	if got := srv.TemplatePuts(); got != 2 {
		t.Errorf("template installations: got %d, want 2", got)
	}
	if got := logs.count("index template installed"); got != 2 {
		t.Errorf("log lines about the template: got %d, want 2\n%s", got, logs.String())
	}
}

func TestTemplateFailure(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		skip          bool
		wantPermanent bool
		wantDocs      int
	}{
		{"forbidden is permanent", http.StatusForbidden, false, true, 0},
		{"unavailable is transient", http.StatusServiceUnavailable, false, false, 0},
		{"skipped", http.StatusServiceUnavailable, true, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, esfake.Options{})
			pub := newPublisher(t, srv, elasticsearch.Config{SkipTemplate: tc.skip})
			srv.FailNext(1, tc.status, "")
			err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, ""))
			if tc.skip {
				// The injected failure hit the bulk request instead: a
				// transient error, for the Recorder to retry.
				if err == nil || telemetry.IsPermanent(err) || !strings.Contains(err.Error(), "503") {
					t.Fatalf("publish with SkipTemplate: got %v, want a transient error with the 503", err)
				}
				if got := srv.TemplatePuts(); got != 0 {
					t.Errorf("template installations with SkipTemplate: got %d, want 0", got)
				}
			} else {
				if err == nil {
					t.Fatal("publish: got nil error, want the template failure")
				}
				if !strings.Contains(err.Error(), `install index template "event-pipeline-metrics"`) ||
					!strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
					t.Errorf("error %q should name the template and the status", err)
				}
				if got := telemetry.IsPermanent(err); got != tc.wantPermanent {
					t.Errorf("permanent: got %v, want %v", got, tc.wantPermanent)
				}
			}
			if got := srv.Count(); got != tc.wantDocs {
				t.Errorf("documents: got %d, want %d", got, tc.wantDocs)
			}
			// The next call installs the template and delivers.
			if err := pub.PublishEventMetrics(context.Background(), eventRecord("t2", at, telemetry.StatusCompleted, "")); err != nil {
				t.Fatalf("second publish: %v", err)
			}
			if got, want := srv.TemplatePuts(), map[bool]int{true: 0, false: 1}[tc.skip]; got != want {
				t.Errorf("template installations: got %d, want %d", got, want)
			}
			if got, want := srv.Count(), tc.wantDocs+1; got != want {
				t.Errorf("documents after the second publish: got %d, want %d", got, want)
			}
		})
	}
}

func TestInstallTemplateError(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	srv.FailNext(1, http.StatusUnauthorized, "")
	err := pub.InstallTemplate(context.Background())
	if err == nil || !telemetry.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("InstallTemplate: got %v, want a permanent error with 401", err)
	}
}

// TestItemsRejectedWith429AreRetried calls PublishBatch with the same batch
// until it succeeds, as the Recorder does: the publisher makes one attempt
// per call, returns a transient error while a document is refused with
// 429, and, when the batch comes again, sends only the documents not
// indexed yet.
func TestItemsRejectedWith429AreRetried(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	rejections := map[string]int{}
	srv.SetItemFunc(func(index, id string, src map[string]any) *esfake.ItemError {
		if src["task_id"] == "busy" && rejections[id] < 2 {
			rejections[id]++
			return esfake.Rejected()
		}
		return nil
	})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	b := &telemetry.Batch{Events: []telemetry.EventMetrics{
		eventRecord("ok1", at, telemetry.StatusCompleted, ""),
		eventRecord("busy", at, telemetry.StatusCompleted, ""),
		eventRecord("ok2", at, telemetry.StatusCompleted, ""),
	}}
	for attempt := 1; attempt <= 2; attempt++ {
		err := pub.PublishBatch(context.Background(), b)
		if err == nil || telemetry.IsPermanent(err) {
			t.Fatalf("attempt %d: got %v, want a transient error", attempt, err)
		}
		var de *telemetry.DroppedError
		if errors.As(err, &de) {
			t.Fatalf("attempt %d: got a DroppedError %v; documents refused with 429 must be retried, not dropped", attempt, err)
		}
		for _, want := range []string{"1 of 3 document(s) not indexed", "es_rejected_execution_exception"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("attempt %d: error %q lacks %q", attempt, err, want)
			}
		}
	}
	if err := pub.PublishBatch(context.Background(), b); err != nil {
		t.Fatalf("attempt 3: %v", err)
	}
	if got := srv.Count(); got != 3 {
		t.Errorf("documents: got %d, want 3", got)
	}
	if got, want := pub.Stats(), (elasticsearch.Stats{BulkRequests: 3, Indexed: 3, Retried: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("stats: got %+v, want %+v", got, want)
	}
	// Only the rejected document was sent again.
	var items []int
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/_bulk") {
			items = append(items, r.Items)
		}
	}
	if want := []int{3, 1, 1}; !reflect.DeepEqual(items, want) {
		t.Errorf("items per bulk request: got %v, want %v", items, want)
	}
	for _, d := range srv.AllDocs() {
		if d.Version != 1 {
			t.Errorf("%s: version %d, want 1 (indexed once)", d.Source["task_id"], d.Version)
		}
	}
}

// TestMixedRejectionsSettleOnRetry checks a batch with a document refused
// for good (a mapping error) and one refused for a while (429): the first
// call is transient and names both, the retry ends with a DroppedError of
// exactly the one document.
func TestMixedRejectionsSettleOnRetry(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	busy := 0
	srv.SetItemFunc(func(index, id string, src map[string]any) *esfake.ItemError {
		switch src["task_id"] {
		case "bad":
			return esfake.MappingError("retry_count", "long", id, "many")
		case "busy":
			if busy++; busy == 1 {
				return esfake.Rejected()
			}
		}
		return nil
	})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	b := &telemetry.Batch{Events: []telemetry.EventMetrics{
		eventRecord("ok", at, telemetry.StatusCompleted, ""),
		eventRecord("bad", at, telemetry.StatusCompleted, ""),
		eventRecord("busy", at, telemetry.StatusCompleted, ""),
	}}
	err := pub.PublishBatch(context.Background(), b)
	if err == nil || telemetry.IsPermanent(err) {
		t.Fatalf("first call: got %v, want a transient error", err)
	}
	if want := "1 of 3 document(s) not indexed: es_rejected_execution_exception"; !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "and 1 rejected for good: 1 x mapper_parsing_exception") {
		t.Errorf("first call: error %q should name the 429 and the mapping error", err)
	}
	err = pub.PublishBatch(context.Background(), b)
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 1 {
		t.Fatalf("second call: got %v, want a DroppedError of 1 document", err)
	}
	if got := srv.Count(); got != 2 {
		t.Errorf("documents: got %d, want 2", got)
	}
}

func TestItemsStillRejectedFailTheCall(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	srv.SetItemFunc(func(index, id string, src map[string]any) *esfake.ItemError {
		if src["task_id"] == "busy" {
			return esfake.Rejected()
		}
		return nil
	})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	b := &telemetry.Batch{Events: []telemetry.EventMetrics{
		eventRecord("ok", at, telemetry.StatusCompleted, ""),
		eventRecord("busy", at, telemetry.StatusCompleted, ""),
	}}
	err := pub.PublishBatch(context.Background(), b)
	if err == nil || telemetry.IsPermanent(err) {
		t.Fatalf("PublishBatch: got %v, want a transient error", err)
	}
	var de *telemetry.DroppedError
	if errors.As(err, &de) {
		t.Errorf("got a DroppedError %v; documents refused with 429 must be retried, not dropped", err)
	}
	if want := "elasticsearch: 1 of 2 document(s) not indexed: es_rejected_execution_exception: rejected execution"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if got := srv.BulkRequests(); got != 1 {
		t.Errorf("bulk requests: got %d, want 1 (the publisher does not retry by itself)", got)
	}
}

func TestMappingErrorsDroppedCountedLoggedOnce(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	srv.SetItemFunc(func(index, id string, src map[string]any) *esfake.ItemError {
		if strings.HasPrefix(src["task_id"].(string), "bad") {
			return esfake.MappingError("retry_count", "long", id, "many")
		}
		return nil
	})
	var logs logBuffer
	pub := newPublisher(t, srv, elasticsearch.Config{Logger: logs.logger()})
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithLogger(logs.logger()),
		telemetry.WithMaxBatchSize(4))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	for i := range 10 {
		task := fmt.Sprint("good", i)
		if i%3 == 0 {
			task = fmt.Sprint("bad", i) // 0, 3, 6, 9: 4 bad ones
		}
		if err := rec.StartEvent("transform", task); err != nil {
			t.Fatal(err)
		}
		if err := rec.EndEvent(task, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := rec.PublisherStats()[0]
	if st.Published != 6 || st.DroppedFailed != 4 {
		t.Errorf("publisher stats: got %+v, want 6 published, 4 dropped", st)
	}
	if got := srv.Count(); got != 6 {
		t.Errorf("documents: got %d, want 6", got)
	}
	if got := pub.Stats(); got.Rejected != 4 || got.RejectedByReason["mapper_parsing_exception"] != 4 {
		t.Errorf("publisher stats: got %+v, want 4 rejected by mapper_parsing_exception", got)
	}
	if got := logs.count(`"error_type":"mapper_parsing_exception"`); got != 1 {
		t.Errorf("log lines about the mapping error: got %d, want 1\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "failed to parse field [retry_count] of type [long]") {
		t.Errorf("the log does not give the reason:\n%s", logs.String())
	}
}

// TestWholeRequestFailuresRetried has bulk requests fail as a whole, in a
// synctest bubble (the publisher reaches the stand-in through its
// in-memory RoundTripper), and checks that the Recorder retries them with
// its RetryPolicy, honouring Retry-After capped at MaxBackoff, and that
// the publisher made one request per attempt.
func TestWholeRequestFailuresRetried(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		failures   int
		wantWait   time.Duration // total wait of the retries; 0: jittered backoff
	}{
		{"503", http.StatusServiceUnavailable, "", 2, 0},
		{"502", http.StatusBadGateway, "", 2, 0},
		{"408", http.StatusRequestTimeout, "", 2, 0},
		{"429 with Retry-After", http.StatusTooManyRequests, "1", 2, 2 * time.Second},
		{"503 with Retry-After capped", http.StatusServiceUnavailable, "30", 2, 2 * 3 * time.Second},
		{"429 with Retry-After date", http.StatusTooManyRequests, "date+2s", 1, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, esfake.Options{})
			synctest.Test(t, func(t *testing.T) {
				ra := tc.retryAfter
				if ra == "date+2s" {
					ra = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
				}
				srv.FailNext(tc.failures, tc.status, ra)
				pub := newBubblePublisher(t, srv, elasticsearch.Config{SkipTemplate: true})
				rec := newBubbleRecorder(t, pub, telemetry.RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 3 * time.Second})
				start := time.Now()
				recordEvents(t, rec, 1)
				if err := rec.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				waited := time.Since(start)
				if tc.wantWait > 0 && waited != tc.wantWait {
					t.Errorf("waited %v, want exactly %v", waited, tc.wantWait)
				}
				// Jittered backoff: 100ms then 200ms, each less up to half.
				if tc.wantWait == 0 && (waited < 150*time.Millisecond || waited > 300*time.Millisecond) {
					t.Errorf("waited %v, want 150ms to 300ms", waited)
				}
				if got := srv.Count(); got != 1 {
					t.Errorf("documents: got %d, want 1", got)
				}
				if got, want := srv.BulkRequests(), tc.failures+1; got != want {
					t.Errorf("bulk requests: got %d, want %d", got, want)
				}
				if st := rec.PublisherStats()[0]; st.Published != 1 || st.FailedAttempts != uint64(tc.failures) {
					t.Errorf("publisher stats: got %+v, want 1 published after %d failed attempts", st, tc.failures)
				}
				if err := rec.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestPermanentRequestFailureNotRetried(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{SkipTemplate: true})
	srv.FailNext(1, http.StatusBadRequest, "")
	err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, ""))
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 1 {
		t.Fatalf("publish: got %v, want a DroppedError of 1 document", err)
	}
	if got := srv.BulkRequests(); got != 1 {
		t.Errorf("bulk requests: got %d, want 1 (no retry of a 400)", got)
	}
}

func TestNotElasticsearch(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"acknowledged":true}`)
	}))
	t.Cleanup(other.Close)
	pub, err := elasticsearch.NewPublisher(elasticsearch.Config{Hosts: []string{other.URL}})
	if err != nil {
		t.Fatal(err)
	}
	err = pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, ""))
	if err == nil || !telemetry.IsPermanent(err) || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("publish: got %v, want a permanent error saying the server is not Elasticsearch", err)
	}
}

func TestFlushBytesSplitsRequests(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{FlushBytes: 2000, SkipTemplate: true})
	var b telemetry.Batch
	for i := range 20 {
		b.Events = append(b.Events, eventRecord(fmt.Sprint("t", i), at, telemetry.StatusCompleted, ""))
	}
	if err := pub.PublishBatch(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if got := srv.Count(); got != 20 {
		t.Errorf("documents: got %d, want 20", got)
	}
	reqs := srv.BulkRequests()
	if reqs < 4 || reqs > 10 {
		t.Errorf("bulk requests: got %d, want about 20 documents * ~480 bytes / 2000 bytes", reqs)
	}
	for _, r := range srv.Requests() {
		if r.Items == 0 {
			t.Errorf("an empty bulk request was sent")
		}
	}
}

func TestResendOverwrites(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	b := &telemetry.Batch{
		Events:  []telemetry.EventMetrics{eventRecord("t1", at, telemetry.StatusCompleted, "")},
		Network: []telemetry.NetworkMetrics{networkRecord("t1", at)},
	}
	for range 2 {
		if err := pub.PublishBatch(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	docs := srv.AllDocs()
	if len(docs) != 2 {
		t.Fatalf("documents: got %d, want 2 (a batch sent again must overwrite)", len(docs))
	}
	for _, d := range docs {
		if d.Version != 2 {
			t.Errorf("%s/%s: version %d, want 2", d.Index, d.ID, d.Version)
		}
	}
	// A new run of the same task is a new document.
	again := eventRecord("t1", at.Add(time.Minute), telemetry.StatusCompleted, "")
	if elasticsearch.DocumentID(again) == elasticsearch.DocumentID(b.Events[0]) {
		t.Error("two runs of one task id share a document id")
	}
}

// TestClusterDownThenBack records while the node is down, in a synctest
// bubble: recording takes no time at all on the bubble's clock (it never
// waits for the publisher), nothing is delivered or dropped while the node
// is down, and everything is delivered once it is back.
func TestClusterDownThenBack(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	synctest.Test(t, func(t *testing.T) {
		pub := newBubblePublisher(t, srv, elasticsearch.Config{Timeout: time.Second})
		rec := newBubbleRecorder(t, pub, telemetry.RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})

		srv.Down()
		start := time.Now()
		recordEvents(t, rec, 50)
		if d := time.Since(start); d != 0 {
			t.Errorf("recording 50 events while the cluster is down took %v of the bubble's clock; it must not wait", d)
		}
		time.Sleep(300 * time.Millisecond) // the bubble's clock: several failed attempts
		synctest.Wait()
		if got := srv.Count(); got != 0 {
			t.Fatalf("documents while down: got %d, want 0", got)
		}
		if st := rec.PublisherStats()[0]; st.FailedAttempts < 3 || st.Published != 0 || st.Dropped() != 0 {
			t.Errorf("publisher stats while down: got %+v, want at least 3 failed attempts, nothing published or dropped", st)
		}
		if err := srv.Up(); err != nil {
			t.Fatal(err)
		}
		if err := rec.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := srv.Count(); got != 50 {
			t.Errorf("documents after the cluster came back: got %d, want 50", got)
		}
		if st := rec.PublisherStats()[0]; st.Published != 50 || st.Dropped() != 0 {
			t.Errorf("publisher stats: got %+v, want 50 published, none dropped", st)
		}
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRecorderCloseFlushes(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithBatchTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	net := rec.Network()
	for i := range 5 {
		task := fmt.Sprint("t", i)
		rec.StartEvent("transform", task)
		rec.EndEvent(task, nil)
		net.StartOperation(task, "db.internal", 5432, "query")
		net.EndOperation(task, 10, 20, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Count(); got != 10 {
		t.Errorf("documents after Close: got %d, want 10", got)
	}
	err = pub.PublishEventMetrics(ctx, eventRecord("late", at, telemetry.StatusCompleted, ""))
	if !errors.Is(err, telemetry.ErrClosed) || !telemetry.IsPermanent(err) {
		t.Errorf("publish after Close: got %v, want a permanent ErrClosed", err)
	}
	if err := pub.Close(ctx); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
}

// hangingTransport never answers: each request ends when its context does.
type hangingTransport struct{ calls atomic.Int32 }

func (h *hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.calls.Add(1)
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// TestContextHonoured checks, on the bubble's clock, that a publish call
// to a node that never answers returns exactly when its context ends, with
// a transient error wrapping the context's, and that Config.Timeout limits
// each request the same way.
func TestContextHonoured(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // of the caller's context; 0 means none
		timeout  time.Duration // Config.Timeout
		want     time.Duration
	}{
		{"caller's deadline", 200 * time.Millisecond, time.Minute, 200 * time.Millisecond},
		{"Config.Timeout", 0, 3 * time.Second, 3 * time.Second},
		{"DefaultTimeout", 0, 0, elasticsearch.DefaultTimeout},
		{"the sooner of both", 5 * time.Second, 2 * time.Second, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &hangingTransport{}
				pub, err := elasticsearch.NewPublisher(elasticsearch.Config{
					Hosts: []string{"127.0.0.1:9200"}, Transport: tr, Timeout: tc.timeout, SkipTemplate: true, Logger: slogDiscard(),
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				start := time.Now()
				err = pub.PublishEventMetrics(ctx, eventRecord("t1", at, telemetry.StatusCompleted, ""))
				if got := time.Since(start); got != tc.want {
					t.Errorf("publish returned after %v, want exactly %v", got, tc.want)
				}
				if err == nil || telemetry.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("publish: got %v, want a transient error wrapping context.DeadlineExceeded", err)
				}
				if got := tr.calls.Load(); got != 1 {
					t.Errorf("requests: got %d, want 1 (no retry inside the publisher)", got)
				}
				pub.Close(context.Background())
			})
		})
	}
}

// TestEndedContextSendsNothing checks that a publish call with an ended
// context returns at once without sending anything.
func TestEndedContextSendsNothing(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{SkipTemplate: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := pub.PublishEventMetrics(ctx, eventRecord("t1", at, telemetry.StatusCompleted, ""))
	if !errors.Is(err, context.Canceled) || telemetry.IsPermanent(err) {
		t.Errorf("publish: got %v, want a transient error wrapping context.Canceled", err)
	}
	if got := len(srv.Requests()); got != 0 {
		t.Errorf("requests: got %d, want 0", got)
	}
}

func TestPublishBatchConcurrentSafe(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				b := &telemetry.Batch{
					Events:  []telemetry.EventMetrics{eventRecord(fmt.Sprint(g, "-", i), at, telemetry.StatusCompleted, "")},
					Network: []telemetry.NetworkMetrics{networkRecord(fmt.Sprint(g, "-", i), at)},
				}
				if err := pub.PublishBatch(context.Background(), b); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := srv.Count(); got != 80 {
		t.Errorf("documents: got %d, want 80", got)
	}
	if got := srv.TemplatePuts(); got != 1 {
		t.Errorf("template installations: got %d, want 1", got)
	}
}

// TestCompatibilityMode runs the client in its REST compatibility mode
// (ELASTIC_CLIENT_APIVERSIONING=true), in which it sends vendored media
// types that Elasticsearch 8 accepts.
func TestCompatibilityMode(t *testing.T) {
	t.Setenv("ELASTIC_CLIENT_APIVERSIONING", "true")
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{})
	if err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, "")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := srv.Count(); got != 1 {
		t.Errorf("documents: got %d, want 1", got)
	}
	for _, r := range srv.Requests() {
		if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, "compatible-with=8") {
			t.Errorf("%s %s: Content-Type %q, want a compatible-with=8 media type", r.Method, r.Path, ct)
		}
	}
}

// TestNoGoroutineLeak runs a Recorder with this publisher in a synctest
// bubble, which fails the test if any goroutine started in it is still
// there when it ends: once closed, nothing of the publisher is left.
func TestNoGoroutineLeak(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	synctest.Test(t, func(t *testing.T) {
		pub := newBubblePublisher(t, srv, elasticsearch.Config{})
		rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithMaxBatchSize(16),
			telemetry.WithLogger(slogDiscard()))
		if err != nil {
			t.Fatal(err)
		}
		recordEvents(t, rec, 100)
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := srv.Count(); got != 100 {
			t.Errorf("documents: got %d, want 100", got)
		}
	})
}

// TestConformance runs the conformance kit of package telemetrytest
// against the publisher and the stand-in node.
func TestConformance(t *testing.T) {
	srv := newServer(t, esfake.Options{Username: "elastic", Password: "changeme"})
	newPub := func() (telemetry.Publisher, error) {
		srv.Reset()
		return elasticsearch.NewPublisher(elasticsearch.Config{
			Hosts: []string{srv.URL}, Username: "elastic", Password: telemetry.NewSecret("changeme"), Logger: slogDiscard(),
		})
	}
	delivered := func() (events, network []string) {
		for _, d := range srv.AllDocs() {
			id, _ := d.Source["task_id"].(string)
			switch d.Source["metric_type"] {
			case "event":
				events = append(events, id)
			case "network":
				network = append(network, id)
			}
		}
		return events, network
	}
	if err := telemetrytest.TestPublisher(newPub, delivered); err != nil {
		t.Error(err)
	}
}

// TestPartlyIndexedBatchCountedExactly has a Recorder retry a batch of
// which some documents are indexed and others refused, with 429 or for
// good, until its retries run out or the batch settles, and checks that
// PublisherStats count every document exactly: the indexed ones as
// published, the others once as dropped; and that a document refused for
// good is neither sent nor counted again.
func TestPartlyIndexedBatchCountedExactly(t *testing.T) {
	tests := []struct {
		name      string
		refuse    func(task string, call int) *esfake.ItemError // call: 1 for a document's first bulk request
		want      telemetry.PublisherStats
		wantStats elasticsearch.Stats
		wantItems []int // documents per bulk request
	}{
		{"429 until MaxAttempts",
			func(task string, _ int) *esfake.ItemError {
				if task == "t3" || task == "t7" {
					return esfake.Rejected()
				}
				return nil
			},
			telemetry.PublisherStats{Published: 8, DroppedFailed: 2, FailedAttempts: 3},
			elasticsearch.Stats{BulkRequests: 3, Indexed: 8, Retried: 4},
			[]int{10, 2, 2}},
		{"429 and a mapping error until MaxAttempts",
			func(task string, _ int) *esfake.ItemError {
				switch task {
				case "t3":
					return esfake.Rejected()
				case "t5":
					return esfake.MappingError("retry_count", "long", task, "many")
				}
				return nil
			},
			telemetry.PublisherStats{Published: 8, DroppedFailed: 2, FailedAttempts: 3},
			elasticsearch.Stats{BulkRequests: 3, Indexed: 8, Retried: 2, Rejected: 1,
				RejectedByReason: map[string]uint64{"mapper_parsing_exception": 1}},
			[]int{10, 1, 1}},
		{"a mapping error, then 429, then a mapping error",
			func(task string, call int) *esfake.ItemError {
				switch {
				case task == "t5", task == "t3" && call == 2:
					return esfake.MappingError("retry_count", "long", task, "many")
				case task == "t3":
					return esfake.Rejected()
				}
				return nil
			},
			telemetry.PublisherStats{Published: 8, DroppedFailed: 2, FailedAttempts: 2},
			elasticsearch.Stats{BulkRequests: 2, Indexed: 8, Retried: 1, Rejected: 2,
				RejectedByReason: map[string]uint64{"mapper_parsing_exception": 2}},
			[]int{10, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, esfake.Options{})
			calls := map[string]int{}
			srv.SetItemFunc(func(_, _ string, src map[string]any) *esfake.ItemError {
				task, _ := src["task_id"].(string)
				calls[task]++
				return tc.refuse(task, calls[task])
			})
			synctest.Test(t, func(t *testing.T) {
				pub := newBubblePublisher(t, srv, elasticsearch.Config{SkipTemplate: true})
				rec := newBubbleRecorder(t, pub, telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond})
				recordEvents(t, rec, 10)
				if err := rec.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				got := rec.PublisherStats()[0]
				want := tc.want
				want.Name, want.QueueCapacity = got.Name, got.QueueCapacity
				if got != want {
					t.Errorf("publisher stats after Close: got %+v, want %+v", got, want)
				}
				if got := srv.Count(); uint64(got) != tc.want.Published {
					t.Errorf("documents indexed: got %d, want %d", got, tc.want.Published)
				}
				if got := pub.Stats(); !reflect.DeepEqual(got, tc.wantStats) {
					t.Errorf("elasticsearch stats: got %+v, want %+v", got, tc.wantStats)
				}
				var items []int
				for _, r := range srv.Requests() {
					if strings.HasSuffix(r.Path, "/_bulk") {
						items = append(items, r.Items)
					}
				}
				if !reflect.DeepEqual(items, tc.wantItems) {
					t.Errorf("documents per bulk request: got %v, want %v", items, tc.wantItems)
				}
			})
		})
	}
}

func TestPublishNetworkMetricsAlone(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{IndexPrefix: "ops"})
	if got := pub.IndexPrefix(); got != "ops" {
		t.Errorf("IndexPrefix: got %q, want ops", got)
	}
	nw := networkRecord("n1", at)
	if err := pub.PublishNetworkMetrics(context.Background(), nw); err != nil {
		t.Fatalf("PublishNetworkMetrics: %v", err)
	}
	docs := srv.Docs("ops-network-2026.03.01")
	if len(docs) != 1 {
		t.Fatalf("got %d documents in ops-network-2026.03.01 (indices %q), want 1", len(docs), srv.Indices())
	}
	if got, want := docs[0].Source, wantDoc(t, nw, nw.StartTime); !reflect.DeepEqual(got, want) {
		t.Errorf("document\n got %v\nwant %v", got, want)
	}
	if err := pub.PublishBatch(context.Background(), &telemetry.Batch{}); err != nil || srv.BulkRequests() != 1 {
		t.Errorf("empty batch: got %v and %d bulk requests, want nil and no new request", err, srv.BulkRequests())
	}
}

// TestRecordsBefore1970AreDropped: the @timestamp mapping is date_nanos,
// which starts at the Unix epoch, so Elasticsearch rejects an earlier
// record; it is dropped and counted, not retried, and the others of the
// batch are indexed.
func TestRecordsBefore1970AreDropped(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{IndexPrefix: "old"})
	evs := []telemetry.EventMetrics{
		eventRecord("old", time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC), telemetry.StatusCompleted, ""),
		eventRecord("new", time.Date(1970, 1, 1, 6, 0, 0, 0, time.UTC), telemetry.StatusCompleted, ""),
	}
	err := pub.PublishBatch(context.Background(), &telemetry.Batch{Events: evs})
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 1 || !strings.Contains(err.Error(), "mapper_parsing_exception") {
		t.Fatalf("got %v, want 1 record dropped by a mapping error", err)
	}
	if got := srv.Docs("old-event-1970.01.01"); len(got) != 1 || got[0].Source["task_id"] != "new" {
		t.Errorf("got %v in old-event-1970.01.01, want the record of 1970", got)
	}
}

func TestDocumentIDOfPointersAndOtherValues(t *testing.T) {
	ev, nw := eventRecord("t1", at, telemetry.StatusCompleted, ""), networkRecord("t1", at)
	if got, want := elasticsearch.DocumentID(&ev), elasticsearch.DocumentID(ev); got != want || got == "" {
		t.Errorf("DocumentID(&event) = %q, want DocumentID(event) = %q", got, want)
	}
	if got, want := elasticsearch.DocumentID(&nw), elasticsearch.DocumentID(nw); got != want || got == "" {
		t.Errorf("DocumentID(&network) = %q, want DocumentID(network) = %q", got, want)
	}
	if got := elasticsearch.DocumentID("t1"); got != "" {
		t.Errorf(`DocumentID("t1") = %q, want ""`, got)
	}
}

// TestMalformedBulkResponses checks bulk replies that do not account for
// every document, from a server that answers as Elasticsearch: a reply
// with errors but fewer items than documents, or one that is not JSON, is
// a transient failure of every document, worth a retry; a reply without
// items and without errors counts them indexed.
func TestMalformedBulkResponses(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  string // substring of the error; empty for success
	}{
		{"fewer items with errors", `{"errors":true,"items":[{"index":{"status":201}}]}`, "invalid bulk response: 1 items for 2 documents"},
		{"not JSON", `<html>`, "invalid bulk response: invalid character '<'"},
		{"truncated", `{"errors":false,"items":[{"index":{"status":201}},{"ind`, "invalid bulk response: unexpected EOF"},
		{"empty", ``, "invalid bulk response: EOF"},
		{"no items, no errors", `{"errors":false}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("X-Elastic-Product", "Elasticsearch")
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tc.reply)
			}))
			t.Cleanup(srv.Close)
			pub, err := elasticsearch.NewPublisher(elasticsearch.Config{Hosts: []string{srv.URL}, SkipTemplate: true, Logger: slogDiscard()})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close(context.Background())
			b := &telemetry.Batch{Events: []telemetry.EventMetrics{
				eventRecord("t1", at, telemetry.StatusCompleted, ""), eventRecord("t2", at, telemetry.StatusCompleted, "")}}
			err = pub.PublishBatch(context.Background(), b)
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want the documents counted indexed", err)
				}
				return
			}
			var de *telemetry.DroppedError
			if err == nil || !strings.Contains(err.Error(), tc.want) || telemetry.IsPermanent(err) || errors.As(err, &de) {
				t.Errorf("got %v, want a transient error containing %q, nothing dropped", err, tc.want)
			}
		})
	}
}

// TestCloseHonoursContext checks, on the bubble's clock, that Close waits
// for a publish call in progress, returns its context's error if that
// ends first, and that the call still ends when its own context does.
func TestCloseHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &hangingTransport{}
		pub, err := elasticsearch.NewPublisher(elasticsearch.Config{
			Hosts: []string{"127.0.0.1:9200"}, Transport: tr, Timeout: time.Minute, SkipTemplate: true, Logger: slogDiscard(),
		})
		if err != nil {
			t.Fatal(err)
		}
		published := make(chan error, 1)
		go func() {
			published <- pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, ""))
		}()
		synctest.Wait() // the call hangs in the transport
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := pub.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("Close: got %v after %v, want context.DeadlineExceeded after 1s", err, time.Since(start))
		}
		if err := <-published; !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Errorf("publish: got %v after %v, want its Timeout's error after 1m", err, time.Since(start))
		}
	})
}
