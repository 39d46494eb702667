package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// errSpansAborted is the error of an export that Shutdown's context ended
// before it began.
var errSpansAborted = errors.New("otlp: span export stopped: Shutdown's context ended")

// A spanExporter is the SpanExporter of a [TracerProvider]: it exports
// with the official otlptracehttp exporter, whose own retries are off, and
// retries by the module's one schedule (Config.Retry through
// retry.Policy.Next), knowing the HTTP status and Retry-After of each
// attempt from the capturing client (retry.CaptureClient), as the metrics
// Pusher does. It counts what it exported and dropped, and logs a give-up
// once with its count of spans.
type spanExporter struct {
	inner     sdktrace.SpanExporter // the otlptracehttp exporter
	u         *url.URL              // of the traces signal
	url       string                // u as logs and errors show it: safetext.URL
	timeout   time.Duration         // of one attempt
	retry     retry.Policy
	jitter    func(time.Duration) time.Duration // nil means random
	log       *slog.Logger                      // nil means slog.Default() at the time of logging
	closeIdle func()                            // releases the idle connections of a client of our own; nil for the user's

	// ctx ends when abort is called (Shutdown's context ended): exports in
	// progress stop retrying at once, later ones are dropped.
	ctx   context.Context
	abort context.CancelFunc

	stats traceCounters

	logMu   sync.Mutex
	logged  map[int]bool // statuses whose permanent rejection was logged
	pending uint64       // spans dropped since the last give-up logged
	lastLog time.Time    // when a give-up was last logged
	failing bool         // the last export failed: log the next success
	stopped bool         // Shutdown was called
}

// traceCounters are the values of [TraceStats], updated with atomics.
type traceCounters struct {
	exported, failedAttempts, dropped, rejected atomic.Uint64
	lastExport, lastError                       atomic.Int64 // Unix nanoseconds, 0 for never
	lastStatus                                  atomic.Int64
}

var _ sdktrace.SpanExporter = (*spanExporter)(nil)

// newSpanExporter returns a spanExporter of inner, posting to u, with
// the timeout, retry policy and logger of cfg (defaults applied).
func newSpanExporter(inner sdktrace.SpanExporter, u *url.URL, cfg *Config, jitter func(time.Duration) time.Duration) *spanExporter {
	e := &spanExporter{inner: inner, u: u, url: safetext.URL(u), timeout: cfg.Timeout, retry: retry.Policy(cfg.Retry),
		jitter: jitter, log: cfg.Logger, logged: make(map[int]bool)}
	e.ctx, e.abort = context.WithCancel(context.Background())
	return e
}

// ExportSpans exports spans, retrying transient failures (connection
// errors, 408, 429, 5xx) by the retry policy, after the server's
// Retry-After if any, while ctx lasts; each attempt is limited by the
// timeout. It gives up at once on other statuses, and when a wait would
// outlast ctx. It returns nil once the endpoint accepted the spans, and
// otherwise an error saying how many spans were dropped, wrapping the
// last attempt's (a *StatusError for an HTTP status, marked with
// telemetry.Permanent if not worth retrying).
func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	n := uint64(len(spans))
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)() // Shutdown's context ended: stop at once
	// An abort before this export is checked here: AfterFunc calls cancel
	// in a goroutine of its own, maybe only after the first attempt began.
	if e.ctx.Err() != nil || ctx.Err() != nil {
		err := context.Cause(ctx)
		if e.ctx.Err() != nil {
			err = errSpansAborted
		}
		e.drop(ctx, n, 0, 0, err, false)
		return fmt.Errorf("otlp: %d spans dropped, not sent: %w", n, err)
	}
	first := time.Now()
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, e.timeout)
		actx, c := retry.WithCapture(actx)
		err := e.inner.ExportSpans(actx, spans)
		acancel()
		e.stats.lastStatus.Store(int64(c.Status))
		if err == nil || c.Status/100 == 2 {
			e.stats.exported.Add(n)
			e.stats.lastExport.Store(time.Now().UnixNano())
			e.logRecovered(ctx, attempt)
			if err != nil {
				// A partial success: the receiver took the request but
				// rejected some spans, which it would reject again.
				return fmt.Errorf("otlp: OTLP trace export to %s: partial success: %w", e.url, err)
			}
			return nil
		}
		e.stats.failedAttempts.Add(1)
		e.stats.lastError.Store(time.Now().UnixNano())
		if c.Status != 0 {
			err = statusError("OTLP trace export to "+e.url, c.Status, err.Error())
		} else {
			err = fmt.Errorf("otlp: OTLP trace export to %s: %w", e.url, err)
		}
		if c.Status != 0 && !retry.RetryableStatus(c.Status) {
			e.drop(ctx, n, attempt, c.Status, err, true)
			return telemetry.Permanent(fmt.Errorf("otlp: %d spans dropped, rejected: %w", n, err))
		}
		wait, again := time.Duration(0), ctx.Err() == nil
		if again {
			// The one retry schedule: the server's hint or the backoff,
			// capped at MaxBackoff, the last attempt at MaxElapsed exactly.
			wait, again = e.retry.Next(attempt, time.Since(first), c.RetryAfter, e.jitter)
		}
		if dl, ok := ctx.Deadline(); again && ok && time.Until(dl) < wait {
			again = false // the wait would outlast the export's context
		}
		if again {
			e.logger().LogAttrs(ctx, slog.LevelDebug, "otlp: span export attempt failed, retrying",
				slog.String("url", e.url), slog.Int("attempt", attempt), slog.Int("status_code", c.Status),
				slog.Duration("wait", wait), slog.String("error", err.Error()))
			again = retry.Sleep(ctx, wait)
		}
		if !again {
			e.drop(ctx, n, attempt, c.Status, err, false)
			return fmt.Errorf("otlp: %d spans dropped after %d attempt(s): %w", n, attempt, err)
		}
	}
}

// Shutdown shuts the otlptracehttp exporter down, releases the idle
// connections of a client of our own, and logs the totals.
func (e *spanExporter) Shutdown(ctx context.Context) error {
	err := e.inner.Shutdown(ctx)
	if e.closeIdle != nil {
		e.closeIdle()
	}
	e.logMu.Lock()
	again := e.stopped
	e.stopped = true
	e.logMu.Unlock()
	if !again {
		e.logger().LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "otlp: stopped exporting spans",
			slog.String("url", e.url), slog.Uint64("exported_spans", e.stats.exported.Load()),
			slog.Uint64("dropped_spans", e.stats.dropped.Load()))
	}
	if err != nil {
		return fmt.Errorf("otlp: shut down trace exporter: %w", err)
	}
	return nil
}

// Stats returns the current counters. It reads atomics only.
func (e *spanExporter) Stats() TraceStats {
	c := &e.stats
	s := TraceStats{
		ExportedSpans:  c.exported.Load(),
		FailedAttempts: c.failedAttempts.Load(),
		DroppedSpans:   c.dropped.Load(),
		RejectedSpans:  c.rejected.Load(),
		LastStatus:     int(c.lastStatus.Load()),
	}
	if t := c.lastExport.Load(); t != 0 {
		s.LastExport = time.Unix(0, t)
	}
	if t := c.lastError.Load(); t != 0 {
		s.LastError = time.Unix(0, t)
	}
	return s
}

func (e *spanExporter) logger() *slog.Logger {
	if e.log != nil {
		return e.log
	}
	return slog.Default()
}

// drop counts n spans given up after attempts (0: none was made), the
// last answered with status (0: none) and failing with err, permanent if
// the endpoint rejected them for good, and logs it: the first rejection
// with each status at once, other give-ups at most once a minute, each
// line with the spans dropped since the last line, so that the counts of
// the lines add up to DroppedSpans.
func (e *spanExporter) drop(ctx context.Context, n uint64, attempts, status int, err error, permanent bool) {
	e.stats.dropped.Add(n)
	if permanent {
		e.stats.rejected.Add(n)
	}
	e.logMu.Lock()
	e.failing = true
	e.pending += n
	first := permanent && !e.logged[status]
	if permanent {
		e.logged[status] = true
	}
	now := time.Now()
	if !first && !e.lastLog.IsZero() && now.Sub(e.lastLog) < time.Minute {
		e.logMu.Unlock()
		return
	}
	dropped := e.pending
	e.pending, e.lastLog = 0, now
	e.logMu.Unlock()
	attrs := []slog.Attr{slog.String("url", e.url), slog.Uint64("dropped_spans", dropped),
		slog.Int("attempt", attempts), slog.Int("status_code", status), slog.String("error", err.Error())}
	level, msg := slog.LevelWarn, "otlp: span export given up, spans dropped; further give-ups within a minute are logged with the next"
	if permanent {
		level, msg = slog.LevelError, "otlp: span export rejected, not retrying, spans dropped"
		attrs = append(attrs, slog.String("hint", hint(status)))
	}
	e.logger().LogAttrs(context.WithoutCancel(ctx), level, msg, attrs...)
}

// logRecovered logs the first success after failures.
func (e *spanExporter) logRecovered(ctx context.Context, attempts int) {
	e.logMu.Lock()
	was := e.failing
	e.failing = false
	e.logMu.Unlock()
	if was {
		e.logger().LogAttrs(ctx, slog.LevelInfo, "otlp: span export succeeded again",
			slog.String("url", e.url), slog.Int("attempt", attempts))
	}
}
