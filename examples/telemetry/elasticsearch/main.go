// Command elasticsearch records a few demo event runs and network
// operations and publishes them to Elasticsearch, to try the publisher and
// the Kibana dashboard (elasticsearch_dashboard.json).
//
//	ELASTICSEARCH_PASSWORD=... go run ./examples/telemetry/elasticsearch -hosts https://localhost:9200 -user elastic
//
// The credentials come from the environment variables of the eventpipeline
// command: ELASTICSEARCH_USERNAME (or -user) and ELASTICSEARCH_PASSWORD, or
// ELASTICSEARCH_API_KEY; ELASTICSEARCH_CLOUD_ID replaces -hosts for Elastic
// Cloud. Credentials are refused over plain http:// to a host other than
// loopback unless -allow-insecure is given.
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
	user := flag.String("user", os.Getenv("ELASTICSEARCH_USERNAME"),
		"username for basic authentication (default $ELASTICSEARCH_USERNAME; password from ELASTICSEARCH_PASSWORD)")
	insecure := flag.Bool("allow-insecure", false, "allow credentials over plain http:// to a host other than loopback")
	runs := flag.Int("runs", 200, "event runs to record")
	flag.Parse()
	if err := run(*hosts, *prefix, *user, *insecure, *runs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(hosts, prefix, user string, insecure bool, runs int) error {
	cfg := elasticsearch.Config{
		IndexPrefix:   prefix,
		AllowInsecure: insecure,
		Username:      user,
		Password:      telemetry.NewSecret(os.Getenv("ELASTICSEARCH_PASSWORD")),
		APIKey:        telemetry.NewSecret(os.Getenv("ELASTICSEARCH_API_KEY")),
		CloudID:       telemetry.NewSecret(os.Getenv("ELASTICSEARCH_CLOUD_ID")),
	}
	if cfg.CloudID.IsZero() {
		cfg.Hosts = strings.Split(hosts, ",")
	}
	pub, err := elasticsearch.NewPublisher(cfg)
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
