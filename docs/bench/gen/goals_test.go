package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// line returns one line of benchmark output.
func line(name string, procs int, nsop, allocs float64, extra ...string) string {
	if procs != 1 {
		name += fmt.Sprintf("-%d", procs)
	}
	l := fmt.Sprintf("%s \t 1000\t %g ns/op\t 0 B/op\t %g allocs/op", name, nsop, allocs)
	for _, e := range extra {
		l += "\t " + e
	}
	return l + "\n"
}

// goalsSample is the output of two rounds of run.sh, the sides of each
// comparison alternating as they do there.
func goalsSample() string {
	var b strings.Builder
	b.WriteString("# date: 2026-12-01 10:00 UTC\n# machine: 2 cores, Test CPU\n# commit: 1234abc\n")
	for round := range 2 {
		d := float64(round) // the second round is a little slower
		b.WriteString("pkg: github.com/eventpipeline/eventpipeline/telemetry/prometheus\n")
		for _, procs := range []int{1, 2} {
			b.WriteString(line("BenchmarkVsObserve/serial/observe", procs, 100+d, 0))
			b.WriteString(line("BenchmarkVsObserve/serial/recorder", procs, 90+3*d, 0))
			b.WriteString(line("BenchmarkVsObserve/serial/recorder+prometheus", procs, 140+d, 0))
			b.WriteString(line("BenchmarkVsObserve/parallel/observe", procs, 100/float64(procs), 0))
			b.WriteString(line("BenchmarkVsObserve/parallel/recorder", procs, 95/float64(procs)+2*d*float64(procs-1), 0))
			b.WriteString(line("BenchmarkVsObserve/parallel/recorder+prometheus", procs, 150, 0))
			b.WriteString(line("BenchmarkVsObserve/parallel/recorder-per-goroutine", procs, 90/float64(procs), 0))
			b.WriteString(line("BenchmarkVsObserve/parallel/shared-index", procs, 40/float64(procs)*(1+0.5*float64(procs-1)), 0))
			b.WriteString(line("BenchmarkVsObserve/work/serial/observe", procs, 1000, 0))
			b.WriteString(line("BenchmarkVsObserve/work/serial/recorder", procs, 1100, 0))
			b.WriteString(line("BenchmarkVsObserve/work/serial/recorder+prometheus", procs, 1150, 0))
			b.WriteString(line("BenchmarkVsObserve/work/parallel/recorder+prometheus", procs, 1150, 0))
			b.WriteString(line("BenchmarkVsObserve/work/parallel/observe", procs, 1100/float64(procs), 0))
			b.WriteString(line("BenchmarkVsObserve/work/parallel/recorder", procs, 1200/float64(procs)*(1+0.2*float64(procs-1)), 0))
			b.WriteString(line("BenchmarkVsObserve/work/parallel/work-alone", procs, 1000/float64(procs), 0))
			b.WriteString(line("BenchmarkVsObserve/work/parallel/recorder-per-goroutine", procs, 1100/float64(procs), 0))
			b.WriteString(line("BenchmarkVsObserve/work/parallel/shared-index", procs, 1000/float64(procs)*(1+0.1*float64(procs-1)), 0))
			b.WriteString(line("BenchmarkRetention/10k", procs, 100, 0))
			b.WriteString(line("BenchmarkRetention/100k", procs, 110, 0))
			b.WriteString(line("BenchmarkRetention/1M", procs, 120+2*d, 0))
		}
		b.WriteString("pkg: github.com/eventpipeline/eventpipeline/telemetry\n")
		b.WriteString(line("BenchmarkEventStartEnd", 1, 300, 0, "0 dropped/record"))
		b.WriteString(line("BenchmarkNetworkStartEnd", 2, 300, float64(round))) // one run allocates
		b.WriteString(line("BenchmarkQueries/failed-events", 1, 200e3, 12, "500 results"))
		b.WriteString(line("BenchmarkQueries/slow-events", 1, 250e3, 12, "500 results"))
		b.WriteString(line("BenchmarkQueries/failed-network", 1, 16e3, 12, "500 results"))
		// slow-network is missing: the benchmark failed.
		b.WriteString(line("BenchmarkMetricsJSON10k", 1, 3e6, 19, "2786830 bytes/report"))
		b.WriteString("BenchmarkRetainedBytesPerEvent \t 12\t 74014181 ns/op\t 129.1 B/record\n")
		b.WriteString("pkg: github.com/eventpipeline/eventpipeline/pipeline\n")
		for _, procs := range []int{1, 2} {
			b.WriteString(line("BenchmarkPipelineEvent/telemetry-off", procs, 400, 7))
			b.WriteString(line("BenchmarkPipelineEvent/telemetry-on", procs, 550+50*float64(procs-1), 7))
		}
	}
	return b.String()
}

// goalRow returns the row of goals[i] in the Goals table.
func goalRow(t *testing.T, table string, i int) string {
	t.Helper()
	var rows []string
	for l := range strings.SplitSeq(table, "\n") {
		if strings.HasPrefix(l, "| ") {
			rows = append(rows, l)
		}
	}
	if len(rows) != len(goals)+2 { // the header, the separator and a row per goal
		t.Fatalf("got %d lines of table, want %d:\n%s", len(rows), len(goals)+2, table)
	}
	row := rows[i+2]
	if !strings.HasPrefix(row, "| "+goals[i].what+" |") {
		t.Fatalf("row %d is %q, want the goal %q", i, row, goals[i].what)
	}
	return row
}

func TestGoalsTable(t *testing.T) {
	res, err := parse(strings.NewReader(goalsSample()))
	if err != nil {
		t.Fatal(err)
	}
	tab := goalsTable(res)
	if want := "Measured 2026-12-01 10:00 UTC on 2 cores, Test CPU, commit 1234abc;"; !strings.Contains(tab, want) {
		t.Errorf("got no %q in:\n%s", want, tab)
	}
	for _, tc := range []struct {
		name string
		goal int // index in goals
		want string
	}{
		// Medians 91.5 and 100.5 (two rounds): the ratio is of the medians.
		{"ratio met", 0,
			"| `recorder` 92 ns, `observe` 100 ns | 0.91x | ≤ 1.00x | yes |"},
		{"ratio not met", 4,
			"| `recorder+prometheus` 140 ns, `observe` 100 ns | 1.40x | ≤ 1.30x | **no** |"},
		{"ratio of the work variant", 2, "| `recorder` 1100 ns, `observe` 1000 ns | 1.10x | ≤ 1.00x | **no** |"},
		{"allocations not met", 3,
			"| highest median of 24 series | 0.5 allocs/op | 0 allocs/op | **no** |"},
		// parallel/recorder: 95 at -cpu 1, medians 47.5+1 = 48.5 at -cpu 2.
		{"scaling met, with its reference", 6,
			"| `recorder` 95 ns at -cpu 1, 48 ns at -cpu 2; `observe` 100 ns at -cpu 1, 50 ns at -cpu 2 (2.00x); " +
				"`recorder-per-goroutine` 90 ns at -cpu 1, 45 ns at -cpu 2 (2.00x); `shared-index` 40 ns at -cpu 1, 30 ns at -cpu 2 (1.33x) | 1.96x | ≥ 1.80x | yes |"},
		{"scaling not met, with two references", 7,
			"| `recorder` 1200 ns at -cpu 1, 720 ns at -cpu 2; `observe` 1100 ns at -cpu 1, 550 ns at -cpu 2 (2.00x); " +
				"`recorder-per-goroutine` 1100 ns at -cpu 1, 550 ns at -cpu 2 (2.00x); `shared-index` 1000 ns at -cpu 1, 550 ns at -cpu 2 (1.82x); " +
				"`work-alone` 1000 ns at -cpu 1, 500 ns at -cpu 2 (2.00x) | 1.67x | ≥ 1.80x | **no** |"},
		{"ratio with a figure for context", 8,
			"| `1M` 121 ns, `10k` 100 ns, `100k` 110 ns | 1.21x | ≤ 1.30x | yes |"},
		{"absolute met", 9, "| `Queries/failed-network`: 16.0 µs | 16.0 µs | ≤ 17.0 µs | yes |"},
		{"absolute on the bound", 12, "| 250.0 µs | ≤ 250.0 µs | yes |"},
		{"missing", 10, "| not measured: `Queries/slow-network` -cpu 1 |  | ≤ 52.0 µs | – |"},
		{"difference met", 13, "| `telemetry-on` 550 ns, `telemetry-off` 400 ns | +150 ns | ≤ +150 ns | yes |"},
		{"difference not met", 14, "| +200 ns | ≤ +150 ns | **no** |"},
		{"absolute in ms", 15, "| 3.00 ms | ≤ 2.90 ms | **no** |"},
		{"absolute in another unit", 16,
			"| `RetainedBytesPerEvent`: 129 B/record | 129 B/record | ≤ 200 B/record | yes |"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if row := goalRow(t, tab, tc.goal); !strings.HasSuffix(row, tc.want) {
				t.Errorf("got row\n%s\nwant it to end with\n%s", row, tc.want)
			}
		})
	}
}

func TestGoalsTableWithoutResults(t *testing.T) {
	tab := goalsTable(&results{meta: map[string]string{}})
	if got := strings.Count(tab, "| – |"); got != len(goals) {
		t.Errorf("got %d rows marked unmeasured, want all %d:\n%s", got, len(goals), tab)
	}
}

func TestHeadlineVsObserve(t *testing.T) {
	res, err := parse(strings.NewReader(goalsSample()))
	if err != nil {
		t.Fatal(err)
	}
	h := headline(res)
	for _, want := range []string{"takes **92 ns**", "**0.91x** the cost", "100 ns in the same run", "medians of 2 runs",
		"allocates nothing", "commit 1234abc"} {
		if !strings.Contains(h, want) {
			t.Errorf("headline lacks %q: %s", want, h)
		}
	}
}

func TestParseRunNames(t *testing.T) {
	for _, tc := range []struct {
		line, name string
		procs      int
	}{
		{"BenchmarkVsObserve/serial/recorder+prometheus-2 \t 10\t 5 ns/op", "BenchmarkVsObserve/serial/recorder+prometheus", 2},
		{"BenchmarkVsObserve/serial/recorder+prometheus \t 10\t 5 ns/op", "BenchmarkVsObserve/serial/recorder+prometheus", 1},
		{"BenchmarkQueries/failed-events-2 \t 10\t 5 ns/op", "BenchmarkQueries/failed-events", 2},
		{"BenchmarkQueries/failed-events \t 10\t 5 ns/op", "BenchmarkQueries/failed-events", 1},
		{"BenchmarkRetention/1M-16 \t 10\t 5 ns/op", "BenchmarkRetention/1M", 16},
	} {
		r, ok := parseRun("p", tc.line)
		if !ok || r.name != tc.name || r.procs != tc.procs {
			t.Errorf("parseRun(%q) = %q, %d, %v; want %q, %d", tc.line, r.name, r.procs, ok, tc.name, tc.procs)
		}
	}
}

// TestGoalsNameBenchmarksThatRun checks the Goals table against the code:
// the package of every benchmark it reads is run by run.sh with a pattern
// that selects the benchmark, the benchmark function exists, and each
// element of its sub-benchmark name appears in the package's tests, so
// that renaming a benchmark cannot silently leave a goal unmeasured.
func TestGoalsNameBenchmarksThatRun(t *testing.T) {
	script, err := os.ReadFile("../run.sh")
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]string{}
	for _, m := range regexp.MustCompile(`"\./([^"]+)" '([^']+)'`).FindAllStringSubmatch(string(script), -1) {
		patterns[m[1]] = m[2]
	}
	if len(patterns) == 0 {
		t.Fatal("found no benchmarks in run.sh")
	}
	sources := map[string]string{}
	source := func(pkg string) string {
		if src, ok := sources[pkg]; ok {
			return src
		}
		files, err := filepath.Glob(filepath.Join("..", "..", "..", filepath.FromSlash(pkg), "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no tests in package %s: %v", pkg, err)
		}
		var b strings.Builder
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(src)
		}
		sources[pkg] = b.String()
		return sources[pkg]
	}
	for _, g := range goals {
		for _, r := range append(slices.Clone(g.refs), g.also...) {
			elems := strings.Split(strings.TrimSuffix(r.name, "/"), "/")
			pattern, ok := patterns[r.pkg]
			if !ok {
				t.Errorf("goal %q: run.sh runs no benchmark of %s", g.what, r.pkg)
				continue
			}
			if ok, err := regexp.MatchString(pattern, elems[0]); err != nil || !ok {
				t.Errorf("goal %q: run.sh's pattern %q for %s does not select %s", g.what, pattern, r.pkg, elems[0])
			}
			src := source(r.pkg)
			if !strings.Contains(src, "func "+elems[0]+"(b *testing.B)") {
				t.Errorf("goal %q: no func %s in the tests of %s", g.what, elems[0], r.pkg)
			}
			for _, e := range elems[1:] {
				if !strings.Contains(src, `"`+e) && !strings.Contains(src, e+`"`) {
					t.Errorf("goal %q: no sub-benchmark name %q in the tests of %s", g.what, e, r.pkg)
				}
			}
		}
	}
}
