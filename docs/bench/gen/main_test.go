package main

import (
	"strings"
	"testing"
)

const sample = `# date: 2026-11-25 14:00 UTC
# machine: 2-core AMD EPYC (shared)
# commit: abc1234
goos: linux
pkg: github.com/eventpipeline/eventpipeline/telemetry
cpu: AMD EPYC
BenchmarkEventStartEnd     	 1000	       600.0 ns/op	        22 B/op	       0 allocs/op	         0 dropped/record
BenchmarkEventStartEnd     	 1000	       500.0 ns/op	        20 B/op	       0 allocs/op	         0 dropped/record
BenchmarkEventStartEnd     	 1000	       700.0 ns/op	        24 B/op	       0 allocs/op	         0 dropped/record
BenchmarkEventStartEnd-2   	 1000	       300.0 ns/op	        15 B/op	       0 allocs/op	    0.0012 dropped/record
BenchmarkThroughput   	 10	        10 B/op	       1 allocs/op	    -290.5 added-ns	  43275 docs/s
PASS
`

func TestTablesAndHeadline(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.runs), 5; got != want {
		t.Fatalf("got %d runs, want %d", got, want)
	}
	tab := tables(res)
	for _, want := range []string{
		"- commit: abc1234",
		"### `telemetry`",
		"| benchmark | -cpu | runs | time/op | B/op | allocs/op | dropped/record |",
		"| `BenchmarkEventStartEnd` | 1 | 3 | 600 ns (500 ns–700 ns) | 22 | 0 | 0 |",
		"| `BenchmarkEventStartEnd` | 2 | 1 | 300 ns | 15 | 0 | 0.0012 |",
		"| `BenchmarkThroughput` | 1 | 1 |  | 10 | 1 |  | -290 | 43275 |",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("tables lack %q; got:\n%s", want, tab)
		}
	}
	h := headline(res)
	if !strings.Contains(h, "**600 ns**") || !strings.Contains(h, "allocates nothing") || !strings.Contains(h, "commit abc1234") {
		t.Errorf("got headline %q", h)
	}
}

func TestReplaceSection(t *testing.T) {
	src := "a\n<!-- x:start -->\nold\nlines\n<!-- x:end -->\nb\n"
	got, err := replaceSection([]byte(src), "x", "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := replaceSection([]byte("no markers"), "x", "y"); err == nil {
		t.Error("got no error without markers")
	}
}
