// Package webview serves a live web view of a [telemetry.Recorder]: what is
// running, what failed and why, what is slow, and how delivery to the
// publishers goes, updated in the browser as records arrive.
//
// A minimal use, beside a program's other handlers:
//
//	view, err := webview.New(rec, webview.Config{})
//	if err != nil {
//		return err
//	}
//	defer view.Close()
//	mux.Handle("/telemetry/", http.StripPrefix("/telemetry", view))
//
// The command serves it with eventpipeline demo --ui 127.0.0.1:8080.
//
// # What it shows
//
// The pages are rendered on the server with html/template; the charts are
// SVG documents drawn on the server with gonum.org/v1/plot. Nothing is
// fetched from another site, and there is no build step.
//
//   - Overview (/): runs by status (completed, failed, in flight, since the
//     Recorder started), event runs per second and the share that failed
//     over the last [Config.Window] (charts), duration percentiles (p50,
//     p90, p99, max) per event name over its last 256 runs (a table and a
//     chart), retry statistics ([telemetry.Recorder.RetryStats]) and the
//     health of each publisher ([telemetry.Recorder.PublisherStats]:
//     queued, published, failed attempts, dropped by reason, panics).
//   - In flight (/inflight): the runs still pending, the oldest first, with
//     their age.
//   - Failed (/failed): the recent failed runs with their error texts,
//     newest first.
//   - Slow (/slow?threshold=250ms): the recent runs that took longer than a
//     threshold set on the page ([Config.SlowThreshold] by default).
//   - Network (/network?threshold=1s): operations, failures and bytes
//     since the Recorder started; the recent failed and slow operations.
//   - A run (/run?id=TASK): one run by task id ([telemetry.Recorder.Metrics])
//     and the network operations it made (task ids "TASK/call-N", as
//     package pipeline names them).
//
// Task ids link to their run's page. Every text that comes from a record
// (event names, task ids, error texts, hosts, publisher names) is escaped,
// in the pages and in the charts' labels, with control, format (such as
// bidirectional controls and zero-width spaces) and invalid characters
// shown as escapes such as \x1b, \u202e or \u200b.
//
// The view learns of records through a publisher of its own, attached by
// [New] (its name in [telemetry.PublisherStats] is "webview"): what
// finished before New is counted in the Recorder's totals but not in the
// lists, charts and percentiles.
//
// # Mounting it
//
// A [Handler] is an [net/http.Handler]. Its links are relative, so it can be
// mounted under any path that ends with a slash, with [net/http.StripPrefix]
// as above. It answers GET and HEAD (and POST for the login form, below);
// every other method gets 405. It changes nothing in the Recorder.
//
// A server that serves it should set ReadHeaderTimeout and IdleTimeout, and
// call [Handler.Close] on shutdown (with RegisterOnShutdown), which ends
// the live-update streams that Shutdown would otherwise wait for. It needs
// no server WriteTimeout (which would end the streams): the view gives each
// response a write deadline of 10 seconds, and each write to a stream its
// own, so that a client that stops reading holds nothing for long.
//
// # Security
//
// Every response carries a Content-Security-Policy that allows only the
// view's own script, style sheet and images and nothing inline ("default-src
// 'none'; script-src 'self'; style-src 'self'; ..."; the charts may only
// style their shapes), X-Content-Type-Options: nosniff, X-Frame-Options:
// DENY, Referrer-Policy: same-origin and Cache-Control: no-store. So even
// text that escaped the escaping could not run a script.
//
// Without a token ([Config.Token] zero) the view answers only requests
// whose Host is localhost or a loopback address, so that another web site
// cannot read it through a DNS name pointed at 127.0.0.1 (DNS rebinding);
// serve it on a loopback address. With a token, every request but those of
// the login page and the static files must carry it, either as the header
// "Authorization: Bearer TOKEN" (for scripts and curl; the scheme in any
// case, as HTTP allows) or as the session cookie that the login page
// (login, a form that POSTs the token) sets: the browser's live-update
// stream (EventSource) cannot send a header. Tokens are compared in
// constant time; a request without a valid one gets 401. At most 10 wrong
// tokens (from the login form and bearer headers together) are checked per
// minute from each client address (an IPv6 one by its /64), and 100 from
// all clients together but those that sent the right token within the
// hour (the view keeps the budgets of at most 4,096 addresses in use,
// in memory; further ones share one budget of 10); beyond, tokens are
// not checked and the answer is 429, so that the
// token cannot be found by trying many, while the clients in use, and
// sessions, keep working. Behind a reverse proxy every request comes from
// the proxy's address, so that a guesser would lock out every user: list
// the proxy in [Config.TrustedProxies], and the client of a request from
// it is the rightmost address of its X-Forwarded-For header that is not a
// trusted proxy (the entries left of it could be forged). Only
// X-Forwarded-For is read, and only from those addresses. The token never
// appears in a page, a cookie, a log line or an error.
//
// # Sessions
//
// The session cookie is HttpOnly (the pages' script cannot read it),
// SameSite=Strict (another site's pages do not send it), Secure when the
// view is served over TLS or the login form was posted from an https page
// (its Origin, or Referer, says so: a reverse proxy that serves HTTPS),
// and without Path or Domain: it goes to the
// directory of the login page (wherever the view is mounted) on this host
// only. Browsers keep one set of cookies per host, whatever the port, so
// its name carries the port the browser asked for, such as
// eventpipeline_webview_8080: two views on two ports of 127.0.0.1 keep
// their own sessions side by side.
//
// Its value is the time of the login and an HMAC-SHA256 of that time and
// of the request's Host, under a key drawn at random when the Handler is
// made. So a session:
//
//   - ends [Config.SessionLifetime] (12 hours by default) after the login,
//     as the view checks on every request (the cookie's Max-Age says the
//     same to the browser); then the view asks for the token again, a
//     live-update stream opened with it ends (within 5 seconds), and an
//     open page, whose next update gets 401, shows the login link;
//   - opens only this Handler: not another view with the same token, nor
//     this one after a restart (log in again);
//   - opens it only under the Host it was opened for: a copy of the cookie
//     sent under another host name or port is refused.
//
// Every request that needs the token, or that would show records without
// one, is refused with 403 when a browser says another origin's page made
// it (Sec-Fetch-Site other than same-origin, or without it an Origin other
// than the view's), unless it is a GET navigation: a link followed to the
// view is served, but a page of another port of the same host (which is
// the same site, so SameSite=Strict lets the cookie go with its requests)
// cannot load the view's pages, charts or stream with the user's session,
// nor post to the login form.
//
// What a cookie over plain HTTP cannot do. A browser sends the cookies of
// 127.0.0.1 to every server on 127.0.0.1, whatever the port: any other
// program of the host that the browser visits (another developer tool, a
// test server) receives the session cookie, and can send it to the view
// itself, with whatever headers it likes, until the session ends; and on a
// network, anyone who sees the traffic sees the cookie and the token. The
// short lifetime and the binding to one Handler and one Host bound that,
// they do not prevent it. So: on a shared machine, do not browse other
// servers of untrusted programs of the same host while logged in, or keep
// SessionLifetime short; to serve the view beyond loopback, put it behind
// a reverse proxy that serves HTTPS (and passes the Host header on, which
// sessions and the origin check compare, and appends the client's address
// to X-Forwarded-For), where the cookie is Secure and travels encrypted,
// and set [Config.TrustedProxies] to the proxy's address, so that each
// client has its own budget of wrong tokens. The view does not serve TLS
// itself.
//
// # Live updates
//
// Each page opens a stream of server-sent events (/events). The server
// sends an "update" event when records have arrived (at most one every 250
// milliseconds per stream) and at least every 5 seconds; the page's script
// (static/app.js, a few lines) then fetches the same page again and swaps
// its live part, without a reload, so that a run that finishes appears
// within a second. At most [Config.MaxStreams] streams are open at once;
// the page's script opens a refused one again after a wait (2 seconds,
// doubling up to a minute), as it does a stream that the view refused
// after [Handler.Close]. A browser's request for a stream from a page of
// another origin (Sec-Fetch-Site other than same-origin) gets 403, so that
// another site cannot hold the streams.
//
// # Cost
//
// The view never makes the code that records wait. Its publisher is a
// queued one: recording appends each finished record to the view's
// bounded buffer in the Recorder, under the lock it already holds (a
// record that finds the buffer full is dropped from the view, and counted
// in PublisherStats), and the Recorder's delivery goroutine adds it to
// the view's aggregates. Pages and
// charts read those aggregates, all bounded: [Config.RecentRuns] recent
// runs and network operations, [Config.RecentFailures] recent failures of
// each, one count per second of [Config.Window], and 256 durations for each
// of at most [Config.MaxEventNames] event names. They call
// [telemetry.Recorder.Stats] and RetryStats (counters), Metrics (one run),
// and, for the page of runs in flight only,
// [telemetry.Recorder.PendingEvents], which reads the pending runs only: at
// most once per [Config.PendingInterval]. A chart is
// drawn at most once a second, whatever the number of viewers.
// BenchmarkRecording compares recording with and without the view, and
// with a page open and refreshing; BenchmarkServe measures a page and a
// chart.
//
// # Concurrency
//
// A Handler is safe for concurrent use.
package webview
