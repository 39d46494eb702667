package webview_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
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
