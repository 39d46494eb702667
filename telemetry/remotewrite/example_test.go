package remotewrite_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/remotewrite"
)

// A Publisher pushes to a remote-write URL, here a multi-tenant Mimir.
func ExampleNewPublisher() {
	pub, err := remotewrite.NewPublisher(remotewrite.Config{
		URL:            "https://mimir.example.com/api/v1/push",
		Username:       "eventpipeline",
		Password:       telemetry.NewSecret("pa55word"), // in practice from the environment
		Headers:        map[string]telemetry.Secret{"X-Scope-OrgID": telemetry.NewSecret("tenant-1")},
		ExternalLabels: map[string]string{"cluster": "eu-1"},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	// In a program: telemetry.NewRecorder(telemetry.WithPublishers(pub)),
	// whose Close pushes one last time and closes pub. Here nothing is
	// recorded, so Close pushes nothing.
	defer pub.Close(context.Background())
	fmt.Println(pub.URL())
	fmt.Printf("%v\n", pub) // never the credentials
	// Output:
	// https://mimir.example.com/api/v1/push
	// remotewrite.Publisher(https://mimir.example.com/api/v1/push)
}

// Every missing or malformed setting is reported at once, by name.
func ExampleNewPublisher_invalidConfig() {
	_, err := remotewrite.NewPublisher(remotewrite.Config{
		URL:         "http://mimir.internal/api/v1/push",
		BearerToken: telemetry.NewSecret("t0ken"),
		Username:    "u",
	})
	fmt.Println(err)
	// Output:
	// remotewrite: URL "http://mimir.internal/api/v1/push" is not https, so the credentials would be sent in clear text; use https://, or set AllowInsecure to allow it
	// remotewrite: BearerToken cannot be combined with Username and Password: choose one way to authenticate
}
