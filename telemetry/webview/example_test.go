package webview_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/webview"
)

// The view mounted under /telemetry/ of a program's own mux, beside its
// other handlers.
func ExampleNew() {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(context.Background())
	view, err := webview.New(rec, webview.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer view.Close()
	mux := http.NewServeMux()
	mux.Handle("/telemetry/", http.StripPrefix("/telemetry", view))

	rec.StartEvent("load", "run-1/load")
	rec.EndEvent("run-1/load", errors.New("disk full"))
	rec.Flush(context.Background()) // the view has taken the record

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "http://localhost/telemetry/failed", nil))
	fmt.Println(w.Code, strings.Contains(w.Body.String(), "disk full"))
	// Output: 200 true
}

// A view that asks for a token: as a bearer token, or typed once into its
// login page, which sets a session cookie.
func ExampleConfig_token() {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(context.Background())
	view, err := webview.New(rec, webview.Config{Token: telemetry.NewSecret("s3cret")})
	if err != nil {
		log.Fatal(err)
	}
	defer view.Close()

	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret"} {
		req := httptest.NewRequest("GET", "http://view.example/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		view.ServeHTTP(w, req)
		fmt.Println(w.Code)
	}
	// Output:
	// 401
	// 401
	// 200
}

// A view behind a reverse proxy at 10.0.0.1, which appends the address of
// each client to X-Forwarded-For: a guesser's wrong tokens lock out its
// own address, not the proxy's other clients.
func ExampleConfig_trustedProxies() {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(context.Background())
	view, err := webview.New(rec, webview.Config{
		Token:          telemetry.NewSecret("s3cret"),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer view.Close()

	get := func(client, token string) int {
		req := httptest.NewRequest("GET", "http://view.example/", nil)
		req.RemoteAddr = "10.0.0.1:41000" // the proxy
		req.Header.Set("X-Forwarded-For", client)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		view.ServeHTTP(w, req)
		return w.Code
	}
	// The guesser's tokens are checked until its budget is spent (10).
	code := 0
	for code != http.StatusTooManyRequests {
		code = get("198.51.100.7", "guess")
	}
	fmt.Println(code)
	fmt.Println(get("203.0.113.9", "s3cret")) // another client of the proxy
	// Output:
	// 429
	// 200
}
