package elasticsearch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// liveConfig returns the Config of the real cluster named by
// ELASTICSEARCH_URL (comma-separated hosts, such as https://localhost:9200)
// or ELASTICSEARCH_CLOUD_ID, with the credentials of ELASTICSEARCH_USERNAME
// and ELASTICSEARCH_PASSWORD, or ELASTICSEARCH_API_KEY: the environment
// variables of the eventpipeline command. It skips the test if neither
// ELASTICSEARCH_URL nor ELASTICSEARCH_CLOUD_ID is set.
func liveConfig(t *testing.T) elasticsearch.Config {
	t.Helper()
	hosts, cloudID := os.Getenv("ELASTICSEARCH_URL"), os.Getenv("ELASTICSEARCH_CLOUD_ID")
	if hosts == "" && cloudID == "" {
		t.Skip("neither ELASTICSEARCH_URL nor ELASTICSEARCH_CLOUD_ID is set: skipping the test against a real Elasticsearch cluster " +
			"(set ELASTICSEARCH_URL=https://localhost:9200, and ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD " +
			"or ELASTICSEARCH_API_KEY, to run it)")
	}
	cfg := elasticsearch.Config{
		Username: os.Getenv("ELASTICSEARCH_USERNAME"),
		Password: telemetry.NewSecret(os.Getenv("ELASTICSEARCH_PASSWORD")),
		APIKey:   telemetry.NewSecret(os.Getenv("ELASTICSEARCH_API_KEY")),
		CloudID:  telemetry.NewSecret(cloudID),
	}
	if hosts != "" {
		cfg.Hosts = strings.Split(hosts, ",")
	}
	return cfg
}

// TestLiveCluster indexes records into a real cluster through a Recorder,
// then searches them back. It runs only when ELASTICSEARCH_URL or
// ELASTICSEARCH_CLOUD_ID is set (see liveConfig).
func TestLiveCluster(t *testing.T) {
	cfg := liveConfig(t)
	cfg.IndexPrefix = fmt.Sprintf("eventpipeline-live-test-%d", time.Now().UnixNano())
	pub, err := elasticsearch.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client := elasticsearch.Transport(pub) // the publisher's own, for the checks
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if res, err := (esapi.IndicesDeleteRequest{Index: []string{cfg.IndexPrefix + "-*"}}).Do(ctx, client); err == nil {
			res.Body.Close()
		}
		if res, err := (esapi.IndicesDeleteIndexTemplateRequest{Name: cfg.IndexPrefix}).Do(ctx, client); err == nil {
			res.Body.Close()
		}
	})

	if err := pub.InstallTemplate(ctx); err != nil {
		t.Fatalf("InstallTemplate: %v", err)
	}
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
	if err != nil {
		t.Fatal(err)
	}
	net := rec.Network()
	for i := range 5 {
		task := fmt.Sprint("live-", i)
		rec.StartEvent("live_event", task, telemetry.WithProcessID(os.Getpid()))
		if i == 0 {
			rec.RecordRetry(task)
		}
		var failure error
		if i == 4 {
			failure = fmt.Errorf("live failure %d", i)
		}
		rec.EndEvent(task, failure)
		net.StartOperation(task, "127.0.0.1", 9200, "")
		net.EndOperation(task, 100, 200, nil)
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := rec.PublisherStats()[0]; st.Published != 10 || st.Dropped() != 0 {
		t.Fatalf("publisher stats: got %+v, want 10 published", st)
	}

	pattern := cfg.IndexPrefix + "-*"
	if res, err := (esapi.IndicesRefreshRequest{Index: []string{pattern}}).Do(ctx, client); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	search := func(query string) []map[string]any {
		res, err := (esapi.SearchRequest{
			Index: []string{pattern},
			Body:  strings.NewReader(query),
			Size:  esapi.IntPtr(100),
		}).Do(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.IsError() {
			t.Fatalf("search: %s", res.String())
		}
		var out struct {
			Hits struct {
				Hits []struct {
					Index  string         `json:"_index"`
					Source map[string]any `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		var docs []map[string]any
		for _, h := range out.Hits.Hits {
			h.Source["_index"] = h.Index
			docs = append(docs, h.Source)
		}
		return docs
	}
	if got := search(`{"query":{"match_all":{}}}`); len(got) != 10 {
		t.Fatalf("documents found: got %d, want 10", len(got))
	}
	// Aggregatable keyword fields: a term query on status finds the failure.
	failed := search(`{"query":{"bool":{"filter":[{"term":{"status":"failed"}},{"term":{"metric_type":"event"}}]}}}`)
	if len(failed) != 1 || failed[0]["error"] != "live failure 4" || failed[0]["task_id"] != "live-4" {
		t.Errorf("failed events: got %v, want live-4 with its error", failed)
	}
	day := time.Now().UTC().Format("2006.01.02")
	for _, d := range search(`{"query":{"term":{"metric_type":"network"}}}`) {
		if want := cfg.IndexPrefix + "-network-" + day; d["_index"] != want && !strings.HasPrefix(d["_index"].(string), cfg.IndexPrefix+"-network-") {
			t.Errorf("network document in %v, want %s", d["_index"], want)
		}
	}
}

// TestLiveClusterAgainstStandIn runs TestLiveCluster against the stand-in,
// with credentials in the environment, so that the live test itself stays
// correct where no cluster is available.
func TestLiveClusterAgainstStandIn(t *testing.T) {
	srv := newServer(t, esfake.Options{Username: "elastic", Password: "changeme"})
	t.Setenv("ELASTICSEARCH_URL", srv.Addr())
	t.Setenv("ELASTICSEARCH_CLOUD_ID", "")
	t.Setenv("ELASTICSEARCH_USERNAME", "elastic")
	t.Setenv("ELASTICSEARCH_PASSWORD", "changeme")
	t.Setenv("ELASTICSEARCH_API_KEY", "")
	t.Cleanup(func() { // runs after the live test's own clean-up
		if got := srv.Indices(); len(got) != 0 {
			t.Errorf("indices left after the live test: %q", got)
		}
	})
	TestLiveCluster(t)
}
