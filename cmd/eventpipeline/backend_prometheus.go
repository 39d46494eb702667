package main

import (
	"context"
	"flag"
	"net"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
)

// The Prometheus backend: --prometheus HOST:PORT serves /metrics there
// (with the delivery counters of every publisher of the demo), and the demo
// keeps running until interrupted so that Prometheus can scrape it. The
// address is read as --ui's (listenAddr): a bare PORT is 127.0.0.1:PORT.
func init() {
	var addr string
	var ln net.Listener
	backends = append(backends, backend{
		name: "prometheus",
		flags: func(fs *flag.FlagSet) func() bool {
			fs.StringVar(&addr, "prometheus", "",
				"also serve the metrics for Prometheus at `HOST:PORT` (such as 127.0.0.1:2112;\n"+
					listenHelp+")\n"+
					"and keep running until interrupted")
			return func() bool { return addr != "" }
		},
		// The demo attaches the publisher to its Recorder, whose delivery
		// counters it then exports.
		open: func(context.Context, *telemetry.Recorder, func(string) string) (telemetry.Publisher, string, error) {
			a, err := listenAddr("prometheus", addr)
			if err != nil {
				return nil, "", err
			}
			if ln, err = net.Listen("tcp", a); err != nil {
				return nil, "", err
			}
			p, err := prometheus.NewPublisher(prometheus.Config{Listener: ln})
			if err != nil {
				ln.Close()
				return nil, "", err
			}
			return p, p.URL(), nil
		},
		listens: func() (net.Addr, string) {
			return ln.Addr(), "anyone who reaches it can read the metrics (event names, failures, publishers); " +
				"serve them on 127.0.0.1, or behind a proxy that asks for authentication"
		},
	})
}
