// Command prometheus is a runnable example of the Prometheus publisher: it
// records a simulated pipeline (events that complete, fail and retry, and
// network calls) and serves the metrics for a Prometheus server to scrape,
// until interrupted.
//
//	go run ./examples/telemetry/prometheus -addr 127.0.0.1 -port 2112
//	curl -s http://127.0.0.1:2112/metrics | grep ^event_
//
// Point a Prometheus server at it and import
// examples/telemetry/prometheus_dashboard.json into Grafana to see the
// dashboard move.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
)

func main() {
	addr := flag.String("addr", prometheus.DefaultAddr, "address to bind the metrics server to (0.0.0.0 for all interfaces)")
	port := flag.Int("port", prometheus.DefaultPort, "port of the metrics server")
	flag.Parse()
	if err := run(*addr, *port); err != nil {
		slog.Error("example failed", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

func run(addr string, port int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	rec, err := telemetry.NewRecorder()
	if err != nil {
		return err
	}
	defer rec.Close(context.Background())
	pub, err := prometheus.NewPublisher(prometheus.Config{Addr: addr, Port: port})
	if err != nil {
		return err
	}
	// Attaching the publisher to rec makes it export rec's delivery
	// counters (telemetry_publisher_*) as well.
	if err := rec.AddPublisher(pub); err != nil {
		return err
	}
	slog.Info("recording a simulated pipeline; press Ctrl-C to stop", slog.String("url", pub.URL()))

	events := []string{"extract", "transform", "load"}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		task := "task-" + strconv.Itoa(n)
		event := events[n%len(events)]
		if err := rec.StartEvent(event, task); err != nil {
			return err
		}
		if err := rec.Network().StartOperation(task, "worker.internal", 8080, "remote_call"); err != nil {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		var callErr error
		if rand.IntN(20) == 0 {
			callErr = errors.New("connection reset by peer")
		}
		if err := rec.Network().EndOperation(task, int64(512+rand.IntN(512)), int64(rand.IntN(8192)), callErr); err != nil {
			return err
		}
		if rand.IntN(5) == 0 {
			rec.RecordRetry(task)
		}
		var runErr error
		if callErr != nil || rand.IntN(10) == 0 {
			runErr = errors.New("event failed")
		}
		if err := rec.EndEvent(task, runErr); err != nil {
			return err
		}
	}
}
