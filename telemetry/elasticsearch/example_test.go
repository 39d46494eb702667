package elasticsearch_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// ExampleNewPublisher publishes the records of a Recorder to Elasticsearch
// (here a local stand-in of a node; in real use, Hosts is your cluster, such
// as "localhost:9200").
func ExampleNewPublisher() {
	node, err := esfake.New(esfake.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	pub, err := elasticsearch.NewPublisher(elasticsearch.Config{
		Hosts:       []string{node.Addr()}, // no scheme: http:// is assumed
		IndexPrefix: "pipeline-metrics",
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
	if err != nil {
		log.Fatal(err)
	}
	rec.StartEvent("load_orders", "task-1")
	rec.EndEvent("task-1", nil)
	rec.Network().StartOperation("task-1", "db.internal", 5432, "query")
	rec.Network().EndOperation("task-1", 120, 4096, nil)

	// Close delivers what is buffered.
	if err := rec.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
	for _, d := range node.AllDocs() {
		// The index name ends with the UTC date of the record: -YYYY.MM.DD.
		fmt.Println(d.Index[:strings.LastIndex(d.Index, "-")], d.Source["metric_type"], d.Source["status"])
	}
	fmt.Println("template installed:", node.TemplatePuts() == 1)
	// Output:
	// pipeline-metrics-event event completed
	// pipeline-metrics-network network completed
	// template installed: true
}

// ExampleSecret shows that credentials in a Config never print.
func ExampleSecret() {
	cfg := elasticsearch.Config{Username: "elastic", Password: "changeme"}
	fmt.Printf("%v\n", cfg.Password)
	fmt.Printf("%q %x\n", cfg.Password, cfg.Password)
	fmt.Println(string(cfg.Password) == "changeme") // an explicit conversion reads it
	// Output:
	// REDACTED
	// REDACTED REDACTED
	// true
}

// ExampleIndexPrefixError shows the error of an index prefix that cannot
// start an Elasticsearch index name.
func ExampleIndexPrefixError() {
	_, err := elasticsearch.NewPublisher(elasticsearch.Config{IndexPrefix: "Pipeline Metrics"})
	var pe *elasticsearch.IndexPrefixError
	if errors.As(err, &pe) {
		fmt.Println(pe.Reason)
	}
	// Output:
	// must be lower case
}
