package grafanacloud_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/grafanacloud"
)

// A Region selects OTLP to the stack's gateway; an Endpoint overrides it,
// and a remote-write URL selects Prometheus remote write.
func ExampleNewPublisher() {
	ctx := context.Background()
	pub, err := grafanacloud.NewPublisher(grafanacloud.Config{
		APIKey:  telemetry.NewSecret("glc_eyJvIjoiMTIzIn0="), // in practice: telemetry.NewSecret(os.Getenv("GRAFANA_CLOUD_API_KEY"))
		OrgSlug: "123456",                                    // the stack's instance id
		Region:  "prod-us-east-0",
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	// In a program: telemetry.NewRecorder(telemetry.WithPublishers(pub)),
	// and the Recorder's Close pushes one last time and closes pub. Here
	// nothing is recorded, so Close pushes nothing: no request leaves.
	defer pub.Close(ctx)
	fmt.Println(pub.Protocol(), pub.URL())

	rw, err := grafanacloud.NewPublisher(grafanacloud.Config{
		APIKey:   telemetry.NewSecret("glc_eyJvIjoiMTIzIn0="),
		OrgSlug:  "654321",
		Endpoint: "https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer rw.Close(ctx)
	fmt.Println(rw.Protocol(), rw.URL())
	fmt.Printf("%v\n", rw) // never the credentials
	// Output:
	// otlp https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/metrics
	// remote_write https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push
	// grafanacloud.Publisher(remote_write https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push)
}

// Every missing or malformed setting is reported at once, by name.
func ExampleNewPublisher_invalidConfig() {
	_, err := grafanacloud.NewPublisher(grafanacloud.Config{
		APIKey: telemetry.NewSecret("glc_eyJvIjoiMTIzIn0="),
		Region: "us east",
	})
	fmt.Println(err)
	// Output:
	// grafanacloud: OrgSlug is required: the stack's numeric instance id, the user of basic authentication
	// grafanacloud: Region "us east" is malformed: want a Grafana Cloud region such as prod-us-east-0
}

// The API key is a telemetry.Secret: it prints as REDACTED whatever the
// verb, alone or in the Config.
func ExampleConfig() {
	cfg := grafanacloud.Config{APIKey: telemetry.NewSecret("glc_eyJvIjoiMTIzIn0="), OrgSlug: "123456"}
	fmt.Println(cfg.APIKey)
	fmt.Printf("%q %x %#v\n", cfg.APIKey, cfg.APIKey, cfg.APIKey)
	fmt.Println(strings.Contains(fmt.Sprintf("%+v", cfg), "glc_"))
	// Output:
	// REDACTED
	// REDACTED REDACTED REDACTED
	// false
}

// A push the endpoint rejects with 401 (a wrong instance id or token) is
// not retried: Flush returns a *StatusError and Stats counts it.
func ExampleStatusError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "invalid token", http.StatusUnauthorized)
	}))
	defer srv.Close()
	pub, err := grafanacloud.NewPublisher(grafanacloud.Config{
		APIKey:   telemetry.NewSecret("wrong"),
		OrgSlug:  "123456",
		Endpoint: srv.URL + "/api/prom/push", // http is allowed to loopback only
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer pub.Close(context.Background())
	pub.PublishEventMetrics(context.Background(), telemetry.EventMetrics{EventName: "load", Status: telemetry.StatusCompleted})

	err = pub.Flush(context.Background())
	var se *grafanacloud.StatusError
	if errors.As(err, &se) {
		fmt.Println(se.Code, se.Temporary(), telemetry.IsPermanent(err))
	}
	s := pub.Stats()
	fmt.Println(s.Pushes, s.FailedAttempts, s.PermanentFailures)
	// Output:
	// 401 false true
	// 0 1 1
}
