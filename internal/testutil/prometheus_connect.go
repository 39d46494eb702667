package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// ConnectPrometheus returns a [Prometheus] for a server that is already
// running at url, such as one named by an environment variable for an
// opt-in test. Only URL, API and Query are usable: the server is not
// started or stopped, and Log returns an error text. It fails the test if
// url is not a valid address.
func ConnectPrometheus(t testing.TB, url string) *Prometheus {
	t.Helper()
	client, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatalf("prometheus client for %s: %v", url, err)
	}
	return &Prometheus{URL: url, API: v1.NewAPI(client)}
}
