package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// workerTokenEnv is the environment variable holding the worker's bearer
// token, read by `worker` (which asks callers for it) and by `demo` (which
// sends it).
const workerTokenEnv = "EVENTPIPELINE_WORKER_TOKEN"

const workerUsage = `Usage: eventpipeline worker [flags]

Serves the demo's remote events (geocode, score) over HTTP at /events until
interrupted (Ctrl-C), for 'eventpipeline demo --worker ADDR' run from another
process or machine. Prints the address it listens on.

Authentication: if the environment variable ` + workerTokenEnv + ` is
set, every request must carry it as "Authorization: Bearer <token>" (demo
sends it from the same variable); with --client-ca, every client must
present a certificate signed by that CA. A request without valid
credentials gets 401. The worker refuses to listen on an address other than
localhost or a loopback IP without one of them. Use --tls-cert and
--tls-key so that the token does not travel in clear text. At most 10 wrong
tokens a minute are checked from each client address (429 beyond): behind a
reverse proxy, give its address with --trusted-proxy so that each client is
known by the X-Forwarded-For the proxy appends, and a guesser does not lock
out all the proxy's clients.

Limits: request bodies of at most 1 MiB and inputs of at most 10,000 JSON
values (413 beyond), 32 requests at once (503 beyond), 1 minute per event;
a client has 5s to send a request's header and 30s for the whole request,
and an idle connection is closed after 1 minute. A panic in an event is
logged on stderr with its stack and answered with a generic 500.

Telemetry: with --otlp URL, the worker records each event it runs and
pushes the metrics and the traces over OTLP/HTTP to the collector at that
base URL (headers from ` + envOTLPHeaders + `), one last time when it
stops. Each run's span is a child of the caller's remote-call span (W3C
traceparent), so that a demo run with --otlp to the same collector is one
trace across both processes.

Exit codes: 0 after an interrupt, 1 if it cannot listen or load its
certificates, 2 usage error (including a non-loopback --addr without
authentication).

Flags:
`

// workerToken returns the token of the environment variable
// EVENTPIPELINE_WORKER_TOKEN; zero if it is unset or empty.
func workerToken() telemetry.Secret { return telemetry.NewSecret(os.Getenv(workerTokenEnv)) }

// runWorker runs `worker`.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8700", "`HOST:PORT` to listen on ("+listenHelp+")")
	certFile := fs.String("tls-cert", "", "serve HTTPS with the certificate (chain) of this PEM `FILE`; needs --tls-key")
	keyFile := fs.String("tls-key", "", "private key (PEM `FILE`) of --tls-cert")
	caFile := fs.String("client-ca", "", "ask every client for a certificate signed by a CA of this PEM `FILE`; needs --tls-cert")
	var proxies proxyList
	fs.Var(&proxies, "trusted-proxy", "`CIDR` of a reverse proxy in front of the worker "+trustedProxyHelp)
	var otlpF otlpFlags
	otlpF.register(fs, "the worker's")
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
	if *addr, err = listenAddr("addr", *addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(*addr)
	if (*certFile == "") != (*keyFile == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if *caFile != "" && *certFile == "" {
		return usagef("--client-ca needs --tls-cert and --tls-key: client certificates are asked for in the TLS handshake")
	}
	token := workerToken()
	if token.IsZero() && *caFile == "" && !isLoopbackHost(host) {
		return usagef("refusing to listen on %s without authentication: anyone who reaches it could run the worker's events; "+
			"set %s to a shared token (and use --tls-cert/--tls-key), or use --client-ca, or listen on a loopback address", *addr, workerTokenEnv)
	}
	cfg := pipeline.WorkerConfig{Token: token, TrustedProxies: proxies, Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	if *certFile != "" {
		if cfg.TLS, err = serverTLS(*certFile, *keyFile, *caFile); err != nil {
			return err
		}
	}
	pub, err := otlpF.publisher("eventpipeline-worker", os.Getenv)
	if err != nil {
		return usagef("--otlp: %v", err)
	}
	events := workerEvents(nil)
	var rec *telemetry.Recorder
	if pub != nil {
		tp, err := otlpF.tracerProvider(ctx, "eventpipeline-worker", os.Getenv)
		if err != nil {
			pub.Close(context.Background())
			return usagef("--otlp: %v", err)
		}
		traced := &tracedOTLP{Publisher: pub, tp: tp}
		if rec, err = telemetry.NewRecorder(telemetry.WithPublishers(traced)); err != nil {
			traced.Close(context.Background())
			return err
		}
		cfg.Recorder, cfg.TracerProvider, cfg.Propagator = rec, tp, tracePropagator
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		closeWorkerRecorder(rec, stderr)
		return err
	}
	stop, err := serveWorkerWith(ln, cfg, events, stderr)
	if err != nil {
		closeWorkerRecorder(rec, stderr)
		return err
	}
	risk := "callers must give the token of " + workerTokenEnv
	switch {
	case cfg.TLS == nil:
		risk = "without --tls-cert, the token of " + workerTokenEnv + " travels in clear text"
	case *caFile != "":
		risk = "callers must show a certificate signed by --client-ca"
	}
	listenWarning(stderr, "worker", "the worker", ln.Addr(), risk)
	scheme, auth := "http", []string{}
	if cfg.TLS != nil {
		scheme = "https"
	}
	if !token.IsZero() {
		auth = append(auth, "token")
	}
	if *caFile != "" {
		auth = append(auth, "client certificate")
	}
	if len(auth) == 0 {
		auth = append(auth, "none")
	}
	fmt.Fprintf(stdout, "worker listening on %s (%s, authentication: %s; events: geocode, score); Ctrl-C to stop\n",
		ln.Addr(), scheme, strings.Join(auth, " and "))
	if pub != nil {
		fmt.Fprintf(stdout, "worker pushing its metrics and traces over OTLP to %s\n", safetext.URLString(pub.URL()))
	}
	<-ctx.Done()
	stop()
	closeWorkerRecorder(rec, stderr)
	fmt.Fprintln(stdout, "worker stopped")
	return nil
}

// closeWorkerRecorder closes rec, if not nil, giving its publisher 10
// seconds for its last push; a failure is reported on errOut.
func closeWorkerRecorder(rec *telemetry.Recorder, errOut io.Writer) {
	if rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		// The error may quote a server's answer: escaped, on one line.
		fmt.Fprintf(errOut, "eventpipeline worker: last push of the metrics: %s\n", printable(err.Error()))
	}
}

func serverTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading --tls-cert and --tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("loading --client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loading --client-ca: no PEM certificate in %s", caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// serveWorkerWith serves events on ln with cfg and returns a function that
// stops serving. A failure to serve is reported to errOut.
func serveWorkerWith(ln net.Listener, cfg pipeline.WorkerConfig, events []pipeline.Event, errOut io.Writer) (stop func(), err error) {
	w, err := pipeline.NewWorker(cfg, events...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(errOut, "eventpipeline worker: %s\n", printable(err.Error()))
		}
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Shutdown(ctx)
		wg.Wait()
	}, nil
}
