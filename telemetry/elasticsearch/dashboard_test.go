package elasticsearch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

const dashboardFile = "../../examples/telemetry/elasticsearch_dashboard.json"

// savedObject is one line of the Kibana saved-objects file.
type savedObject struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Attributes map[string]any `json:"attributes"`
	References []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"references"`
}

// lookupField returns the mapping of a field of the index template,
// sub-fields such as error.keyword included.
func lookupField(name string) (mapping, bool) {
	if m, ok := fieldMappings[name]; ok {
		return m, true
	}
	parent, sub, ok := strings.Cut(name, ".")
	if !ok {
		return mapping{}, false
	}
	m, ok := fieldMappings[parent].Fields[sub]
	return m, ok
}

// aggregatable lists the mapping types each aggregation can use.
var aggregatable = map[string][]string{
	"terms":          {"keyword", "long", "double", "date", "date_nanos"},
	"histogram":      {"long", "double"},
	"date_histogram": {"date", "date_nanos"},
	"avg":            {"long", "double"},
	"sum":            {"long", "double"},
	"percentiles":    {"long", "double"},
	"max":            {"long", "double", "date", "date_nanos"},
	"min":            {"long", "double", "date", "date_nanos"},
}

// kqlField finds the field names of "field : value" clauses of a KQL query.
var kqlField = regexp.MustCompile(`([A-Za-z_@][A-Za-z0-9_.@]*)\s*:`)

func readDashboard(t *testing.T) []savedObject {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Error("the file does not end with a newline")
	}
	var objs []savedObject
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			t.Errorf("line %d is empty: the saved-objects import reads one object per line", n)
			continue
		}
		var o savedObject
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if o.ID == "" || o.Type == "" || o.Attributes == nil {
			t.Errorf("line %d: id, type and attributes are required", n)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestDashboardFieldsInTemplate checks that every field the dashboard uses
// exists in the index template, with a type its aggregation can use, and
// that the saved objects reference each other consistently.
func TestDashboardFieldsInTemplate(t *testing.T) {
	objs := readDashboard(t)
	byID := map[string]savedObject{}
	for _, o := range objs {
		if _, dup := byID[o.ID]; dup {
			t.Errorf("duplicate id %s", o.ID)
		}
		byID[o.ID] = o
	}
	checkQuery := func(where, searchSource string) {
		var ss struct {
			Query struct {
				Query    string `json:"query"`
				Language string `json:"language"`
			} `json:"query"`
			IndexRefName string `json:"indexRefName"`
		}
		if err := json.Unmarshal([]byte(searchSource), &ss); err != nil {
			t.Errorf("%s: searchSourceJSON: %v", where, err)
			return
		}
		for _, m := range kqlField.FindAllStringSubmatch(ss.Query.Query, -1) {
			if _, ok := lookupField(m[1]); !ok {
				t.Errorf("%s: query uses field %q, which the index template does not map", where, m[1])
			}
		}
	}

	var dataViews, visualizations, dashboards int
	titles := map[string]bool{}
	for _, o := range objs {
		switch o.Type {
		case "index-pattern":
			dataViews++
			if got, want := o.Attributes["title"], DefaultIndexPrefix+"-*"; got != want {
				t.Errorf("data view title: got %v, want %s", got, want)
			}
			tf, _ := o.Attributes["timeFieldName"].(string)
			if m, ok := lookupField(tf); !ok || (m.Type != "date" && m.Type != "date_nanos") {
				t.Errorf("data view time field %q is not a date in the template", tf)
			}
		case "visualization":
			visualizations++
			title, _ := o.Attributes["title"].(string)
			titles[title] = true
			var vs struct {
				Type string `json:"type"`
				Aggs []struct {
					Type   string         `json:"type"`
					Schema string         `json:"schema"`
					Params map[string]any `json:"params"`
				} `json:"aggs"`
			}
			if err := json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vs); err != nil {
				t.Fatalf("%s: visState: %v", o.ID, err)
			}
			if len(vs.Aggs) == 0 {
				t.Errorf("%s: no aggregation", o.ID)
			}
			for _, a := range vs.Aggs {
				field, _ := a.Params["field"].(string)
				if field == "" {
					if a.Type != "count" {
						t.Errorf("%s: %s aggregation without a field", o.ID, a.Type)
					}
					continue
				}
				m, ok := lookupField(field)
				if !ok {
					t.Errorf("%s: field %q is not in the index template", o.ID, field)
					continue
				}
				types, known := aggregatable[a.Type]
				if !known {
					t.Errorf("%s: aggregation %q is not checked by this test", o.ID, a.Type)
					continue
				}
				if !contains(types, m.Type) {
					t.Errorf("%s: %s aggregation on %q, mapped as %s, which it cannot aggregate", o.ID, a.Type, field, m.Type)
				}
			}
			meta, _ := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
			ss, _ := meta["searchSourceJSON"].(string)
			checkQuery(o.ID, ss)
			if len(o.References) != 1 || o.References[0].Type != "index-pattern" || byID[o.References[0].ID].Type != "index-pattern" {
				t.Errorf("%s: want one reference to the data view, got %+v", o.ID, o.References)
			}
		case "dashboard":
			dashboards++
			var panels []struct {
				PanelIndex   string `json:"panelIndex"`
				PanelRefName string `json:"panelRefName"`
			}
			if err := json.Unmarshal([]byte(o.Attributes["panelsJSON"].(string)), &panels); err != nil {
				t.Fatalf("%s: panelsJSON: %v", o.ID, err)
			}
			refs := map[string]string{}
			for _, r := range o.References {
				refs[r.Name] = r.ID
				if target, ok := byID[r.ID]; !ok || target.Type != r.Type {
					t.Errorf("%s: reference %s to %s %s, which the file does not hold", o.ID, r.Name, r.Type, r.ID)
				}
			}
			for _, p := range panels {
				if _, ok := refs[p.PanelIndex+":"+p.PanelRefName]; !ok {
					t.Errorf("%s: panel %s has no reference %s:%s", o.ID, p.PanelIndex, p.PanelIndex, p.PanelRefName)
				}
			}
			if len(panels) != visualizations {
				t.Errorf("%s: %d panels, want one per visualization (%d)", o.ID, len(panels), visualizations)
			}
		default:
			t.Errorf("unexpected saved object type %q", o.Type)
		}
	}
	if dataViews != 1 || dashboards != 1 {
		t.Errorf("got %d data views and %d dashboards, want 1 of each", dataViews, dashboards)
	}
	// The panels the dashboard promises, plus retry statistics.
	for _, want := range []string{"Event duration distribution", "Status breakdown", "Network latency by operation",
		"Network bytes by operation and host", "Error tracking", "Retry statistics"} {
		if !titles[want] {
			t.Errorf("no visualization titled %q", want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestEveryDocumentFieldMapped checks that every field of the documents
// of both kinds, with every optional field present (enqueue time, span
// context, error, process and pipeline ids), has an explicit mapping whose
// type fits the value.
func TestEveryDocumentFieldMapped(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	span := telemetry.SpanContext{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Sampled: true}
	ev := telemetry.EventMetrics{
		EventName: "resize", TaskID: "t1", StartTime: start, EndTime: start.Add(time.Second),
		Status: telemetry.StatusFailed, Error: "boom", RetryCount: 1, ProcessID: 7, PipelineID: "run-1",
		EnqueueTime: start.Add(-3 * time.Second), Span: span,
	}
	op := telemetry.NetworkMetrics{
		TaskID: "t1", Operation: "asynq_enqueue", Host: "127.0.0.1", Port: 6379, StartTime: start,
		EndTime: start.Add(time.Millisecond), Status: telemetry.StatusCompleted, BytesSent: 10, Span: span,
	}
	wantType := func(v any) []string {
		switch v.(type) {
		case string:
			return []string{"keyword", "text", "date", "date_nanos"}
		case float64:
			return []string{"long", "double"}
		case bool:
			return []string{"boolean"}
		}
		return nil
	}
	for _, rec := range []interface{ MarshalJSON() ([]byte, error) }{ev, op} {
		js, err := rec.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(appendDocument(nil, start, js), &doc); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"enqueue_time", "wait_seconds", "trace_id", "span_id", "trace_sampled"} {
			if _, ok := doc[key]; !ok && rec == any(ev) {
				t.Errorf("event document has no %s: %s", key, js)
			}
		}
		for key, v := range doc {
			if v == nil {
				continue
			}
			m, ok := lookupField(key)
			if !ok {
				t.Errorf("document field %s has no mapping in the index template", key)
				continue
			}
			if !slices.Contains(wantType(v), m.Type) {
				t.Errorf("document field %s = %v is mapped as %s, want one of %v", key, v, m.Type, wantType(v))
			}
		}
	}
	for _, key := range []string{"enqueue_time", "start_time", "end_time", "@timestamp"} {
		if m, _ := lookupField(key); m.Type != "date_nanos" {
			t.Errorf("%s: mapped as %q, want date_nanos", key, m.Type)
		}
	}
}
