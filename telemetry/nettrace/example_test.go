package nettrace_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

func ExampleTransport() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "pong")
	}))
	defer srv.Close()

	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())
	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}

	ctx := nettrace.WithTaskID(context.Background(), "task-1")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	m, _ := r.Network().Metrics("task-1")
	fmt.Println(m.Operation, m.Host, m.Status, m.BytesSent, m.BytesReceived)
	// Output:
	// http_request 127.0.0.1 completed 0 4
}

func ExampleDialer() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())
	d := &nettrace.Dialer{Network: r.Network()}

	// A dead address: the failed dial is a failed operation.
	_, err := d.Dial("tcp", "127.0.0.1:1")
	fmt.Println(err != nil, len(r.Network().FailedOperations()))
	// Output:
	// true 1
}
