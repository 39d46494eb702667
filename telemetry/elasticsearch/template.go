package elasticsearch

import (
	"encoding/json"
)

// TemplateVersion is the version of the index template this package
// installs, stored in the template's "version" field. Version 2 added
// enqueue_time, wait_seconds, trace_id, span_id and trace_sampled.
const TemplateVersion = 2

// templatePriority is above the priority (100) of the templates built into
// Elasticsearch, such as metrics-*-*, so that a prefix matching one of their
// patterns does not make the installation fail.
const templatePriority = 200

// mapping is one field of the index template.
type mapping struct {
	Type        string             `json:"type"`
	IgnoreAbove int                `json:"ignore_above,omitempty"`
	Fields      map[string]mapping `json:"fields,omitempty"`
}

// fieldMappings are the explicit mappings of every document field: keyword
// for names, ids (trace and span ids included), statuses, hosts and
// operations; date_nanos for the times (they carry nanoseconds); long and
// double for numbers; boolean for trace_sampled; the error text as text for
// full-text search with a keyword sub-field for aggregations.
var fieldMappings = map[string]mapping{
	"@timestamp":       {Type: "date_nanos"},
	"metric_type":      {Type: "keyword"},
	"event_name":       {Type: "keyword", IgnoreAbove: 1024},
	"task_id":          {Type: "keyword", IgnoreAbove: 1024},
	"pipeline_id":      {Type: "keyword", IgnoreAbove: 1024},
	"status":           {Type: "keyword"},
	"start_time":       {Type: "date_nanos"},
	"end_time":         {Type: "date_nanos"},
	"retry_count":      {Type: "long"},
	"process_id":       {Type: "long"},
	"duration_seconds": {Type: "double"},
	"operation":        {Type: "keyword", IgnoreAbove: 1024},
	"host":             {Type: "keyword", IgnoreAbove: 1024},
	"port":             {Type: "long"},
	"bytes_sent":       {Type: "long"},
	"bytes_received":   {Type: "long"},
	"latency_seconds":  {Type: "double"},
	"enqueue_time":     {Type: "date_nanos"},
	"wait_seconds":     {Type: "double"},
	"trace_id":         {Type: "keyword", IgnoreAbove: 64},
	"span_id":          {Type: "keyword", IgnoreAbove: 64},
	"trace_sampled":    {Type: "boolean"},
	"error": {Type: "text", Fields: map[string]mapping{
		"keyword": {Type: "keyword", IgnoreAbove: 1024},
	}},
}

// templateName returns the name of the index template of prefix.
func templateName(prefix string) string { return prefix }

// templateBody returns the body of PUT _index_template/<prefix>: the
// mappings above for every index named <prefix>-*.
func templateBody(prefix string) []byte {
	body := map[string]any{
		"index_patterns": []string{prefix + "-*"},
		"priority":       templatePriority,
		"version":        TemplateVersion,
		"_meta": map[string]any{
			"description": "Telemetry of event pipelines: event runs and network operations",
			"managed_by":  "github.com/eventpipeline/eventpipeline/telemetry/elasticsearch",
		},
		"template": map[string]any{
			"mappings": map[string]any{
				"dynamic":    true,
				"properties": fieldMappings,
			},
		},
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic("elasticsearch: encoding the index template: " + err.Error()) // static data: cannot happen
	}
	return b
}
