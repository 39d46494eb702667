// Command gen writes generated text into Markdown files between marker
// comments, so that figures in the documentation come from a script, never
// from retyping.
//
// A marked section looks like
//
//	<!-- NAME:start -->
//	... replaced ...
//	<!-- NAME:end -->
//
// Usage:
//
//	go run ./docs/bench/gen -raw docs/bench/results.txt -doc docs/performance.md -readme README.md
//	go run ./docs/bench/gen -replace NAME -file FILE -text TEXT
//
// With -raw it reads the output of docs/bench/run.sh (a header of "# key:
// value" lines, then go test -bench output), and writes the Goals table
// (goals.go) into the "goals" section of -doc, a table per package into its
// "bench" section, and a headline into the "bench:headline" section of
// -readme.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	raw := flag.String("raw", "", "benchmark output written by docs/bench/run.sh")
	doc := flag.String("doc", "docs/performance.md", "Markdown file that gets the tables (section bench)")
	readme := flag.String("readme", "README.md", "Markdown file that gets the headline (section bench:headline)")
	replace := flag.String("replace", "", "name of the section to replace with -text")
	file := flag.String("file", "", "Markdown file for -replace")
	text := flag.String("text", "", "new text of the section, for -replace")
	flag.Parse()
	if err := generate(*raw, *doc, *readme, *replace, *file, *text); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func generate(raw, doc, readme, replace, file, text string) error {
	if replace != "" {
		if file == "" {
			return errors.New("-replace needs -file")
		}
		return replaceInFile(file, replace, text)
	}
	if raw == "" {
		return errors.New("give -raw, or -replace")
	}
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := parse(f)
	if err != nil {
		return err
	}
	if len(res.runs) == 0 {
		return fmt.Errorf("%s: no benchmark results", raw)
	}
	if err := replaceInFile(doc, "goals", goalsTable(res)); err != nil {
		return err
	}
	if err := replaceInFile(doc, "bench", tables(res)); err != nil {
		return err
	}
	return replaceInFile(readme, "bench:headline", headline(res))
}

// A run is one line of benchmark output.
type run struct {
	pkg    string
	name   string // without the -N suffix
	procs  int    // GOMAXPROCS: the -N suffix, 1 without one
	values map[string]float64
}

// results is what parse reads: the header and every run.
type results struct {
	meta map[string]string // from "# key: value" lines
	keys []string          // meta keys in order
	runs []run
}

func parse(r io.Reader) (*results, error) {
	res := &results{meta: map[string]string{}}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# "):
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
			if ok {
				if _, dup := res.meta[k]; !dup {
					res.keys = append(res.keys, k)
				}
				res.meta[k] = v
			}
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "Benchmark"):
			if r, ok := parseRun(pkg, line); ok {
				res.runs = append(res.runs, r)
			}
		}
	}
	return res, sc.Err()
}

// parseRun parses "BenchmarkX/sub-2   100   12.5 ns/op   0 B/op ...".
func parseRun(pkg, line string) (run, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return run{}, false
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return run{}, false
	}
	r := run{pkg: pkg, name: f[0], procs: 1, values: map[string]float64{}}
	if i := strings.LastIndexByte(r.name, '-'); i > 0 {
		if n, err := strconv.Atoi(r.name[i+1:]); err == nil {
			r.name, r.procs = r.name[:i], n
		}
	}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return run{}, false
		}
		r.values[f[i+1]] = v
	}
	return r, true
}

// A series is every run of one benchmark at one GOMAXPROCS.
type series struct {
	pkg, name string
	procs     int
	runs      int
	values    map[string][]float64
	units     []string
}

func group(runs []run) []*series {
	var out []*series
	byKey := map[string]*series{}
	for _, r := range runs {
		key := fmt.Sprintf("%s %s %d", r.pkg, r.name, r.procs)
		s := byKey[key]
		if s == nil {
			s = &series{pkg: r.pkg, name: r.name, procs: r.procs, values: map[string][]float64{}}
			byKey[key] = s
			out = append(out, s)
		}
		s.runs++
		for u, v := range r.values {
			if _, ok := s.values[u]; !ok {
				s.units = append(s.units, u)
			}
			s.values[u] = append(s.values[u], v)
		}
	}
	for _, s := range out {
		slices.SortFunc(s.units, func(a, b string) int { return cmp.Compare(unitRank(a), unitRank(b)) })
	}
	return out
}

// unitRank puts the standard units first, in go test's order.
func unitRank(u string) string {
	switch u {
	case "ns/op":
		return "0"
	case "B/op":
		return "1"
	case "allocs/op":
		return "2"
	}
	return "3" + u
}

// median returns the median of v, or NaN if v is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// formatValue prints a value of a unit readably.
func formatValue(unit string, v float64) string {
	if unit == "ns/op" {
		switch {
		case v >= 1e6:
			return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " ms"
		case v >= 1e4:
			return strconv.FormatFloat(v/1e3, 'f', 1, 64) + " µs"
		default:
			return strconv.FormatFloat(v, 'f', 0, 64) + " ns"
		}
	}
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100 || v == float64(int64(v)):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func cell(unit string, v []float64) string {
	if len(v) == 0 {
		return ""
	}
	m := formatValue(unit, median(v))
	if unit == "ns/op" && len(v) > 1 {
		lo, hi := slices.Min(v), slices.Max(v)
		if lo == 0 && hi == 0 {
			return "" // a benchmark that reports its figure in another unit
		}
		return fmt.Sprintf("%s (%s–%s)", m, formatValue(unit, lo), formatValue(unit, hi))
	}
	return m
}

func tables(res *results) string {
	var b strings.Builder
	b.WriteString("Generated by `docs/bench/run.sh`; do not edit by hand.\n\n")
	for _, k := range res.keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, res.meta[k])
	}
	b.WriteString("\nEach cell is the median of the runs; ns/op also gives the fastest and slowest run.\n")
	all := group(res.runs)
	var pkgs []string
	for _, s := range all {
		if !slices.Contains(pkgs, s.pkg) {
			pkgs = append(pkgs, s.pkg)
		}
	}
	for _, pkg := range pkgs {
		var ss []*series
		var extra []string
		for _, s := range all {
			if s.pkg != pkg {
				continue
			}
			ss = append(ss, s)
			for _, u := range s.units {
				if unitRank(u)[0] == '3' && !slices.Contains(extra, u) {
					extra = append(extra, u)
				}
			}
		}
		fmt.Fprintf(&b, "\n### `%s`\n\n", strings.TrimPrefix(pkg, "github.com/eventpipeline/eventpipeline/"))
		b.WriteString("| benchmark | -cpu | runs | time/op | B/op | allocs/op |")
		for _, u := range extra {
			fmt.Fprintf(&b, " %s |", u)
		}
		b.WriteString("\n| --- | --- | --- | --- | --- | --- |")
		b.WriteString(strings.Repeat(" --- |", len(extra)))
		b.WriteByte('\n')
		for _, s := range ss {
			fmt.Fprintf(&b, "| `%s` | %d | %d | %s | %s | %s |", s.name, s.procs, s.runs,
				cell("ns/op", s.values["ns/op"]), cell("B/op", s.values["B/op"]), cell("allocs/op", s.values["allocs/op"]))
			for _, u := range extra {
				fmt.Fprintf(&b, " %s |", cell(u, s.values[u]))
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// The headline is the cost of recording one event run in the core, beside
// what timing it with client_golang alone costs in the same run
// (BenchmarkVsObserve); results without that benchmark get the cost of
// BenchmarkEventStartEnd alone, as before it existed.
const (
	headlinePkg   = "github.com/eventpipeline/eventpipeline/telemetry"
	headlineBench = "BenchmarkEventStartEnd"
)

var (
	headlineRecorder = vs("serial/recorder", 1)
	headlineObserve  = vs("serial/observe", 1)
)

func headline(res *results) string {
	ix := newSeriesIndex(res)
	measured := fmt.Sprintf("measured %s on %s, commit %s.", res.meta["date"], res.meta["machine"], res.meta["commit"])
	details := "Details, goals and the other benchmarks: [docs/performance.md](docs/performance.md)."
	if rec, obs := ix.byID[headlineRecorder], ix.byID[headlineObserve]; rec != nil && obs != nil &&
		len(rec.values["ns/op"]) > 0 && len(obs.values["ns/op"]) > 0 {
		r, o := median(rec.values["ns/op"]), median(obs.values["ns/op"])
		return fmt.Sprintf("Recording one event run (`StartEvent` + `EndEvent`, with 50,000 records retained) takes **%s**,\n"+
			"**%s** the cost of timing it with client_golang alone (two clock reads and one `HistogramVec` observation:\n"+
			"%s in the same run; medians of %d runs of `%s`), and %s;\n%s %s",
			ns(r), formatRatio(r/o), ns(o), rec.runs, strings.TrimSuffix(vsBench, "/"), allocsText(rec), measured, details)
	}
	for _, s := range ix.all {
		if s.pkg != headlinePkg || s.name != headlineBench || s.procs != 1 {
			continue
		}
		return fmt.Sprintf("Recording one event run (`StartEvent` + `EndEvent`, with 50,000 records retained and a queued\n"+
			"publisher attached) takes **%s** (median of %d runs of `%s`) and %s;\n%s %s",
			ns(median(s.values["ns/op"])), s.runs, headlineBench, allocsText(s), measured, details)
	}
	return "Recording one event run allocates nothing and takes constant time whatever the number of records\n" +
		"retained: see [docs/performance.md](docs/performance.md)."
}

// allocsText says how many allocations the median run of s makes.
func allocsText(s *series) string {
	if len(s.values["allocs/op"]) == 0 {
		return "its allocations were not measured"
	}
	if a := median(s.values["allocs/op"]); a != 0 {
		return fmt.Sprintf("makes %s allocations", formatValue("allocs/op", a))
	}
	return "allocates nothing"
}

// replaceInFile replaces the text between the markers of section name.
func replaceInFile(file, name, text string) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := replaceSection(src, name, text)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return os.WriteFile(file, out, 0o644)
}

func replaceSection(src []byte, name, text string) ([]byte, error) {
	start := []byte("<!-- " + name + ":start -->\n")
	end := []byte("<!-- " + name + ":end -->")
	i := bytes.Index(src, start)
	if i < 0 {
		return nil, fmt.Errorf("no %q marker", strings.TrimSpace(string(start)))
	}
	j := bytes.Index(src[i:], end)
	if j < 0 {
		return nil, fmt.Errorf("no %q marker after the start marker", end)
	}
	j += i
	var b bytes.Buffer
	b.Write(src[:i+len(start)])
	b.WriteString(strings.TrimRight(text, "\n"))
	b.WriteByte('\n')
	b.Write(src[j:])
	return b.Bytes(), nil
}
