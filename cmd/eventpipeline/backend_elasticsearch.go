package main

import (
	"context"
	"flag"
	"strings"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// The Elasticsearch backend: --elasticsearch HOSTS turns it on; secrets
// come from ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD,
// ELASTICSEARCH_API_KEY and ELASTICSEARCH_CLOUD_ID.
func init() {
	var hosts, prefix string
	backends = append(backends, backend{
		name: "elasticsearch",
		flags: func(fs *flag.FlagSet) func() bool {
			fs.StringVar(&hosts, "elasticsearch", "",
				"also publish to Elasticsearch at these comma-separated `hosts` (such as localhost:9200); credentials from\n"+
					"ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD, or ELASTICSEARCH_API_KEY, or ELASTICSEARCH_CLOUD_ID")
			fs.StringVar(&prefix, "elasticsearch-index-prefix", "", "index `prefix` (default event-pipeline-metrics)")
			return func() bool { return hosts != "" || prefix != "" }
		},
		open: func(_ context.Context, _ *telemetry.Recorder, getenv func(string) string) (telemetry.Publisher, string, error) {
			var list []string
			for h := range strings.SplitSeq(hosts, ",") {
				if h = strings.TrimSpace(h); h != "" {
					list = append(list, h)
				}
			}
			p, err := elasticsearch.NewPublisher(elasticsearch.Config{
				Hosts:       list,
				IndexPrefix: prefix,
				Username:    getenv("ELASTICSEARCH_USERNAME"),
				Password:    elasticsearch.Secret(getenv("ELASTICSEARCH_PASSWORD")),
				APIKey:      elasticsearch.Secret(getenv("ELASTICSEARCH_API_KEY")),
				CloudID:     elasticsearch.Secret(getenv("ELASTICSEARCH_CLOUD_ID")),
			})
			return p, "", err
		},
	})
}
