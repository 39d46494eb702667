package main

import (
	"context"
	"flag"
	"fmt"
	"net"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
)

// The Prometheus backend: --prometheus HOST:PORT serves /metrics there
// (with the delivery counters of every publisher of the demo), and the demo
// keeps running until interrupted so that Prometheus can scrape it.
func init() {
	var addr string
	backends = append(backends, backend{
		name: "prometheus",
		flags: func(fs *flag.FlagSet) func() bool {
			fs.StringVar(&addr, "prometheus", "",
				"also serve the metrics for Prometheus at `HOST:PORT` (such as 127.0.0.1:2112; port 0 picks a free one)\n"+
					"and keep running until interrupted")
			return func() bool { return addr != "" }
		},
		// The demo attaches the publisher to its Recorder, whose delivery
		// counters it then exports.
		open: func(context.Context, *telemetry.Recorder, func(string) string) (telemetry.Publisher, string, error) {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return nil, "", fmt.Errorf("--prometheus %q: want HOST:PORT: %w", addr, err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, "", err
			}
			p, err := prometheus.NewPublisher(prometheus.Config{Listener: ln})
			if err != nil {
				ln.Close()
				return nil, "", err
			}
			return p, p.URL(), nil
		},
	})
}
