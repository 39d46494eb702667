package prometheus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// An application that already serves /metrics registers the publisher in
// its own registry; the publisher then serves nothing itself.
func ExampleNewPublisher() {
	ctx := context.Background()
	r, err := telemetry.NewRecorder()
	if err != nil {
		panic(err)
	}
	defer r.Close(ctx) // also closes the publisher: unregisters its metrics

	reg := prom.NewRegistry() // the application's registry, served on its /metrics
	pub, err := prometheus.NewPublisher(prometheus.Config{Registry: reg})
	if err != nil {
		panic(err)
	}
	// AddPublisher attaches pub to r: pub exports r's delivery counters
	// as the telemetry_publisher_* self-metrics.
	if err := r.AddPublisher(pub); err != nil {
		panic(err)
	}

	r.StartEvent("load_orders", "task-1")
	r.RecordRetry("task-1")
	r.EndEvent("task-1", nil)
	r.StartEvent("load_orders", "task-2")
	r.EndEvent("task-2", errors.New("timeout"))
	r.Network().StartOperation("task-1", "db.internal", 5432, "query")
	r.Network().EndOperation("task-1", 120, 4096, nil)

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			switch {
			case m.GetHistogram() != nil:
				fmt.Printf("%s{%s} count %d\n", mf.GetName(), strings.Join(labels, ","), m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil && strings.HasPrefix(mf.GetName(), "telemetry_publisher_records_published"):
				fmt.Printf("%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue())
			case m.GetCounter() != nil && !strings.HasPrefix(mf.GetName(), "telemetry_"):
				fmt.Printf("%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// event_duration_seconds{event_name=load_orders,status=completed} count 1
	// event_duration_seconds{event_name=load_orders,status=failed} count 1
	// event_retries_total{event_name=load_orders} 1
	// network_bytes_total{direction=received,operation=query} 4096
	// network_bytes_total{direction=sent,operation=query} 120
	// network_latency_seconds{operation=query} count 1
	// telemetry_publisher_records_published_total{publisher=prometheus} 3
}

// With no registry, the publisher serves its own. Here it listens on a
// free port; by default it listens on 127.0.0.1:2112.
func ExampleNewPublisher_serve() {
	ctx := context.Background()
	r, err := telemetry.NewRecorder()
	if err != nil {
		panic(err)
	}
	defer r.Close(ctx)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	pub, err := prometheus.NewPublisher(prometheus.Config{Listener: ln})
	if err != nil {
		panic(err)
	}
	r.AddPublisher(pub)

	r.StartEvent("transform", "task-1", telemetry.WithPipelineID("run-42"))
	r.EndEvent("task-1", nil)

	resp, err := http.Get(pub.URL()) // what Prometheus scrapes
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event_duration_seconds_count") {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// event_duration_seconds_count{event_name="transform",status="completed"} 1
	// event_duration_seconds_count{event_name="transform",status="failed"} 0
}
