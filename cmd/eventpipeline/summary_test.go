package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "fetch_rates", want: "fetch_rates"},
		{name: "unicode and backslash kept", in: `Zürich 東京 C:\tmp ½`, want: `Zürich 東京 C:\tmp ½`},
		{name: "clear screen", in: "a\x1b[2Jb", want: `a\x1b[2Jb`},
		{name: "carriage return and newline", in: "ok\r\nFAILED", want: `ok\r\nFAILED`},
		{name: "tab splits no cell", in: "a\tb", want: `a\tb`},
		{name: "NUL, bell, DEL", in: "\x00\a\x7f", want: `\x00\a\x7f`},
		{name: "C1 controls", in: "\u0085\u009b", want: `\u0085\u009b`},
		{name: "bidi overrides", in: "\u202ecod.exe\u202c", want: `\u202ecod.exe\u202c`},
		{name: "bidi isolates and marks", in: "\u2066x\u2069\u200e\u200f\u061c", want: `\u2066x\u2069\u200e\u200f\u061c`},
		{name: "line and paragraph separators", in: "a\u2028b\u2029", want: `a\u2028b\u2029`},
		{name: "bytes that are not UTF-8", in: "a\xff\x9bb", want: `a\xff\x9bb`},
		{name: "empty", in: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := printable(tc.in); got != tc.want {
				t.Errorf("printable(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// hostile are texts that would act on a terminal or forge a table row if
// printed raw.
var hostile = []string{"\x1b[2J", "\u0085", "\r", "\n  forged\trow\t1ms\t0\tcompleted\t", "\u202e", "\u2066", "\x9b", "\xff"}

// assertInert checks that out holds no control character but the line
// ends, no bidi control and no invalid UTF-8, shows the escapes (those of
// printable by default), and has wantLines lines.
func assertInert(t *testing.T, what, out string, wantLines int, escapes ...string) {
	t.Helper()
	for i := 0; i < len(out); {
		r, w := utf8.DecodeRuneInString(out[i:])
		if r < 0x20 && r != '\n' || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 ||
			r == utf8.RuneError && w == 1 {
			t.Errorf("%s holds %q at byte %d:\n%s", what, out[i:i+w], i, out)
		}
		i += w
	}
	if escapes == nil {
		escapes = []string{`\x1b[2J`, `\u202e`, `\xff`}
	}
	contains(t, what, out, escapes...)
	if got := strings.Count(out, "\n"); got != wantLines {
		t.Errorf("%s has %d lines, want %d:\n%s", what, got, wantLines, out)
	}
}

// hostileRecords returns one failed event and one failed network operation
// whose texts are all hostile.
func hostileRecords() ([]telemetry.EventMetrics, []telemetry.NetworkMetrics) {
	text := strings.Join(hostile, "|")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := telemetry.EventMetrics{EventName: "ev" + text, TaskID: "task" + text, StartTime: start,
		EndTime: start.Add(time.Second), Status: telemetry.StatusFailed, Error: "err" + text}
	op := telemetry.NetworkMetrics{TaskID: "task" + text, Operation: "op" + text, Host: "host" + text, Port: 8443,
		StartTime: start, EndTime: start.Add(time.Second), Status: telemetry.StatusFailed, Error: "err" + text}
	return []telemetry.EventMetrics{ev}, []telemetry.NetworkMetrics{op}
}

// TestTablesEscapeControlCharacters: each record is one row of the table,
// with its texts escaped.
func TestTablesEscapeControlCharacters(t *testing.T) {
	events, network := hostileRecords()
	var out bytes.Buffer
	s := sections{failed: true, failedNetwork: true, slow: -1, slowNetwork: -1}
	if err := writeTable(&out, &records{events: events, network: network}, s); err != nil {
		t.Fatal(err)
	}
	// Per section: a blank line, the title, the header, one row.
	assertInert(t, "table", out.String(), 2*4)
}

// TestReportEscapesControlCharacters runs `report` on a JSON-lines file of
// hostile records.
func TestReportEscapesControlCharacters(t *testing.T) {
	events, network := hostileRecords()
	var file bytes.Buffer
	sink, err := telemetry.NewJSONLinesPublisher(&file)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.PublishBatch(context.Background(), &telemetry.Batch{Events: events, Network: network}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hostile.jsonl")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"report", path, "--failed", "--failed-network"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("got exit code %d; stderr:\n%s", code, stderr.String())
	}
	// The file line, then per section: a blank line, the title, the header, one row.
	// The file holds valid UTF-8: U+FFFD replaced the bytes that were not.
	assertInert(t, "report", stdout.String(), 1+2*4, `\x1b[2J`, `\u0085`, `\u202e`)
}

// TestErrorMessagesEscaped: an error quoting hostile text is printed on
// one line per error, escaped.
func TestErrorMessagesEscaped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a\x1b[2J\u202e.jsonl")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"report", path}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("got exit code %d, want %d", code, exitFailure)
	}
	got := stderr.String()
	if strings.ContainsAny(got, "\x1b\u202e") || strings.Count(got, "\n") != 1 || !strings.Contains(got, `a\x1b[2J\u202e.jsonl`) {
		t.Errorf("got stderr %q, want one line with the path escaped", got)
	}
}

// TestProgressEscapesControlCharacters: each step of the run is one
// progress line, with the texts of the run escaped.
func TestProgressEscapesControlCharacters(t *testing.T) {
	text := strings.Join(hostile, "|")
	task := pipeline.Task{Event: "ev" + text, ID: "task" + text, Attempt: 1}
	err := errors.New("remote worker says: " + text)
	var out bytes.Buffer
	p := newProgress(&out)
	p.EventStarted(task)
	p.EventRetried(task, err, time.Second)
	p.RemoteCallStarted(task, "call-1", "host"+text, 8700, "remote_call"+text)
	p.RemoteCallEnded(task, "call-1", 10, 20, err)
	p.RemoteCallEnded(task, "call-1", 10, 20, nil)
	p.EventEnded(task, err)
	p.EventEnded(task, nil)
	assertInert(t, "progress", out.String(), 7)
}

// TestReportJSONEscapesControlCharacters: `report --json` escapes what
// encoding/json leaves raw (C1 and bidi controls), and decodes to the
// same texts.
func TestReportJSONEscapesControlCharacters(t *testing.T) {
	events, network := hostileRecords()
	var out bytes.Buffer
	if err := writeJSON(&out, &records{events: events, network: network}, allSections(0)); err != nil {
		t.Fatal(err)
	}
	assertInert(t, "JSON", out.String(), strings.Count(out.String(), "\n"), `\u001b[2J`, `\u202e`, `\u0085`)
	var doc struct {
		Failed []telemetry.EventMetrics `json:"failed_events"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// encoding/json turns invalid UTF-8 into U+FFFD; the rest is kept.
	want := strings.ToValidUTF8(events[0].EventName, "\uFFFD")
	if len(doc.Failed) != 1 || doc.Failed[0].EventName != want {
		t.Errorf("got %+v, want one failed event named %q", doc.Failed, want)
	}
}

// TestTablesCutLongTexts: a text longer than maxCell runes is cut in the
// tables, so that one long name in a hostile file cannot pad every row of
// its column to its length (a 1 MB name made `report --failed` print 2 GB).
func TestTablesCutLongTexts(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := func(name string) telemetry.EventMetrics {
		return telemetry.EventMetrics{EventName: name, TaskID: name, StartTime: start, EndTime: start.Add(time.Second),
			Status: telemetry.StatusFailed, Error: name}
	}
	events := []telemetry.EventMetrics{ev(long), ev("\x1b" + long)}
	for range 100 {
		events = append(events, ev("short"))
	}
	network := []telemetry.NetworkMetrics{{TaskID: long, Operation: long, Host: long, Port: 1, StartTime: start,
		EndTime: start.Add(time.Second), Status: telemetry.StatusFailed, Error: long}}
	var out bytes.Buffer
	if err := writeTable(&out, &records{events: events, network: network}, allSections(0)); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(out.String(), "\n") {
		if n := utf8.RuneCountInString(line); n > 8*maxCell {
			t.Fatalf("line %d has %d characters, want at most %d: %.200q...", i+1, n, 8*maxCell, line)
		}
	}
	contains(t, "table", out.String(), strings.Repeat("x", maxCell-1)+"…", `\x1b`+strings.Repeat("x", maxCell-2)+"…")
	exact := strings.Repeat("é", maxCell)
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{exact, exact},
		{exact + "\xff", strings.Repeat("é", maxCell-1) + "…"},
		{strings.Repeat("\xff", maxCell+1), strings.Repeat(`\xff`, maxCell-1) + "…"},
	} {
		if got := cell(tc.in); got != tc.want {
			t.Errorf("cell(%.20q...): got %.40q..., want %.40q...", tc.in, got, tc.want)
		}
	}
}
