package elasticsearch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
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
	// Spot-check the contract fields of SPEC.md in the raw JSON.
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
		{"basic", elasticsearch.Config{Username: user, Password: pass}, false, "Basic "},
		{"api key", elasticsearch.Config{APIKey: key}, false, "ApiKey " + key},
		{"wrong password", elasticsearch.Config{Username: user, Password: "wrong-" + pass}, true, "Basic "},
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
		{"skipped", http.StatusServiceUnavailable, true, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, esfake.Options{})
			pub := newPublisher(t, srv, elasticsearch.Config{SkipTemplate: tc.skip})
			srv.FailNext(1, tc.status, "")
			err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, ""))
			if tc.skip {
				// The injected failure hit the bulk request instead; it is retried within the call.
				if err != nil {
					t.Fatalf("publish with SkipTemplate: %v", err)
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
	if err := pub.PublishBatch(context.Background(), b); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	if got := srv.Count(); got != 3 {
		t.Errorf("documents: got %d, want 3", got)
	}
	st := pub.Stats()
	if st.Retried != 2 || st.Indexed != 3 || st.BulkRequests != 3 {
		t.Errorf("stats: got %+v, want 2 retried, 3 indexed, 3 bulk requests", st)
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
}

func TestItemsStillRejectedFailTheCall(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	srv.SetItemFunc(func(index, id string, src map[string]any) *esfake.ItemError {
		if src["task_id"] == "busy" {
			return esfake.Rejected()
		}
		return nil
	})
	pub := newPublisher(t, srv, elasticsearch.Config{MaxRetries: 2})
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
	for _, s := range []string{"1 of 2 document(s) not indexed after 3 attempt(s)", "es_rejected_execution_exception"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
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

func TestWholeRequestFailuresRetried(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
	}{
		{"503", http.StatusServiceUnavailable, ""},
		{"429 with Retry-After", http.StatusTooManyRequests, "1"},
		{"502", http.StatusBadGateway, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, esfake.Options{})
			pub := newPublisher(t, srv, elasticsearch.Config{SkipTemplate: true})
			srv.FailNext(2, tc.status, tc.retryAfter)
			start := time.Now()
			if err := pub.PublishEventMetrics(context.Background(), eventRecord("t1", at, telemetry.StatusCompleted, "")); err != nil {
				t.Fatalf("publish: %v", err)
			}
			if got := srv.Count(); got != 1 {
				t.Errorf("documents: got %d, want 1", got)
			}
			// Retry-After (1s) is capped by MaxRetryBackoff (20ms in these tests).
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: Retry-After was not capped", d)
			}
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

func TestClusterDownThenBack(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{MaxRetries: 1, Timeout: time.Second})
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub),
		telemetry.WithBatchTimeout(10*time.Millisecond),
		telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 100, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}),
		telemetry.WithLogger(slogDiscard()))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())

	srv.Down()
	start := time.Now()
	for i := range 50 {
		task := fmt.Sprint("t", i)
		if err := rec.StartEvent("transform", task); err != nil {
			t.Fatal(err)
		}
		if err := rec.EndEvent(task, nil); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("recording 50 events while the cluster is down took %v; it must not wait", d)
	}
	time.Sleep(300 * time.Millisecond) // several failed attempts
	if got := srv.Count(); got != 0 {
		t.Fatalf("documents while down: got %d, want 0", got)
	}
	if st := rec.PublisherStats()[0]; st.FailedAttempts == 0 {
		t.Errorf("no failed attempt while the cluster was down: %+v", st)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Count(); got != 50 {
		t.Errorf("documents after the cluster came back: got %d, want 50", got)
	}
	if st := rec.PublisherStats()[0]; st.Published != 50 || st.Dropped() != 0 {
		t.Errorf("publisher stats: got %+v, want 50 published, none dropped", st)
	}
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

func TestContextHonoured(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	pub := newPublisher(t, srv, elasticsearch.Config{MaxRetries: 100, RetryBackoff: 50 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	srv.Down()
	defer srv.Up()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := pub.PublishEventMetrics(ctx, eventRecord("t1", at, telemetry.StatusCompleted, ""))
	if err == nil || telemetry.IsPermanent(err) {
		t.Errorf("publish to a node that is down: got %v, want a transient error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("publish returned after %v, want soon after the 200ms deadline", d)
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

// TestNoGoroutineLeak checks that a Recorder with this publisher, once
// closed, leaves no goroutine behind: not the BulkIndexers' workers, nor
// the transport's connections.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv, err := esfake.New(esfake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		pub, err := elasticsearch.NewPublisher(elasticsearch.Config{Hosts: []string{srv.URL}, Logger: slogDiscard()})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithMaxBatchSize(16))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			task := fmt.Sprint("t", i)
			rec.StartEvent("e", task)
			rec.EndEvent(task, nil)
		}
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := srv.Count(); got != 100 {
			t.Errorf("documents: got %d, want 100", got)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
