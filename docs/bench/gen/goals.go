package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The Goals table states each performance goal of the recording path and
// its queries, the figures that decide it and whether it is met. Every
// figure is a median of the runs in one results file, and every ratio is
// computed from two such medians, so that the two sides were measured in
// the same run of docs/bench/run.sh, on the same load.

// A ref names the series of one benchmark at one GOMAXPROCS.
type ref struct {
	pkg   string // the package without the module path, such as "telemetry"
	name  string // the benchmark's full name, such as "BenchmarkQueries/slow-events"
	procs int    // the -cpu value
}

// short is the name without "Benchmark", as the Goals table shows it.
func (r ref) short() string { return strings.TrimPrefix(r.name, "Benchmark") }

// A goalKind says how a goal's value is computed from its refs.
type goalKind int

const (
	// absolute is the median of unit of refs[0].
	absolute goalKind = iota
	// ratio is the median ns/op of refs[0] divided by that of refs[1].
	ratio
	// difference is the median ns/op of refs[0] minus that of refs[1].
	difference
	// scaling is the throughput of refs[0] at -cpu 2 over that at -cpu 1:
	// its median ns/op at procs 1 divided by that at procs 2. refs[1], if
	// given, is shown beside it for reference.
	scaling
	// allocations is the highest median allocs/op among the series that
	// match the refs (a ref with procs 0 matches every -cpu, and a name
	// ending in "/" every sub-benchmark under it).
	allocations
)

// A goal is one row of the Goals table.
type goal struct {
	what   string // what is measured, in words
	kind   goalKind
	refs   []ref
	also   []ref   // shown in the figures for context, not used in the value
	unit   string  // the unit of an absolute goal; ns/op if empty
	atMost bool    // the value must be at most bound; else at least
	bound  float64 // in the goal's unit: ns, a ratio, B/record, allocs
}

const (
	promPkg  = "telemetry/prometheus"
	corePkg  = "telemetry"
	pipePkg  = "pipeline"
	tracePkg = "telemetry/oteltrace"
	spanB    = "BenchmarkEventSpan/"
	vsBench  = "BenchmarkVsObserve/"
	qBench   = "BenchmarkQueries/"
	retBench = "BenchmarkRetention/"
)

// vs returns the ref of a sub-benchmark of BenchmarkVsObserve.
func vs(sub string, procs int) ref { return ref{promPkg, vsBench + sub, procs} }

// goals are the rows of the Goals table, in order.
var goals = []goal{
	{what: "event start+end (50,000 retained, no publisher) vs client_golang `Observe` with two clock reads, -cpu 1",
		kind: ratio, refs: []ref{vs("serial/recorder", 1), vs("serial/observe", 1)}, atMost: true, bound: 1.0},
	{what: "the same, -cpu 2",
		kind: ratio, refs: []ref{vs("serial/recorder", 2), vs("serial/observe", 2)}, atMost: true, bound: 1.0},
	{what: "the same with about 1 µs of work between start and end (and between the clock reads), -cpu 1",
		kind: ratio, refs: []ref{vs("work/serial/recorder", 1), vs("work/serial/observe", 1)}, atMost: true, bound: 1.0},
	{what: "allocations on the recording path: every start+end benchmark, at every -cpu",
		kind: allocations, refs: []ref{
			{promPkg, vsBench + "serial/recorder", 0}, {promPkg, vsBench + "serial/recorder+prometheus", 0},
			{promPkg, vsBench + "parallel/recorder", 0}, {promPkg, vsBench + "parallel/recorder+prometheus", 0},
			{promPkg, vsBench + "work/serial/recorder", 0}, {promPkg, vsBench + "work/serial/recorder+prometheus", 0},
			{promPkg, vsBench + "work/parallel/recorder", 0}, {promPkg, vsBench + "work/parallel/recorder+prometheus", 0},
			{promPkg, retBench, 0},
			{corePkg, "BenchmarkEventStartEnd", 0}, {corePkg, "BenchmarkNetworkStartEnd", 0},
		}, atMost: true, bound: 0},
	{what: "the same start+end with the Prometheus publisher attached vs `Observe`, -cpu 1",
		kind: ratio, refs: []ref{vs("serial/recorder+prometheus", 1), vs("serial/observe", 1)}, atMost: true, bound: 1.3},
	{what: "the same, -cpu 2",
		kind: ratio, refs: []ref{vs("serial/recorder+prometheus", 2), vs("serial/observe", 2)}, atMost: true, bound: 1.3},
	{what: "throughput at -cpu 2 over -cpu 1, one shared Recorder, tight loop (for reference: `Observe`, a Recorder per goroutine, and the shared index of pending task ids alone)",
		kind: scaling, refs: []ref{vs("parallel/recorder", 0), vs("parallel/observe", 0),
			vs("parallel/recorder-per-goroutine", 0), vs("parallel/shared-index", 0)}, atMost: false, bound: 1.8},
	{what: "the same with about 1 µs of work per event (for reference: the same three, and the work alone)",
		kind: scaling, refs: []ref{vs("work/parallel/recorder", 0), vs("work/parallel/observe", 0),
			vs("work/parallel/recorder-per-goroutine", 0), vs("work/parallel/shared-index", 0),
			vs("work/parallel/work-alone", 0)}, atMost: false, bound: 1.8},
	{what: "start+end with 1M records retained vs 10k retained, -cpu 1",
		kind: ratio, refs: []ref{{promPkg, retBench + "1M", 1}, {promPkg, retBench + "10k", 1}},
		also: []ref{{promPkg, retBench + "100k", 1}}, atMost: true, bound: 1.3},
	{what: "failed network operations, 10,000 retained, -cpu 1",
		kind: absolute, refs: []ref{{corePkg, qBench + "failed-network", 1}}, atMost: true, bound: 17e3},
	{what: "slow network operations, 10,000 retained, -cpu 1",
		kind: absolute, refs: []ref{{corePkg, qBench + "slow-network", 1}}, atMost: true, bound: 52e3},
	{what: "failed events, 10,000 retained, -cpu 1",
		kind: absolute, refs: []ref{{corePkg, qBench + "failed-events", 1}}, atMost: true, bound: 220e3},
	{what: "slow events, 10,000 retained, -cpu 1",
		kind: absolute, refs: []ref{{corePkg, qBench + "slow-events", 1}}, atMost: true, bound: 250e3},
	{what: "pipeline runtime, added cost per event with telemetry on, -cpu 1",
		kind: difference, refs: []ref{{pipePkg, "BenchmarkPipelineEvent/telemetry-on", 1}, {pipePkg, "BenchmarkPipelineEvent/telemetry-off", 1}},
		atMost: true, bound: 150},
	{what: "the same, -cpu 2",
		kind: difference, refs: []ref{{pipePkg, "BenchmarkPipelineEvent/telemetry-on", 2}, {pipePkg, "BenchmarkPipelineEvent/telemetry-off", 2}},
		atMost: true, bound: 150},
	{what: "JSON report of 10,000 events, -cpu 1",
		kind: absolute, refs: []ref{{corePkg, "BenchmarkMetricsJSON10k", 1}}, atMost: true, bound: 2.9e6},
	{what: "retained bytes per event record",
		kind: absolute, refs: []ref{{corePkg, "BenchmarkRetainedBytesPerEvent", 1}}, unit: "B/record", atMost: true, bound: 200},
	{what: "asynq adapter: time its Middleware adds to a task run, beside the handler called alone, -cpu 1",
		kind: absolute, refs: []ref{{"contrib/asynq", "BenchmarkMiddleware/overhead", 1}}, unit: "added-ns/task", atMost: true, bound: 300},
	{what: "River adapter: the same for a job, -cpu 1",
		kind: absolute, refs: []ref{{"contrib/river", "BenchmarkMiddleware/overhead", 1}}, unit: "added-ns/task", atMost: true, bound: 300},
	{what: "tracing: an event run with its sampled span (oteltrace) vs a bare OpenTelemetry span start+end with the task id, -cpu 1",
		kind: ratio, refs: []ref{{tracePkg, spanB + "sampled", 1}, {tracePkg, spanB + "bare", 1}}, atMost: true, bound: 1.2},
	{what: "tracing: an event run under an unsampled pipeline run vs the run untraced, -cpu 1",
		kind: ratio, refs: []ref{{tracePkg, spanB + "unsampled", 1}, {tracePkg, spanB + "off", 1}}, atMost: true, bound: 1.1},
}

// seriesIndex finds the series of a results file by package, name and
// GOMAXPROCS.
type seriesIndex struct {
	all  []*series
	byID map[ref]*series
}

func newSeriesIndex(res *results) *seriesIndex {
	ix := &seriesIndex{all: group(res.runs), byID: map[ref]*series{}}
	for _, s := range ix.all {
		ix.byID[ref{shortPkg(s.pkg), s.name, s.procs}] = s
	}
	return ix
}

// shortPkg returns an import path without the module path.
func shortPkg(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/eventpipeline/eventpipeline/")
}

// median returns the median of unit of the series r, and whether there is one.
func (ix *seriesIndex) median(r ref, unit string) (float64, bool) {
	s := ix.byID[r]
	if s == nil || len(s.values[unit]) == 0 {
		return 0, false
	}
	return median(s.values[unit]), true
}

// matching returns the series that r stands for, with procs 0 meaning
// any -cpu and a name ending in "/" any sub-benchmark under it.
func (ix *seriesIndex) matching(r ref) []*series {
	var out []*series
	for _, s := range ix.all {
		if shortPkg(s.pkg) != r.pkg || (r.procs != 0 && s.procs != r.procs) {
			continue
		}
		if s.name == r.name || strings.HasSuffix(r.name, "/") && strings.HasPrefix(s.name, r.name) {
			out = append(out, s)
		}
	}
	return out
}

// An outcome is a goal evaluated on one results file.
type outcome struct {
	figures string // the medians the value comes from
	value   float64
	result  string // the value, formatted
	missing string // what was not measured, if anything
}

// met reports whether the outcome keeps the goal.
func (g goal) met(o outcome) bool {
	if g.atMost {
		return o.value <= g.bound
	}
	return o.value >= g.bound
}

// ns formats a time per operation.
func ns(v float64) string { return formatValue("ns/op", v) }

func (g goal) evaluate(ix *seriesIndex) outcome {
	var miss []string
	missing := func(what string) {
		if !slices.Contains(miss, what) {
			miss = append(miss, what)
		}
	}
	med := func(r ref, unit string) float64 {
		v, ok := ix.median(r, unit)
		if !ok {
			missing(fmt.Sprintf("`%s` -cpu %d", r.short(), r.procs))
		}
		return v
	}
	var o outcome
	switch g.kind {
	case absolute:
		unit := cmp.Or(g.unit, "ns/op")
		o.value = med(g.refs[0], unit)
		o.figures = fmt.Sprintf("`%s`: %s", g.refs[0].short(), withUnit(unit, o.value))
		o.result = withUnit(unit, o.value)
	case ratio:
		a, b := med(g.refs[0], "ns/op"), med(g.refs[1], "ns/op")
		var parts []string
		for _, r := range append(slices.Clone(g.refs), g.also...) {
			parts = append(parts, fmt.Sprintf("`%s` %s", lastElem(r.short()), ns(med(r, "ns/op"))))
		}
		o.figures = strings.Join(parts, ", ")
		o.value = a / b
		o.result = formatRatio(o.value)
	case difference:
		a, b := med(g.refs[0], "ns/op"), med(g.refs[1], "ns/op")
		o.figures = fmt.Sprintf("`%s` %s, `%s` %s", lastElem(g.refs[0].short()), ns(a), lastElem(g.refs[1].short()), ns(b))
		o.value = a - b
		o.result = fmt.Sprintf("%+.0f ns", o.value)
	case scaling:
		var parts []string
		for i, r := range g.refs {
			one, two := r, r
			one.procs, two.procs = 1, 2
			a, b := med(one, "ns/op"), med(two, "ns/op")
			f := fmt.Sprintf("`%s` %s at -cpu 1, %s at -cpu 2", lastElem(r.short()), ns(a), ns(b))
			if i == 0 {
				o.value = a / b
			} else {
				f += fmt.Sprintf(" (%s)", formatRatio(a/b))
			}
			parts = append(parts, f)
		}
		o.figures = strings.Join(parts, "; ")
		o.result = formatRatio(o.value)
	case allocations:
		n := 0
		for _, r := range g.refs {
			ss := ix.matching(r)
			if len(ss) == 0 {
				missing("`" + r.short() + "`")
			}
			for _, s := range ss {
				if len(s.values["allocs/op"]) == 0 {
					missing(fmt.Sprintf("allocs/op of `%s` -cpu %d", strings.TrimPrefix(s.name, "Benchmark"), s.procs))
					continue
				}
				n++
				o.value = math.Max(o.value, median(s.values["allocs/op"]))
			}
		}
		o.figures = fmt.Sprintf("highest median of %d series", n)
		o.result = formatValue("allocs/op", o.value) + " allocs/op"
	}
	if len(miss) > 0 {
		o.missing = "not measured: " + strings.Join(miss, ", ")
	}
	return o
}

// lastElem returns the last element of a benchmark name.
func lastElem(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// formatRatio formats a ratio as "1.23x".
func formatRatio(v float64) string { return fmt.Sprintf("%.2fx", v) }

// withUnit formats a value of unit for the Goals table.
func withUnit(unit string, v float64) string {
	if unit == "ns/op" {
		return ns(v)
	}
	return formatValue(unit, v) + " " + unit
}

// boundText formats the goal's bound: "≤ 1.00x", "≥ 1.80x", "≤ 17.0 µs".
func (g goal) boundText() string {
	op := "≥"
	if g.atMost {
		op = "≤"
	}
	var v string
	switch g.kind {
	case ratio, scaling:
		v = formatRatio(g.bound)
	case difference:
		v = fmt.Sprintf("+%.0f ns", g.bound)
	case allocations:
		return fmt.Sprintf("%s allocs/op", formatValue("allocs/op", g.bound))
	default:
		v = withUnit(cmp.Or(g.unit, "ns/op"), g.bound)
	}
	return op + " " + v
}

// goalsTable returns the Goals table of res.
func goalsTable(res *results) string {
	ix := newSeriesIndex(res)
	var b strings.Builder
	b.WriteString("Generated by `docs/bench/run.sh`; do not edit by hand. Measured ")
	fmt.Fprintf(&b, "%s on %s, commit %s; every figure is a median over the runs of [the results below](#results), and every ratio is computed from two medians of that same run.\n\n",
		cmp.Or(res.meta["date"], "(no date)"), cmp.Or(res.meta["machine"], "(unknown machine)"), cmp.Or(res.meta["commit"], "(unknown commit)"))
	b.WriteString("| what | figures (medians) | result | goal | met |\n| --- | --- | --- | --- | --- |\n")
	for _, g := range goals {
		o := g.evaluate(ix)
		met := "yes"
		switch {
		case o.missing != "":
			o.figures, o.result, met = o.missing, "", "–"
		case !g.met(o):
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", g.what, o.figures, o.result, g.boundText(), met)
	}
	return b.String()
}
