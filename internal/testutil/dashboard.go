package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Dashboard is the part of a Grafana dashboard's JSON model that the tests
// read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// Panel is a panel of a [Dashboard], or a row holding panels.
type Panel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr         string `json:"expr"`
		RefID        string `json:"refId"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []Panel `json:"panels"` // of a collapsed row
}

// LoadDashboard reads the Grafana dashboard in file, failing the test if it
// cannot.
func LoadDashboard(t testing.TB, file string) Dashboard {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d
}

// Query is one PromQL expression of a dashboard or a rule file.
type Query struct {
	Name   string // panel title and refId, the variable's name, or the alert's name
	Expr   string
	Legend string // the legend format of a panel's target, such as "{{event_name}} p95"
}

// LegendLabels returns the label names the legend of q shows, such as
// ["event_name"] for "{{event_name}} p95".
func (q Query) LegendLabels() []string {
	var names []string
	for _, m := range legendLabel.FindAllStringSubmatch(q.Legend, -1) {
		names = append(names, m[1])
	}
	return names
}

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// DashboardQueries returns every query of the dashboard in file, with
// Grafana's variables replaced by values Prometheus accepts ("All" for the
// template variables): each panel's targets and each query variable
// (label_values(m, l) becomes a query of m's l values). It reports panels
// without a query, or not on the ${datasource} variable, as test errors.
func DashboardQueries(t testing.TB, file string) []Query {
	t.Helper()
	return DashboardQueriesFor(t, file, nil)
}

// DashboardQueriesFor is [DashboardQueries] with the variables named in
// values set to those values: template variables instead of "All", as when
// a user picks one job, one event or one operation, or Grafana's own, such
// as "__rate_interval".
func DashboardQueriesFor(t testing.TB, file string, values map[string]string) []Query {
	t.Helper()
	d := LoadDashboard(t, file)
	vars := map[string]string{
		"__rate_interval": "1m", "__interval": "15s", "__range": "5m",
		"__range_s": "300", "__interval_ms": "15000",
	}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "query", "custom", "textbox", "constant":
			vars[v.Name] = ".*" // "All"
		}
	}
	maps.Copy(vars, values)
	subst := func(s string) string {
		// Longest names first, so $__range_s is not taken for $__range.
		names := slices.SortedFunc(maps.Keys(vars), func(a, b string) int { return len(b) - len(a) })
		for _, n := range names {
			s = strings.ReplaceAll(s, "${"+n+"}", vars[n])
			s = strings.ReplaceAll(s, "[["+n+"]]", vars[n])
			s = strings.ReplaceAll(s, "$"+n, vars[n])
		}
		if strings.Contains(s, "$") {
			t.Errorf("query %q: variable left after substitution", s)
		}
		return s
	}
	var qs []Query
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q target %s: empty expr", p.Title, tg.RefID)
				}
				qs = append(qs, Query{Name: p.Title + "/" + tg.RefID, Expr: subst(tg.Expr), Legend: tg.LegendFormat})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		def := subst(v.Definition)
		// label_values(metric{selector}, label)
		if !strings.HasPrefix(def, "label_values(") || !strings.HasSuffix(def, ")") {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, def)
			continue
		}
		args := strings.TrimSuffix(strings.TrimPrefix(def, "label_values("), ")")
		i := strings.LastIndex(args, ",")
		qs = append(qs, Query{
			Name: "variable " + v.Name,
			Expr: "count by (" + strings.TrimSpace(args[i+1:]) + ") (" + strings.TrimSpace(args[:i]) + ")",
		})
	}
	return qs
}

// HasData returns nil if the instant query q has at least one sample with
// a finite value on p, as a dashboard panel then shows something.
func HasData(ctx context.Context, p *Prometheus, q string) error {
	v, err := p.Query(ctx, q)
	if err != nil {
		return err
	}
	for _, s := range v {
		if !math.IsNaN(float64(s.Value)) && !math.IsInf(float64(s.Value), 0) {
			return nil
		}
	}
	return fmt.Errorf("%s: no data (got %v)", q, v)
}

// HasLegendData returns nil if the query q of a dashboard panel has data
// on p, as [HasData] says, and every sample has a value for each label its
// legend shows: a legend label that the query aggregates away (a typo in
// "by (...)", say) would show an empty name in the panel.
func HasLegendData(ctx context.Context, p *Prometheus, q Query) error {
	if err := HasData(ctx, p, q.Expr); err != nil {
		return err
	}
	v, err := p.Query(ctx, q.Expr)
	if err != nil {
		return err
	}
	for _, s := range v {
		for _, l := range q.LegendLabels() {
			if s.Metric[model.LabelName(l)] == "" {
				return fmt.Errorf("%s: sample %v has no label %s, which the legend %q shows", q.Expr, s.Metric, l, q.Legend)
			}
		}
	}
	return nil
}

// AlertQueries returns the expression of every alerting rule p has loaded,
// with each comparison made a bool comparison (see [BoolComparisons]), so
// that a query returns the rule's series whatever their values: it has
// data exactly when the alert can be evaluated on data. It fails if a rule
// is not healthy.
func AlertQueries(ctx context.Context, p *Prometheus) ([]Query, error) {
	res, err := p.API.Rules(ctx, nil)
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, g := range res.Groups {
		for _, rule := range g.Rules {
			a, ok := rule.(v1.AlertingRule)
			if !ok {
				return nil, fmt.Errorf("group %s: unexpected rule %T", g.Name, rule)
			}
			if a.Health != v1.RuleHealthGood && a.Health != v1.RuleHealthUnknown {
				return nil, fmt.Errorf("rule %s: health %q, error %q", a.Name, a.Health, a.LastError)
			}
			qs = append(qs, Query{Name: a.Name, Expr: BoolComparisons(a.Query)})
		}
	}
	if len(qs) == 0 {
		return nil, errors.New("no alerting rule loaded")
	}
	return qs, nil
}

// BoolComparisons returns the PromQL expression e with the bool modifier
// after each comparison operator (>, <, >=, <=, ==, !=) outside label
// matchers and strings, so that "x > 0.5" returns every series of x, with
// the value 1 or 0, instead of only those above 0.5.
func BoolComparisons(e string) string {
	var b strings.Builder
	depth := 0     // inside {...}
	var quote byte // inside a string
	for i := 0; i < len(e); i++ {
		c := e[i]
		b.WriteByte(c)
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(e) {
				i++
				b.WriteByte(e[i])
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			quote = c
			continue
		case c == '{':
			depth++
			continue
		case c == '}':
			depth--
			continue
		}
		if depth > 0 {
			continue
		}
		op := false
		switch c {
		case '>', '<':
			op = true
			if i+1 < len(e) && e[i+1] == '=' {
				i++
				b.WriteByte('=')
			}
		case '=', '!':
			if i+1 < len(e) && e[i+1] == '=' {
				op = true
				i++
				b.WriteByte('=')
			}
		}
		if op && !strings.HasPrefix(strings.TrimLeft(e[i+1:], " \t\n"), "bool") {
			b.WriteString(" bool")
			if i+1 < len(e) && !strings.ContainsRune(" \t\n", rune(e[i+1])) {
				b.WriteByte(' ')
			}
		}
	}
	return b.String()
}
