package elasticsearch_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
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

// ExampleConfig shows that the credentials of a Config never print: they
// are [telemetry.Secret]s, read with Reveal.
func ExampleConfig() {
	cfg := elasticsearch.Config{
		Hosts:    []string{"https://es.example.com:9200"},
		Username: "elastic",
		Password: telemetry.NewSecret(os.Getenv("ELASTICSEARCH_PASSWORD") + "changeme"),
	}
	fmt.Printf("%v\n", cfg.Password)
	fmt.Printf("%q %x\n", cfg.Password, cfg.Password)
	fmt.Println(strings.HasSuffix(cfg.Password.Reveal(), "changeme"))
	// Output:
	// REDACTED
	// REDACTED REDACTED
	// true
}

// ExampleErrInsecure shows the error of a Config that would send
// credentials in clear text, and the opt-out.
func ExampleErrInsecure() {
	cfg := elasticsearch.Config{
		Hosts:  []string{"es.internal:9200"}, // no scheme: http://
		APIKey: telemetry.NewSecret("a2V5"),
		Logger: slog.New(slog.DiscardHandler),
	}
	_, err := elasticsearch.NewPublisher(cfg)
	fmt.Println(errors.Is(err, elasticsearch.ErrInsecure))
	fmt.Println(err)

	cfg.AllowInsecure = true // a network you trust, such as a private one
	pub, err := elasticsearch.NewPublisher(cfg)
	fmt.Println(err)
	pub.Close(context.Background())
	// Output:
	// true
	// elasticsearch: credentials over plain http: Hosts[0] "http://es.internal:9200" is not https, so the credentials would be sent in clear text; use https://, or set AllowInsecure to allow it
	// <nil>
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
