package webview

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Bounds of what the collector keeps of one record's text: a record may
// carry an error text of up to [telemetry.WithMaxErrorLength] bytes, and the
// view keeps hundreds of records.
const (
	maxErrorText = 2048 // bytes of an error text
	maxName      = 256  // bytes of an event name, task id, host or operation
	durSamples   = 256  // durations kept per event name for the percentiles
)

// otherNames is the key, in collector.names, of the runs of the event names
// beyond Config.MaxEventNames. StartEvent refuses an empty event name, so it
// is never a real one.
const otherNames = ""

// A collector is the Publisher that a Handler attaches to its Recorder. The
// Recorder's delivery goroutine hands it each finished record through the
// publisher's own bounded queue, so the code that records never waits for
// it, nor for a page that reads it. It keeps bounded aggregates: the recent
// finished records, the recent failures, counts per second over the chart
// window, and the recent durations of each event name.
type collector struct {
	now      func() time.Time
	maxNames int

	mu        sync.Mutex
	recent    ring[telemetry.EventMetrics]
	failed    ring[telemetry.EventMetrics]
	netRecent ring[telemetry.NetworkMetrics]
	netFailed ring[telemetry.NetworkMetrics]
	seconds   []second              // by Unix second modulo len(seconds)
	names     map[string]*nameStats // by event name; otherNames for the overflow
	count     uint64                // records taken so far
	changed   chan struct{}         // closed when a record arrives, if watched
	watched   bool                  // someone waits on changed
}

// A second counts the records that arrived during one second.
type second struct {
	unix                     int64 // the second; a stale slot holds an older one
	completed, failed        uint32
	netCompleted, netFailed  uint32
	bytesSent, bytesReceived int64
}

// nameStats are the runs of one event name that the view has seen.
type nameStats struct {
	name              string // its copy of the name, shared by the records kept
	completed, failed uint64
	durs              ring[time.Duration]
}

var (
	_ telemetry.Publisher = (*collector)(nil)
	_ telemetry.Namer     = (*collector)(nil)
)

func newCollector(cfg *Config, now func() time.Time) *collector {
	return &collector{
		now:       now,
		maxNames:  cfg.MaxEventNames,
		recent:    newRing[telemetry.EventMetrics](cfg.RecentRuns),
		failed:    newRing[telemetry.EventMetrics](cfg.RecentFailures),
		netRecent: newRing[telemetry.NetworkMetrics](cfg.RecentRuns),
		netFailed: newRing[telemetry.NetworkMetrics](cfg.RecentFailures),
		seconds:   make([]second, int(cfg.Window/time.Second)),
		names:     make(map[string]*nameStats),
		changed:   make(chan struct{}),
	}
}

// Name returns "webview", its name in [telemetry.PublisherStats].
func (c *collector) Name() string { return "webview" }

// PublishEventMetrics takes the record of a finished event run. It never
// fails.
func (c *collector) PublishEventMetrics(_ context.Context, m telemetry.EventMetrics) error {
	// The record's strings are copied and cut: the view keeps no reference
	// into the record (the Publisher contract), and a bounded size. The
	// event name is the copy kept by its nameStats.
	m.TaskID = clip(m.TaskID, maxName)
	m.PipelineID = clip(m.PipelineID, maxName)
	m.Error = clip(m.Error, maxErrorText)
	now := c.now()
	// The names are kept, and so looked up, cut: a longer name is cut
	// here, so that its runs find the counts of its first.
	if len(m.EventName) > maxName {
		m.EventName = clip(m.EventName, maxName)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	ns := c.names[m.EventName]
	switch {
	case ns != nil:
		m.EventName = ns.name
	case len(c.names) < c.maxNames:
		m.EventName = strings.Clone(m.EventName)
		ns = &nameStats{name: m.EventName, durs: newRing[time.Duration](durSamples)}
		c.names[m.EventName] = ns
	default:
		m.EventName = strings.Clone(m.EventName)
		if ns = c.names[otherNames]; ns == nil {
			ns = &nameStats{name: otherNames, durs: newRing[time.Duration](durSamples)}
			c.names[otherNames] = ns
		}
	}
	c.recent.add(m)
	s := c.second(now)
	if m.Status == telemetry.StatusFailed {
		c.failed.add(m)
		s.failed++
	} else {
		s.completed++
	}
	if m.Status == telemetry.StatusFailed {
		ns.failed++
	} else {
		ns.completed++
	}
	ns.durs.add(m.Duration())
	c.took()
	return nil
}

// PublishNetworkMetrics takes the record of a finished network operation.
// It never fails.
func (c *collector) PublishNetworkMetrics(_ context.Context, m telemetry.NetworkMetrics) error {
	m.TaskID = clip(m.TaskID, maxName)
	m.Host = clip(m.Host, maxName)
	m.Operation = clip(m.Operation, maxName)
	m.Error = clip(m.Error, maxErrorText)
	now := c.now()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.netRecent.add(m)
	s := c.second(now)
	if m.Status == telemetry.StatusFailed {
		c.netFailed.add(m)
		s.netFailed++
	} else {
		s.netCompleted++
	}
	s.bytesSent += m.BytesSent
	s.bytesReceived += m.BytesReceived
	c.took()
	return nil
}

// second returns the counts of the second of t, reset if its slot held an
// older second. c.mu is held.
func (c *collector) second(t time.Time) *second {
	u := t.Unix()
	s := &c.seconds[int(u%int64(len(c.seconds))+int64(len(c.seconds)))%len(c.seconds)]
	if s.unix != u {
		*s = second{unix: u}
	}
	return s
}

// took counts a record and wakes those waiting for one. c.mu is held.
func (c *collector) took() {
	c.count++
	if c.watched {
		close(c.changed)
		c.changed = make(chan struct{})
		c.watched = false
	}
}

// taken returns the number of records taken so far.
func (c *collector) taken() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// version returns the number of records taken so far and a channel closed
// when the next one arrives.
func (c *collector) version() (uint64, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watched = true
	return c.count, c.changed
}

// perSecond returns the counts of the last n seconds up to now, oldest
// first; seconds with nothing are zero.
func (c *collector) perSecond(now time.Time) []second {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.seconds)
	out := make([]second, n)
	end := now.Unix()
	for i := range out {
		u := end - int64(n-1-i)
		s := c.seconds[int(u%int64(n)+int64(n))%n]
		if s.unix != u {
			s = second{unix: u}
		}
		out[i] = s
	}
	return out
}

// nameSummary is what the view knows of the runs of one event name.
type nameSummary struct {
	Name              string // "" for the names beyond Config.MaxEventNames
	Completed, Failed uint64
	Samples           int // durations the percentiles come from
	P50, P90, P99     time.Duration
	Max               time.Duration
}

// byName returns a summary per event name, by name.
func (c *collector) byName() []nameSummary {
	type copied struct {
		nameSummary
		durs []time.Duration
	}
	c.mu.Lock()
	all := make([]copied, 0, len(c.names))
	for name, ns := range c.names {
		d := make([]time.Duration, 0, ns.durs.n)
		ns.durs.newest(func(v *time.Duration) bool { d = append(d, *v); return true })
		all = append(all, copied{nameSummary{Name: name, Completed: ns.completed, Failed: ns.failed}, d})
	}
	c.mu.Unlock()

	out := make([]nameSummary, len(all))
	for i, a := range all {
		slices.Sort(a.durs)
		s := a.nameSummary
		s.Samples = len(a.durs)
		s.P50, s.P90, s.P99 = quantile(a.durs, 0.50), quantile(a.durs, 0.90), quantile(a.durs, 0.99)
		if len(a.durs) > 0 {
			s.Max = a.durs[len(a.durs)-1]
		}
		out[i] = s
	}
	slices.SortFunc(out, func(a, b nameSummary) int {
		switch {
		case a.Name == otherNames: // the overflow last
			return 1
		case b.Name == otherNames:
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// quantile returns the q-quantile of sorted by the nearest-rank method; 0
// for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// events returns up to limit of the recent finished event runs (or of the
// recent failed ones) for which keep is true, newest first.
func (c *collector) events(failedOnly bool, limit int, keep func(*telemetry.EventMetrics) bool) []telemetry.EventMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.recent
	if failedOnly {
		r = &c.failed
	}
	return pick(r, limit, keep)
}

// network returns up to limit of the recent network operations (or of the
// recent failed ones) for which keep is true, newest first.
func (c *collector) network(failedOnly bool, limit int, keep func(*telemetry.NetworkMetrics) bool) []telemetry.NetworkMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.netRecent
	if failedOnly {
		r = &c.netFailed
	}
	return pick(r, limit, keep)
}

func pick[T any](r *ring[T], limit int, keep func(*T) bool) []T {
	var out []T
	r.newest(func(v *T) bool {
		if keep == nil || keep(v) {
			out = append(out, *v)
		}
		return len(out) < limit
	})
	return out
}

// clip returns a copy of s (never sharing its memory) cut to at most n
// bytes at a UTF-8 boundary, ending with "…" if it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
