package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/webview"
)

// uiTokenEnv is the environment variable holding the token the web view
// (demo --ui) asks for.
const uiTokenEnv = "EVENTPIPELINE_UI_TOKEN"

// uiToken returns the token of EVENTPIPELINE_UI_TOKEN; zero if it is unset
// or empty.
func uiToken() telemetry.Secret { return telemetry.NewSecret(os.Getenv(uiTokenEnv)) }

// A uiServer serves the web view of the demo's Recorder.
type uiServer struct {
	url  string // such as http://127.0.0.1:8080/
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// startUI attaches a web view to rec and serves it on addr, asking for
// token if it is not zero, and believing the X-Forwarded-For header of
// requests from proxies (webview.Config.TrustedProxies). Problems of the
// server go to errOut.
func startUI(addr string, rec *telemetry.Recorder, token telemetry.Secret, proxies []netip.Prefix, errOut io.Writer) (*uiServer, error) {
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	view, err := webview.New(rec, webview.Config{Token: token, Logger: logger, TrustedProxies: proxies})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		view.Close()
		return nil, err
	}
	// Without a token, parseDemoFlags refused an address beyond loopback
	// (a host name may still resolve to another one: then the view, which
	// answers only requests to a loopback host without a token, refuses
	// the others).
	listenWarning(errOut, "demo", "the web view", ln.Addr(),
		"over plain HTTP its token ("+uiTokenEnv+") and session cookie travel in clear text; "+
			"serve it on 127.0.0.1, or behind a reverse proxy that serves HTTPS")
	// No WriteTimeout, which would end the live-update streams: the view
	// gives each response, and each write to a stream, a deadline of its
	// own. The only body read is the login form's, which the view caps.
	srv := &http.Server{
		Handler:           view,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // client disconnects, TLS probes: noise
	}
	srv.RegisterOnShutdown(func() { view.Close() }) // ends the live-update streams
	u := &uiServer{url: "http://" + ln.Addr().String() + "/", srv: srv, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(errOut, "eventpipeline demo: web view: %s\n", printable(err.Error()))
		}
	}()
	return u, nil
}

// stop stops serving, giving requests in progress up to 5 seconds.
func (u *uiServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if u.srv.Shutdown(ctx) != nil {
		u.srv.Close()
	}
	<-u.done
}
