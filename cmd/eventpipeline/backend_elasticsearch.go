package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// Environment variables of the Elasticsearch backend: secrets are never
// flags.
const (
	envESUsername = "ELASTICSEARCH_USERNAME"
	envESPassword = "ELASTICSEARCH_PASSWORD"
	envESAPIKey   = "ELASTICSEARCH_API_KEY"
	envESCloudID  = "ELASTICSEARCH_CLOUD_ID"
)

// The Elasticsearch backend: --elasticsearch HOSTS or
// --elasticsearch-index-prefix turns it on (the latter alone, with
// ELASTICSEARCH_CLOUD_ID, for Elastic Cloud); credentials come from
// ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD, or
// ELASTICSEARCH_API_KEY. Credentials over plain http to a host other than
// loopback are refused unless --elasticsearch-allow-insecure is given.
func init() {
	var (
		hosts, prefix string
		allowInsecure bool
	)
	backends = append(backends, backend{
		name: "elasticsearch",
		flags: func(fs *flag.FlagSet) func() bool {
			fs.StringVar(&hosts, "elasticsearch", "",
				"also publish to Elasticsearch at these comma-separated `hosts` (such as https://localhost:9200); credentials from\n"+
					envESUsername+" and "+envESPassword+", or "+envESAPIKey+"; for Elastic Cloud, set "+envESCloudID+" and pass --elasticsearch-index-prefix instead of hosts")
			fs.StringVar(&prefix, "elasticsearch-index-prefix", "", "index `prefix` (default event-pipeline-metrics)")
			fs.BoolVar(&allowInsecure, "elasticsearch-allow-insecure", false,
				"allow Elasticsearch credentials over plain http:// to a host other than loopback (they cross the network in clear text)")
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
				Hosts:         list,
				IndexPrefix:   prefix,
				AllowInsecure: allowInsecure,
				Username:      getenv(envESUsername),
				Password:      telemetry.NewSecret(getenv(envESPassword)),
				APIKey:        telemetry.NewSecret(getenv(envESAPIKey)),
				CloudID:       telemetry.NewSecret(getenv(envESCloudID)),
			})
			if errors.Is(err, elasticsearch.ErrInsecure) {
				err = fmt.Errorf("%w (pass --elasticsearch-allow-insecure to allow it)", err)
			}
			return p, "", err
		},
	})
}
