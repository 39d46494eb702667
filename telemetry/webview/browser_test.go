package webview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// The browser tests drive Debian's chromium (installed by .ci/run) through
// the DevTools protocol with chromedp. Without a chromium in $PATH they
// skip, except under CI (CI set), where they fail.

// browserTimeout bounds every wait of a browser test: generous, since the
// machine may be busy; the tests assert on content, not on time.
const browserTimeout = 30 * time.Second

// browser returns a chromedp context of a headless chromium started for the
// test with a fresh profile, and stops it when the test ends. The profile
// is the temporary directory chromedp makes itself, not one of
// t.TempDir(): on stopping the browser, chromedp kills the child
// processes left writing in it and removes it with retries, where
// t.TempDir's single os.RemoveAll can fail the test with "directory not
// empty".
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium in $PATH: .ci/run installs Debian's chromium package")
		}
		t.Skip("skipping: no chromium in $PATH (Debian: apt-get install chromium)")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancel)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// A tab is one page of the browser, with what it logged.
type tab struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors and warnings, exceptions, browser log errors
	dialogs  []string // alert, confirm or prompt dialogs opened
}

// newTab opens a tab of the browser b that records its console problems
// and closes (and records) every dialog. It is closed when the test ends.
func newTab(t *testing.T, b context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				tb.mu.Lock()
				tb.problems = append(tb.problems, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
				tb.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, string(ev.Type)+": "+ev.Message)
			tb.mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return tb
}

// login logs the tab in to the view at base (a URL without the final
// slash) with token, through its login page, and waits for the overview.
func (tb *tab) login(t *testing.T, base, token string) {
	t.Helper()
	if status := tb.open(t, base+"/login"); status != 200 {
		t.Fatalf("the login page: got status %d, want 200", status)
	}
	if err := chromedp.Do(tb.ctx,
		chromedp.SetValue(chromedp.CSS(`input[name="token"]`), token),
		chromedp.Submit(chromedp.CSS(`input[name="token"]`)),
	); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, `document.readyState === "complete" && document.title.startsWith("Overview")`)
}

// clean fails the test if the tab logged a problem or opened a dialog.
func (tb *tab) clean(t *testing.T) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		t.Errorf("console: %s", p)
	}
	for _, d := range tb.dialogs {
		t.Errorf("a dialog opened: %s", d)
	}
}

// open navigates to url and returns the HTTP status of the page.
func (tb *tab) open(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	return resp.Status
}

// eval evaluates the JavaScript expression js.
func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor evaluates the JavaScript expression js until it is true, through
// navigations (an evaluation during one fails and is tried again).
func (tb *tab) waitFor(t *testing.T, js string) {
	t.Helper()
	deadline := time.Now().Add(browserTimeout)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = chromedp.Run(tb.ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	t.Fatalf("waiting %v for %s (last error: %v); the page says:\n%s", browserTimeout, js, err, body)
}

// waitLive waits until the page's live-update stream is open and its
// images are loaded, each with a size (a chart that is not valid SVG has
// none).
func (tb *tab) waitLive(t *testing.T) {
	t.Helper()
	tb.waitFor(t, `document.getElementById("live-status").textContent === "live"`)
	tb.waitImages(t)
}

func (tb *tab) waitImages(t *testing.T) {
	t.Helper()
	tb.waitFor(t, `Array.from(document.images).every(i => i.complete)`)
	if broken := eval[[]string](t, tb, `Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src)`); len(broken) > 0 {
		t.Errorf("images that did not load: %v", broken)
	}
}

// TestBrowser runs the browser tests in one browser, each in a tab of its
// own.
func TestBrowser(t *testing.T) {
	b := browser(t)
	b0 := b // for the subtests that name their fixtures a and b

	t.Run("pages load without console errors", func(t *testing.T) {
		f := newFixture(t, Config{}, nil)
		f.sample(t, 3)
		f.run(t, "extract", "pending-1", 0, 0, nil)
		if err := f.rec.StartEvent("transform", "still-running"); err != nil {
			t.Fatal(err)
		}
		f.op(t, "task-1/call-1", "127.0.0.1", 9, 10, 20, errors.New("connection refused"))
		tb := newTab(t, b)
		for _, path := range []string{"/", "/inflight", "/failed", "/slow?threshold=1ms", "/network?threshold=0s", "/run?id=pending-1"} {
			if status := tb.open(t, f.srv.URL+path); status != 200 {
				t.Errorf("%s: got status %d, want 200", path, status)
			}
			tb.waitLive(t)
		}
		if got := eval[string](t, tb, `document.querySelector("main").innerText`); !strings.Contains(got, "pending-1") {
			t.Errorf("the run page does not show its task id:\n%s", got)
		}
		tb.open(t, f.srv.URL+"/inflight")
		tb.waitLive(t)
		if got := eval[string](t, tb, `document.querySelector("main").innerText`); !strings.Contains(got, "still-running") {
			t.Errorf("the in-flight page does not show the pending run:\n%s", got)
		}
		tb.clean(t)
	})

	t.Run("a failure appears without reload", func(t *testing.T) {
		f := newFixture(t, Config{}, nil)
		f.sample(t, 1)
		tb := newTab(t, b)
		tb.open(t, f.srv.URL+"/failed")
		tb.waitLive(t)
		// A mark on the window: a reload would lose it.
		eval[chromedp.Void](t, tb, `window.__notReloaded = 42`)
		before := eval[string](t, tb, `document.getElementById("live").dataset.version`)

		start := time.Now()
		f.run(t, "load", "live-1", 0, 0, errors.New("warehouse: disk quota exceeded (live-1)"))
		tb.waitFor(t, `document.getElementById("live").innerText.includes("disk quota exceeded (live-1)")`)
		t.Logf("the failure appeared on the open page %v after it was recorded", time.Since(start).Round(time.Millisecond))

		if got := eval[int](t, tb, `window.__notReloaded || 0`); got != 42 {
			t.Errorf("the page was reloaded (the mark on the window is gone)")
		}
		if after := eval[string](t, tb, `document.getElementById("live").dataset.version`); after == before {
			t.Errorf("the live part still has version %s", after)
		}
		tb.clean(t)
	})

	t.Run("record text is shown, never run", func(t *testing.T) {
		const (
			name    = `<img src=x onerror=alert(1)>`
			errText = `</script><script>alert(2)</script> & "quotes" 'too'`
			task    = `task"><svg onload=alert(3)>`
		)
		f := newFixture(t, Config{}, nil)
		f.run(t, name, task, 0, 1, errors.New(errText))
		f.op(t, task+"/call-1", `<b>host</b>`, 80, 1, 2, errors.New(errText))
		tb := newTab(t, b)
		for _, path := range []string{"/", "/failed", "/slow?threshold=0s", "/network?threshold=0s", "/run?id=" + urlQuery(task)} {
			tb.open(t, f.srv.URL+path)
			tb.waitLive(t)
			checkInert(t, tb, path, name, errText)
		}
		// The same through a live update of an open page.
		tb.open(t, f.srv.URL+"/failed")
		tb.waitLive(t)
		f.run(t, name, "second", 0, 0, errors.New(errText+" (second)"))
		tb.waitFor(t, `document.getElementById("live").innerText.includes("(second)")`)
		tb.waitImages(t)
		checkInert(t, tb, "/failed after an update", name, errText)
		tb.clean(t)
	})

	t.Run("a task id links to its run page only", func(t *testing.T) {
		const task = "javascript:alert(4)//\u2028</script>"
		f := newFixture(t, Config{}, nil)
		f.run(t, "load", task, 0, 0, errors.New("failed"))
		tb := newTab(t, b)
		tb.open(t, f.srv.URL+"/failed")
		tb.waitLive(t)
		if n := eval[int](t, tb, `Array.from(document.querySelectorAll("a")).filter(a => new URL(a.href).origin !== location.origin).length`); n != 0 {
			t.Errorf("%d links lead out of the view", n)
		}
		if err := chromedp.Do(tb.ctx, chromedp.Click(chromedp.CSS(`#live a[href^="run?"]`))); err != nil {
			t.Fatal(err)
		}
		tb.waitFor(t, `location.pathname === "/run" && document.readyState === "complete"`)
		if got := eval[string](t, tb, `new URLSearchParams(location.search).get("id")`); got != task {
			t.Errorf("the link leads to the run of %q, want %q", got, task)
		}
		if got := eval[string](t, tb, `document.querySelector("main").innerText`); !strings.Contains(got, `javascript:alert(4)//\u2028</script>`) {
			t.Errorf("the run page does not show its task id (U+2028 escaped):\n%s", got)
		}
		tb.waitLive(t)
		tb.clean(t)
	})

	t.Run("another site cannot take the live streams", func(t *testing.T) {
		f := newFixture(t, Config{}, nil)
		var asked atomic.Int64
		view := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/events" {
				asked.Add(1)
			}
			f.h.ServeHTTP(w, r)
		}))
		t.Cleanup(view.Close)
		// A page of another origin (localhost, not 127.0.0.1) that opens
		// streams of the view in every way it can.
		const tries = 8
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><script>
window.held = [];
for (let i = 0; i < %d; i++) {
  window.held.push(new EventSource(%[2]q), fetch(%[2]q, {mode: "no-cors"}).catch(() => {}));
  const img = new Image(); img.src = %[2]q + "?" + i; window.held.push(img);
}
</script>`, tries, view.URL+"/events")
		}))
		t.Cleanup(other.Close)
		tb := newTab(t, b)
		tb.open(t, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/")
		for deadline := time.Now().Add(browserTimeout); asked.Load() < 3*tries; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the other page asked for %d streams, want %d", asked.Load(), 3*tries)
			}
		}
		if n := f.h.streams.Load(); n != 0 {
			t.Errorf("the other site holds %d live streams of the view", n)
		}
	})

	t.Run("the slow-threshold control changes the list", func(t *testing.T) {
		f := newFixture(t, Config{}, nil)
		for i := range 3 {
			f.run(t, "quick", fmt.Sprintf("quick-%d", i), 0, 0, nil)
		}
		for i := range 2 {
			f.run(t, "sluggish", fmt.Sprintf("sluggish-%d", i), 60*time.Millisecond, 0, nil)
		}
		tb := newTab(t, b)
		tb.open(t, f.srv.URL+"/slow")
		tb.waitLive(t)
		rows := `document.querySelectorAll("#live tbody tr").length`
		if got := eval[int](t, tb, rows); got != 0 {
			t.Errorf("over the default 1s: got %d rows, want 0", got)
		}
		for _, tc := range []struct {
			threshold string
			want      int
		}{{"50ms", 2}, {"0s", 5}, {"10m", 0}} {
			if err := chromedp.Do(tb.ctx,
				chromedp.SetValue(chromedp.ID("threshold"), tc.threshold),
				chromedp.Submit(chromedp.ID("threshold")),
			); err != nil {
				t.Fatal(err)
			}
			tb.waitFor(t, fmt.Sprintf(`location.search === "?threshold=%s" && document.readyState === "complete"`, tc.threshold))
			tb.waitLive(t)
			if got := eval[int](t, tb, rows); got != tc.want {
				t.Errorf("over %s: got %d rows, want %d", tc.threshold, got, tc.want)
			}
		}
		tb.clean(t)
	})

	t.Run("the token is required", func(t *testing.T) {
		const token = "s3cret-token"
		f := newFixture(t, Config{Token: telemetry.NewSecret(token)}, nil)
		f.run(t, "extract", "t1", 0, 0, errors.New("after login"))
		tb := newTab(t, b)
		if status := tb.open(t, f.srv.URL+"/failed"); status != 401 {
			t.Errorf("without the token: got status %d, want 401", status)
		}
		if got := eval[string](t, tb, `document.body.innerText`); strings.Contains(got, "after login") {
			t.Errorf("the page without the token shows records:\n%s", got)
		}
		tb.login(t, f.srv.URL, token)
		tb.waitLive(t) // the live stream gets through with the cookie
		tb.open(t, f.srv.URL+"/failed")
		tb.waitLive(t)
		if got := eval[string](t, tb, `document.body.innerText`); !strings.Contains(got, "after login") {
			t.Errorf("after login the failed page does not show the failure:\n%s", got)
		}
		tb.mu.Lock()
		tb.problems = nil // the 401 of the first page is logged by the browser, as it should be
		tb.mu.Unlock()
		tb.open(t, f.srv.URL+"/")
		tb.waitLive(t)
		tb.clean(t)
	})

	t.Run("two views on two ports stay logged in", func(t *testing.T) {
		// Browsers keep one set of cookies for 127.0.0.1, whatever the
		// port: each view must keep its own session beside the other's.
		const tokenA, tokenB = "token-of-view-a", "token-of-view-b"
		a := newFixture(t, Config{Token: telemetry.NewSecret(tokenA)}, nil)
		b := newFixture(t, Config{Token: telemetry.NewSecret(tokenB)}, nil)
		tabA, tabB := newTab(t, b0), newTab(t, b0)
		tabA.login(t, a.srv.URL, tokenA)
		tabB.login(t, b.srv.URL, tokenB)
		for round := range 3 {
			for _, v := range []struct {
				name string
				f    *fixture
				tb   *tab
			}{{"a", a, tabA}, {"b", b, tabB}} {
				// A new page load of each view, then a record that must
				// come through its live stream.
				for _, path := range []string{"/", "/failed"} {
					if status := v.tb.open(t, v.f.srv.URL+path); status != 200 {
						t.Fatalf("round %d, view %s, %s: got status %d, want 200 (logged out)", round, v.name, path, status)
					}
					v.tb.waitLive(t)
				}
				text := fmt.Sprintf("failure %d of view %s", round, v.name)
				v.f.run(t, "load", fmt.Sprintf("%s-%d", v.name, round), 0, 0, errors.New(text))
				v.tb.waitFor(t, fmt.Sprintf(`document.getElementById("live").innerText.includes(%q)`, text))
				if got := eval[string](t, v.tb, `document.cookie`); got != "" {
					t.Errorf("view %s: the page's script can read cookies %q, want HttpOnly ones", v.name, got)
				}
			}
		}
		// Either tab can open the other view too, in the same browser.
		for _, v := range []struct {
			f  *fixture
			tb *tab
		}{{a, tabB}, {b, tabA}} {
			if status := v.tb.open(t, v.f.srv.URL+"/failed"); status != 200 {
				t.Errorf("%s from the other tab: got status %d, want 200", v.f.srv.URL, status)
			}
			v.tb.waitLive(t)
		}
		tabA.clean(t)
		tabB.clean(t)
	})

	t.Run("an ended session leads to the login", func(t *testing.T) {
		const token = "s3cret-token"
		c := newClock()
		f := newFixture(t, Config{Token: telemetry.NewSecret(token), SessionLifetime: time.Hour}, c)
		tb := newTab(t, b0)
		tb.login(t, f.srv.URL, token)
		tb.open(t, f.srv.URL+"/failed")
		tb.waitLive(t)
		c.advance(time.Hour - time.Nanosecond)
		f.run(t, "load", "before-expiry", 0, 0, errors.New("recorded just before the session ends"))
		tb.waitFor(t, `document.getElementById("live").innerText.includes("just before the session ends")`)
		c.advance(time.Nanosecond)
		// The next update finds the session ended: the page is loaded
		// again, and asks for the token.
		f.run(t, "load", "at-expiry", 0, 0, errors.New("recorded as the session ends"))
		tb.waitFor(t, `document.readyState === "complete" && document.title.startsWith("Token needed")`)
		if got := eval[string](t, tb, `document.body.innerText`); strings.Contains(got, "session ends") {
			t.Errorf("the page shows records after the session ended:\n%s", got)
		}
		tb.login(t, f.srv.URL, token)
		tb.open(t, f.srv.URL+"/failed")
		tb.waitLive(t)
		if got := eval[string](t, tb, `document.body.innerText`); !strings.Contains(got, "recorded as the session ends") {
			t.Errorf("after a new login the failed page does not show the failure:\n%s", got)
		}
		tb.mu.Lock()
		tb.problems = nil // the browser logs the 401s of the ended session, as it should
		tb.mu.Unlock()
	})

	t.Run("a refused live stream is tried again", func(t *testing.T) {
		f := newFixture(t, Config{MaxStreams: 1}, nil)
		f.sample(t, 1)
		first := newTab(t, b)
		first.open(t, f.srv.URL+"/failed")
		first.waitLive(t) // holds the one stream
		second := newTab(t, b)
		second.open(t, f.srv.URL+"/failed")
		second.waitFor(t, `document.getElementById("live-status").textContent === "reconnecting"`)
		// The first page goes away, and its stream with it: the second
		// page must get one and show what happens next.
		if _, err := chromedp.Run(first.ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatal(err)
		}
		f.run(t, "load", "after-refusal", 0, 0, errors.New("shown once the stream was let in"))
		second.waitFor(t, `document.getElementById("live").innerText.includes("shown once the stream was let in")`)
		second.waitLive(t)
		second.mu.Lock()
		second.problems = nil // the browser logs the 503 of the refused stream, as it should
		second.mu.Unlock()
		first.clean(t)
	})

	t.Run("screenshot", func(t *testing.T) {
		c := newClock()
		f := newFixture(t, Config{}, c)
		f.sample(t, 150)
		if err := f.rec.StartEvent("transform", "running-1"); err != nil {
			t.Fatal(err)
		}
		tb := newTab(t, b)
		tb.open(t, f.srv.URL+"/")
		tb.waitLive(t)
		img, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		checkNotBlank(t, img)
		out := filepath.Join(t.TempDir(), "webview.png")
		if os.Getenv("UPDATE_SCREENSHOT") == "1" {
			out = filepath.Join("..", "..", "docs", "images", "webview.png")
		}
		if err := os.WriteFile(out, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(img))
		tb.clean(t)
	})
}

// checkInert checks that the page shows name and errText as text, and that
// they made no element: no image of src x, no script but the view's own,
// no element with an inline event handler.
func checkInert(t *testing.T, tb *tab, what, name, errText string) {
	t.Helper()
	text := eval[string](t, tb, `document.body.innerText`)
	if what != "/network?threshold=0s" && !strings.Contains(text, name) {
		t.Errorf("%s: the event name %q is not shown as text:\n%s", what, name, text)
	}
	if what != "/" && !strings.Contains(text, errText) {
		t.Errorf("%s: the error text %q is not shown as text:\n%s", what, errText, text)
	}
	if n := eval[int](t, tb, `document.querySelectorAll('img[src="x"], svg, b').length`); n != 0 {
		t.Errorf("%s: the record text made %d elements", what, n)
	}
	if n := eval[int](t, tb, `document.scripts.length`); n != 1 {
		t.Errorf("%s: got %d scripts, want the view's own only", what, n)
	}
	if n := eval[int](t, tb, `Array.from(document.querySelectorAll("*")).filter(e => Array.from(e.attributes).some(a => a.name.startsWith("on"))).length`); n != 0 {
		t.Errorf("%s: %d elements have an inline event handler", what, n)
	}
}

// checkNotBlank decodes the PNG b and checks that it has many colours, as
// a page with text, tables and charts has.
func checkNotBlank(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	colors := map[[4]uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			r, g, b, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, a}] = true
		}
	}
	if bounds.Dx() < 800 || bounds.Dy() < 600 || len(colors) < 64 {
		t.Errorf("the screenshot looks blank: %v, %d colours", bounds.Size(), len(colors))
	}
	_ = image.Point{}
}
