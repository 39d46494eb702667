// Command elasticsearch records a few demo event runs and network
// operations and publishes them to Elasticsearch, to try the publisher and
// the Kibana dashboard (elasticsearch_dashboard.json).
//
//	go run ./examples/telemetry/elasticsearch -hosts localhost:9200 -user elastic
//
// The password is read from ES_PASSWORD, an API key from ES_API_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

func main() {
	hosts := flag.String("hosts", "localhost:9200", "comma-separated Elasticsearch hosts")
	prefix := flag.String("prefix", elasticsearch.DefaultIndexPrefix, "index prefix")
	user := flag.String("user", "", "username for basic authentication (password from ES_PASSWORD)")
	runs := flag.Int("runs", 200, "event runs to record")
	flag.Parse()
	if err := run(*hosts, *prefix, *user, *runs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(hosts, prefix, user string, runs int) error {
	pub, err := elasticsearch.NewPublisher(elasticsearch.Config{
		Hosts:       strings.Split(hosts, ","),
		IndexPrefix: prefix,
		Username:    user,
		Password:    elasticsearch.Secret(os.Getenv("ES_PASSWORD")),
		APIKey:      elasticsearch.Secret(os.Getenv("ES_API_KEY")),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pub.InstallTemplate(ctx); err != nil {
		return err
	}
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithLogger(slog.Default()))
	if err != nil {
		return err
	}
	events := []string{"load_orders", "transform", "enrich", "store"}
	net := rec.Network()
	for i := range runs {
		task := fmt.Sprintf("demo-%d-%d", time.Now().Unix(), i)
		if err := rec.StartEvent(events[i%len(events)], task, telemetry.WithProcessID(os.Getpid()), telemetry.WithPipelineID("demo")); err != nil {
			return err
		}
		for range rand.N(3) {
			rec.RecordRetry(task)
		}
		net.StartOperation(task, "db.internal", 5432, "query")
		time.Sleep(time.Duration(rand.N(20)) * time.Millisecond)
		var opErr, runErr error
		if rand.N(10) == 0 {
			opErr = errors.New("connection reset by peer")
			runErr = fmt.Errorf("query failed: %w", opErr)
		}
		net.EndOperation(task, int64(100+rand.N(1000)), int64(1000+rand.N(100000)), opErr)
		if err := rec.EndEvent(task, runErr); err != nil {
			return err
		}
	}
	if err := rec.Close(ctx); err != nil {
		return err
	}
	st := rec.PublisherStats()[0]
	fmt.Printf("published %d records to %s-*, dropped %d\n", st.Published, prefix, st.Dropped())
	return nil
}
