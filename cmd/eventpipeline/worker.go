package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/eventpipeline/eventpipeline/pipeline"
)

const workerUsage = `Usage: eventpipeline worker [flags]

Serves the demo's remote events (geocode, score) over HTTP at /events until
interrupted (Ctrl-C), for 'eventpipeline demo --worker ADDR' run from another
process or machine. Prints the address it listens on.

Exit codes: 0 after an interrupt, 1 if it cannot listen, 2 usage error.

Flags:
`

// runWorker runs `worker`.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8700", "address to listen on (port 0: a free port)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), workerUsage)
		fs.PrintDefaults()
	}
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("--addr: %v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	stop, err := serveWorker(ln, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "worker listening on %s (events: geocode, score); Ctrl-C to stop\n", ln.Addr())
	<-ctx.Done()
	stop()
	fmt.Fprintln(stdout, "worker stopped")
	return nil
}

// serveWorker serves the sample worker events on ln and returns a function
// that stops serving. A failure to serve is reported to errOut.
func serveWorker(ln net.Listener, errOut io.Writer) (stop func(), err error) {
	w, err := pipeline.NewWorker(workerEvents()...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(pipeline.DefaultPath, w)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(errOut, "worker: %v\n", err)
		}
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		wg.Wait()
	}, nil
}
