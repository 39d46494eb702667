package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// records are the telemetry records a summary or a report answers about:
// those a Recorder retains (demo) or those read from a JSON-lines file
// (report).
type records struct {
	events  []telemetry.EventMetrics
	network []telemetry.NetworkMetrics
}

// The queries of the report command, over records read from a file.

func (rs *records) failedEvents() []telemetry.EventMetrics {
	return filter(rs.events, func(m telemetry.EventMetrics) bool { return m.Status == telemetry.StatusFailed })
}

func (rs *records) slowEvents(d time.Duration) []telemetry.EventMetrics {
	return filter(rs.events, func(m telemetry.EventMetrics) bool { return m.Status != telemetry.StatusPending && m.Duration() > d })
}

func (rs *records) failedNetwork() []telemetry.NetworkMetrics {
	return filter(rs.network, func(m telemetry.NetworkMetrics) bool { return m.Status == telemetry.StatusFailed })
}

func (rs *records) slowNetwork(d time.Duration) []telemetry.NetworkMetrics {
	return filter(rs.network, func(m telemetry.NetworkMetrics) bool { return m.Status != telemetry.StatusPending && m.Latency() > d })
}

// retryStats computes what telemetry.Recorder.RetryStats does, over the
// records.
func (rs *records) retryStats() telemetry.RetrySummary {
	s := telemetry.RetrySummary{ByRetryCount: map[int]uint64{}}
	for _, m := range rs.events {
		if m.RetryCount > 0 {
			s.TotalRetries += uint64(m.RetryCount)
			s.EventsWithRetries++
			s.ByRetryCount[m.RetryCount]++
		}
	}
	return s
}

func statusCounts[M any](recs []M, status func(M) telemetry.Status) map[telemetry.Status]int {
	c := map[telemetry.Status]int{telemetry.StatusCompleted: 0, telemetry.StatusFailed: 0, telemetry.StatusPending: 0}
	for _, m := range recs {
		c[status(m)]++
	}
	return c
}

func filter[M any](recs []M, keep func(M) bool) []M {
	var out []M
	for _, m := range recs {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// sections says which parts of a summary to print.
type sections struct {
	status, failed, retries, network, failedNetwork bool
	slow, slowNetwork                               time.Duration // negative: not printed
	limit                                           int           // rows of each list, the last ones; 0: all
}

// allSections prints everything, with slow thresholds d.
func allSections(d time.Duration) sections {
	return sections{status: true, failed: true, retries: true, network: true, failedNetwork: true, slow: d, slowNetwork: d}
}

// printable returns s with every character that could act on a terminal
// or on the layout of a table replaced by its Go escape, as strconv.Quote
// writes it: the C0 controls (newline, carriage return, tab, ESC...), DEL,
// the C1 controls, the bidirectional controls (U+061C, U+200E, U+200F,
// U+202A-U+202E, U+2066-U+2069), the line and paragraph separators
// (U+2028, U+2029), and each byte that is not valid UTF-8 (as \xNN). So a
// name, a task id or an error text (a remote worker's included) is shown on
// one line, in its own cell, and cannot clear the screen, move the cursor,
// forge a row or reverse the text that follows it. Other characters,
// backslashes included, are kept as they are; s is returned unchanged when
// it has nothing to escape.
//
// Every line the command prints from recorded text (tables, progress lines,
// delivery problems, error messages) goes through printable.
func printable(s string) string { return safetext.Visible(s, false) }

// maxCell is the most characters (runes, and bytes that are not UTF-8) of
// a record's text that a table shows: one long name in a file must not pad
// every row of its column to its length.
const maxCell = 200

// cell returns s as a table shows it: its first maxCell-1 characters and
// "…" if it has more than maxCell, escaped by printable.
func cell(s string) string {
	n := 0
	for i := range s { // a byte that is not UTF-8 counts as one
		if n == maxCell-1 {
			if utf8.RuneCountInString(s[i:]) > 1 {
				return printable(s[:i]) + "…"
			}
			break
		}
		n++
	}
	return printable(s)
}

// writeTable prints the selected sections of rs as readable tables.
func writeTable(w io.Writer, rs *records, s sections) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string) { fmt.Fprintf(tw, "\n== %s\n", title) }
	if s.status {
		section(fmt.Sprintf("events by status (%d runs)", len(rs.events)))
		c := statusCounts(rs.events, func(m telemetry.EventMetrics) telemetry.Status { return m.Status })
		for _, st := range []telemetry.Status{telemetry.StatusCompleted, telemetry.StatusFailed, telemetry.StatusPending} {
			fmt.Fprintf(tw, "  %s\t%d\n", st, c[st])
		}
	}
	if s.failed {
		evs := rs.failedEvents()
		section(fmt.Sprintf("failed events (%d)", len(evs)))
		eventTable(tw, last(tw, evs, s.limit), true)
	}
	if s.slow >= 0 {
		evs := rs.slowEvents(s.slow)
		section(fmt.Sprintf("slow events, over %v (%d)", s.slow, len(evs)))
		eventTable(tw, last(tw, evs, s.limit), false)
	}
	if s.retries {
		st := rs.retryStats()
		section("retry statistics")
		fmt.Fprintf(tw, "  total retries\t%d\n  events with retries\t%d\n", st.TotalRetries, st.EventsWithRetries)
		for _, n := range slices.Sorted(maps.Keys(st.ByRetryCount)) {
			fmt.Fprintf(tw, "  events with %d %s\t%d\n", n, plural(n, "retry", "retries"), st.ByRetryCount[n])
		}
	}
	if s.network {
		// Exact totals: the counts of a file may add up past an int64.
		sent, received := new(big.Int), new(big.Int)
		var n big.Int
		for _, m := range rs.network {
			sent.Add(sent, n.SetInt64(m.BytesSent))
			received.Add(received, n.SetInt64(m.BytesReceived))
		}
		c := statusCounts(rs.network, func(m telemetry.NetworkMetrics) telemetry.Status { return m.Status })
		section(fmt.Sprintf("network operations (%d: %d completed, %d failed; %s B sent, %s B received)",
			len(rs.network), c[telemetry.StatusCompleted], c[telemetry.StatusFailed], sent, received))
		networkTable(tw, last(tw, rs.network, s.limit))
	}
	if s.failedNetwork {
		ops := rs.failedNetwork()
		section(fmt.Sprintf("failed network operations (%d)", len(ops)))
		networkTable(tw, last(tw, ops, s.limit))
	}
	if s.slowNetwork >= 0 {
		ops := rs.slowNetwork(s.slowNetwork)
		section(fmt.Sprintf("slow network operations, over %v (%d)", s.slowNetwork, len(ops)))
		networkTable(tw, last(tw, ops, s.limit))
	}
	return tw.Flush()
}

// last returns the last limit records of recs (all if limit is 0), after
// writing on w how many earlier ones it leaves out.
func last[M any](w io.Writer, recs []M, limit int) []M {
	if limit <= 0 || len(recs) <= limit {
		return recs
	}
	fmt.Fprintf(w, "  (the last %d; %d earlier ones are in the files)\n", limit, len(recs)-limit)
	return recs[len(recs)-limit:]
}

func eventTable(w io.Writer, evs []telemetry.EventMetrics, withError bool) {
	if len(evs) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	header := "  EVENT\tTASK\tDURATION\tRETRIES\tSTATUS\t"
	if withError {
		header += "ERROR"
	}
	fmt.Fprintln(w, header)
	for _, m := range evs {
		errText := ""
		if withError {
			errText = m.Error
		}
		fmt.Fprintf(w, "  %s\t%s\t%v\t%d\t%s\t%s\n", cell(m.EventName), cell(m.TaskID), round(m.Duration()),
			m.RetryCount, cell(string(m.Status)), cell(errText))
	}
}

func networkTable(w io.Writer, ops []telemetry.NetworkMetrics) {
	if len(ops) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	fmt.Fprintln(w, "  OPERATION\tHOST:PORT\tTASK\tLATENCY\tSENT\tRECEIVED\tSTATUS\tERROR")
	for _, m := range ops {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%v\t%d B\t%d B\t%s\t%s\n", cell(m.Operation),
			net.JoinHostPort(cell(m.Host), strconv.Itoa(m.Port)), cell(m.TaskID),
			round(m.Latency()), m.BytesSent, m.BytesReceived, cell(string(m.Status)), cell(m.Error))
	}
}

func round(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeJSON prints the selected sections of rs as one JSON document. Each
// record is the telemetry document of the JSON-lines file. Control
// characters in strings are escaped (see escapeJSON).
func writeJSON(w io.Writer, rs *records, s sections) error {
	doc := map[string]any{}
	if s.status {
		doc["events_by_status"] = statusCounts(rs.events, func(m telemetry.EventMetrics) telemetry.Status { return m.Status })
	}
	if s.failed {
		doc["failed_events"] = nonNil(rs.failedEvents())
	}
	if s.slow >= 0 {
		doc["slow_events"] = nonNil(rs.slowEvents(s.slow))
		doc["slow_events_threshold_seconds"] = s.slow.Seconds()
	}
	if s.retries {
		doc["retry_stats"] = rs.retryStats()
	}
	if s.network {
		doc["network_operations"] = nonNil(rs.network)
	}
	if s.failedNetwork {
		doc["failed_network_operations"] = nonNil(rs.failedNetwork())
	}
	if s.slowNetwork >= 0 {
		doc["slow_network_operations"] = nonNil(rs.slowNetwork(s.slowNetwork))
		doc["slow_network_operations_threshold_seconds"] = s.slowNetwork.Seconds()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := w.Write(escapeJSON(buf.Bytes()))
	return err
}

// escapeJSON returns the JSON document b with every character that
// printable escapes and encoding/json leaves raw (DEL, the C1 controls,
// the format characters such as the bidirectional controls) written as a
// \uXXXX escape, so that the document, decoded, is
// the same, and shown on a terminal, is inert. Such characters can only
// occur inside strings, where the escape means the same character.
func escapeJSON(b []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if (r == 0x7f || r >= 0x80) && safetext.Hidden(r, w, false) && !(r == utf8.RuneError && w == 1) {
			out = append(out, b[last:i]...)
			out = fmt.Appendf(out, `\u%04x`, r)
			last = i + w
		}
		i += w
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[M any](s []M) []M {
	if s == nil {
		return []M{}
	}
	return s
}

// humanBytes is used in progress lines.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
