package main

import (
	"context"
	"flag"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/grafanacloud"
)

// The Grafana Cloud backend: --grafana-cloud-instance-id and a region or an
// endpoint turn it on; the access-policy token comes from
// GRAFANA_CLOUD_API_KEY.
func init() {
	var instance, region, endpoint string
	backends = append(backends, backend{
		name: "grafanacloud",
		flags: func(fs *flag.FlagSet) func() bool {
			fs.StringVar(&instance, "grafana-cloud-instance-id", "",
				"also push to Grafana Cloud as this stack instance `id` (the basic-auth user); the token is read from GRAFANA_CLOUD_API_KEY")
			fs.StringVar(&region, "grafana-cloud-region", "", "Grafana Cloud `region` such as prod-us-east-0 (OTLP gateway)")
			fs.StringVar(&endpoint, "grafana-cloud-endpoint", "",
				"Grafana Cloud `URL`: a remote-write URL (.../api/prom/push) or an OTLP URL (.../otlp); overrides the region")
			return func() bool { return instance != "" || region != "" || endpoint != "" }
		},
		open: func(_ context.Context, _ *telemetry.Recorder, getenv func(string) string) (telemetry.Publisher, string, error) {
			p, err := grafanacloud.NewPublisher(grafanacloud.Config{
				APIKey:   telemetry.NewSecret(getenv("GRAFANA_CLOUD_API_KEY")),
				OrgSlug:  instance,
				Region:   region,
				Endpoint: endpoint,
			})
			return p, "", err
		},
	})
}
