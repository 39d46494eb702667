package webview

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Bounds of the lists of a page.
const (
	maxRows     = 100 // rows of a list of runs or operations
	maxInFlight = 100 // runs in flight listed, the oldest first
	maxRecentOp = 20  // recent network operations on the network page
)

//go:embed assets
var assets embed.FS

// pageData is what a page's template shows. Each page fills the fields it
// needs.
type pageData struct {
	tmpl  string // the template: the page's name
	Title string
	Nav   string // the navigation entry of the page
	Now   time.Time
	Since time.Time // when the view was attached
	// Version is the number of records the view has taken; Stamp makes
	// chart URLs change when their content may have.
	Version uint64
	Stamp   string

	NeedsToken bool
	Problem    string // a problem with the request, shown on the page

	Stats      telemetry.Stats
	Completed  uint64
	LastMinute struct{ Runs, Failed uint32 }
	Window     time.Duration
	Names      []nameSummary
	Retries    telemetry.RetrySummary
	RetryRows  []retryRow
	Publishers []telemetry.PublisherStats

	Threshold     string // as the page's input sets it, such as "250ms"
	Over          string // the threshold used: Threshold, or the default if it is not a duration
	Among         int    // the number of recent records a list is taken from
	Events        []telemetry.EventMetrics
	Network       []telemetry.NetworkMetrics
	FailedNetwork []telemetry.NetworkMetrics
	SlowNetwork   []telemetry.NetworkMetrics
	InFlight      []telemetry.EventMetrics
	InFlightTotal int
	TakenAt       time.Time

	TaskID string
	Run    *telemetry.EventMetrics
	Ops    []telemetry.NetworkMetrics // the operation of the task id itself

	Live bool // the page updates itself
}

type retryRow struct {
	Retries int
	Runs    uint64
}

var templates = parseTemplates("overview", "inflight", "failed", "slow", "network", "run", "login", "unauthorized")

func parseTemplates(names ...string) map[string]*template.Template {
	funcs := template.FuncMap{
		"show":  func(s string) string { return visible(s, false) },
		"text":  func(s string) string { return visible(s, true) },
		"dur":   roundDuration,
		"clock": func(t time.Time) string { return t.Local().Format("15:04:05.000") },
		"age":   func(now, t time.Time) time.Duration { return roundDuration(now.Sub(t)).Truncate(time.Millisecond) },
		"pct": func(part, total uint64) string {
			if total == 0 {
				return "–"
			}
			return strconv.FormatFloat(100*float64(part)/float64(total), 'f', 1, 64) + "%"
		},
		"bytes":     humanBytes,
		"otherName": func(s string) bool { return s == otherNames },
		"sum":       func(a, b uint64) uint64 { return a + b },
	}
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		out[n] = template.Must(template.New(n).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+n+".html"))
	}
	return out
}

// render writes the page d with status.
func (h *Handler) render(w http.ResponseWriter, status int, d *pageData) {
	var b bytes.Buffer
	if err := templates[d.tmpl].ExecuteTemplate(&b, "layout", d); err != nil {
		h.logger().Warn("webview: page not drawn", "page", d.tmpl, "error", err)
		http.Error(w, "webview: the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// page serves the page that build makes.
func (h *Handler) page(build func(*http.Request, *pageData) int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := h.newPage("")
		d.Live = true
		status := build(r, d)
		h.render(w, status, d)
	})
}

func (h *Handler) newPage(tmpl string) *pageData {
	now := h.now()
	v := h.col.taken()
	return &pageData{
		tmpl: tmpl, Now: now, Since: h.since, Version: v, Window: h.cfg.Window,
		Stamp: strconv.FormatUint(v, 10) + "-" + strconv.FormatInt(now.Unix(), 10),
	}
}

func (h *Handler) overview(r *http.Request, d *pageData) int {
	d.tmpl, d.Title, d.Nav = "overview", "Overview", "overview"
	d.Stats = h.rec.Stats()
	d.Completed = d.Stats.EventsEnded - min(d.Stats.EventsEnded, d.Stats.EventsFailed)
	d.Publishers = d.Stats.Publishers
	secs := h.col.perSecond(d.Now)
	for _, s := range secs[max(len(secs)-60, 0):] {
		d.LastMinute.Runs += s.completed + s.failed
		d.LastMinute.Failed += s.failed
	}
	d.Names = h.col.byName()
	d.Retries = h.rec.RetryStats()
	for _, n := range slices.Sorted(maps.Keys(d.Retries.ByRetryCount)) {
		d.RetryRows = append(d.RetryRows, retryRow{n, d.Retries.ByRetryCount[n]})
	}
	return http.StatusOK
}

func (h *Handler) inFlightPage(r *http.Request, d *pageData) int {
	d.tmpl, d.Title, d.Nav = "inflight", "In flight", "inflight"
	d.InFlight, d.InFlightTotal, d.TakenAt = h.inFlight()
	return http.StatusOK
}

// inFlight returns the oldest runs in flight (up to maxInFlight), their
// number and when they were taken, at most Config.PendingInterval ago.
func (h *Handler) inFlight() ([]telemetry.EventMetrics, int, time.Time) {
	c := &h.pending
	c.mu.Lock()
	defer c.mu.Unlock()
	now := h.now()
	if !c.at.IsZero() && now.Sub(c.at) < h.cfg.PendingInterval {
		return c.runs, c.total, c.at
	}
	// PendingEvents reads the pending runs only, whatever the number of
	// records retained.
	c.runs, c.total = h.rec.PendingEvents(maxInFlight)
	c.at = now
	for i := range c.runs {
		m := &c.runs[i]
		m.EventName, m.TaskID, m.PipelineID = clip(m.EventName, maxName), clip(m.TaskID, maxName), clip(m.PipelineID, maxName)
	}
	return c.runs, c.total, c.at
}

func (h *Handler) failedPage(r *http.Request, d *pageData) int {
	d.tmpl, d.Title, d.Nav = "failed", "Failed runs", "failed"
	d.Stats = h.rec.Stats()
	d.Events = h.col.events(true, maxRows, nil)
	d.Among = h.cfg.RecentFailures
	return http.StatusOK
}

// threshold reads the threshold parameter of r into d, or the default.
func (h *Handler) threshold(r *http.Request, d *pageData) (time.Duration, bool) {
	d.Threshold = r.URL.Query().Get("threshold")
	d.Over = h.cfg.SlowThreshold.String()
	if d.Threshold == "" {
		d.Threshold = d.Over
		return h.cfg.SlowThreshold, true
	}
	t, err := time.ParseDuration(strings.TrimSpace(d.Threshold))
	if err != nil || t < 0 {
		// Shown back in its input only, and quoted in the problem.
		d.Problem = fmt.Sprintf("The threshold %q is not a duration such as 250ms or 2s; showing runs over %v.", d.Threshold, h.cfg.SlowThreshold)
		return h.cfg.SlowThreshold, false
	}
	d.Over = t.String()
	return t, true
}

func (h *Handler) slowPage(r *http.Request, d *pageData) int {
	d.tmpl, d.Title, d.Nav = "slow", "Slow runs", "slow"
	t, ok := h.threshold(r, d)
	d.Among = h.cfg.RecentRuns
	d.Events = h.col.events(false, maxRows, func(m *telemetry.EventMetrics) bool { return m.Duration() > t })
	if !ok {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func (h *Handler) networkPage(r *http.Request, d *pageData) int {
	d.tmpl, d.Title, d.Nav = "network", "Network operations", "network"
	d.Stats = h.rec.Stats()
	t, ok := h.threshold(r, d)
	d.Among = h.cfg.RecentRuns
	d.FailedNetwork = h.col.network(true, maxRows, nil)
	d.SlowNetwork = h.col.network(false, maxRows, func(m *telemetry.NetworkMetrics) bool { return m.Latency() > t })
	d.Network = h.col.network(false, maxRecentOp, nil)
	if !ok {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func (h *Handler) runPage(r *http.Request, d *pageData) int {
	d.tmpl, d.Title = "run", "Run"
	d.TaskID = r.URL.Query().Get("id")
	if d.TaskID == "" {
		d.Problem = "Give a task id."
		return http.StatusBadRequest
	}
	// Read from the Recorder, whose texts have any length: cut as the
	// view's own copies are (see collector), so that a long name cannot
	// make the page as long.
	if m, ok := h.rec.Metrics(d.TaskID); ok {
		m.EventName, m.TaskID, m.PipelineID = clip(m.EventName, maxName), clip(m.TaskID, maxName), clip(m.PipelineID, maxName)
		m.Error = clip(m.Error, maxErrorText)
		d.Run = &m
	}
	if m, ok := h.rec.Network().Metrics(d.TaskID); ok {
		m.TaskID, m.Host, m.Operation = clip(m.TaskID, maxName), clip(m.Host, maxName), clip(m.Operation, maxName)
		m.Error = clip(m.Error, maxErrorText)
		d.Ops = []telemetry.NetworkMetrics{m}
	}
	// The operations a run made, as package pipeline names them: the run's
	// task id, then "/call-N".
	prefix := d.TaskID + "/"
	d.Network = h.col.network(false, maxRows, func(m *telemetry.NetworkMetrics) bool {
		return strings.HasPrefix(m.TaskID, prefix)
	})
	slices.Reverse(d.Network) // in the order they were made
	if d.Run == nil && len(d.Ops) == 0 && len(d.Network) == 0 {
		d.Problem = "No run with this task id is retained."
		return http.StatusNotFound
	}
	return http.StatusOK
}

// chart serves one chart as an SVG document.
func (h *Handler) chart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	now := h.now()
	doc, status := h.drawChart(name, now)
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		http.NotFound(w, r)
		return
	default:
		http.Error(w, "webview: the chart could not be drawn", status)
		return
	}
	// Written without the cache's lock: a client that does not read
	// holds up no one else's charts.
	w.Header().Set("Content-Security-Policy", chartCSP)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write(doc)
}

// drawChart returns the chart name as drawn in the second of now (drawn
// then if it has not been yet), with status 200; or 404 for an unknown
// chart, or 500 if it could not be drawn.
func (h *Handler) drawChart(name string, now time.Time) ([]byte, int) {
	c := &h.charts
	c.mu.Lock()
	defer c.mu.Unlock() // one drawing at a time
	cached, ok := c.byKey[name]
	if !ok || cached.second != now.Unix() { // drawn at most once a second
		var b []byte
		var err error
		switch name {
		case "throughput.svg":
			b, err = throughputChart(h.col.perSecond(now))
		case "failures.svg":
			b, err = failureRateChart(h.col.perSecond(now))
		case "durations.svg":
			b, err = durationsChart(h.col.byName())
		default:
			return nil, http.StatusNotFound
		}
		if err != nil {
			h.logger().Warn("webview: chart not drawn", "chart", name, "error", err)
			return nil, http.StatusInternalServerError
		}
		if c.byKey == nil {
			c.byKey = make(map[string]cachedChart)
		}
		cached = cachedChart{second: now.Unix(), svg: b}
		c.byKey[name] = cached
	}
	return cached.svg, http.StatusOK // never changed: a new drawing replaces it
}

// serveStatic serves the view's script, style sheet and icon.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	types := map[string]string{
		"app.js":    "text/javascript; charset=utf-8",
		"style.css": "text/css; charset=utf-8",
		"icon.svg":  "image/svg+xml",
	}
	ct, ok := types[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
