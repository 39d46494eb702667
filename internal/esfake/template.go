package esfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

var templateKeys = map[string]bool{
	"index_patterns": true, "template": true, "composed_of": true, "priority": true, "version": true,
	"_meta": true, "data_stream": true, "allow_auto_create": true,
	"ignore_missing_component_templates": true, "deprecated": true,
}

var templateBodyKeys = map[string]bool{"settings": true, "mappings": true, "aliases": true, "lifecycle": true}

var mappingsKeys = map[string]bool{
	"properties": true, "dynamic": true, "dynamic_templates": true, "_source": true, "_meta": true,
	"date_detection": true, "numeric_detection": true, "dynamic_date_formats": true, "_routing": true,
	"runtime": true, "subobjects": true, "enabled": true,
}

// commonParams are the mapping parameters every field type accepts here.
var commonParams = []string{"type", "meta", "doc_values", "index", "store", "fields", "copy_to"}

// typeParams are the other parameters each field type accepts.
var typeParams = map[string][]string{
	"keyword":      {"ignore_above", "null_value", "normalizer", "eager_global_ordinals", "norms", "similarity", "index_options", "split_queries_on_whitespace", "time_series_dimension", "script", "on_script_error"},
	"text":         {"analyzer", "search_analyzer", "search_quote_analyzer", "fielddata", "fielddata_frequency_filter", "index_options", "index_prefixes", "index_phrases", "norms", "position_increment_gap", "similarity", "term_vector", "eager_global_ordinals"},
	"long":         {"coerce", "ignore_malformed", "null_value", "time_series_metric", "time_series_dimension", "script", "on_script_error"},
	"integer":      {"coerce", "ignore_malformed", "null_value", "time_series_metric", "time_series_dimension", "script", "on_script_error"},
	"short":        {"coerce", "ignore_malformed", "null_value"},
	"byte":         {"coerce", "ignore_malformed", "null_value"},
	"double":       {"coerce", "ignore_malformed", "null_value", "time_series_metric", "script", "on_script_error"},
	"float":        {"coerce", "ignore_malformed", "null_value", "time_series_metric"},
	"half_float":   {"coerce", "ignore_malformed", "null_value"},
	"scaled_float": {"coerce", "ignore_malformed", "null_value", "scaling_factor"},
	"date":         {"format", "locale", "ignore_malformed", "null_value", "script", "on_script_error"},
	"date_nanos":   {"format", "locale", "ignore_malformed", "null_value", "script", "on_script_error"},
	"boolean":      {"null_value", "script", "on_script_error"},
	"ip":           {"ignore_malformed", "null_value", "script", "on_script_error"},
	"wildcard":     {"ignore_above", "null_value"},
	"object":       {"properties", "dynamic", "enabled", "subobjects"},
	"nested":       {"properties", "dynamic", "include_in_parent", "include_in_root"},
	"flattened":    {"depth_limit", "ignore_above", "null_value", "eager_global_ordinals", "similarity", "split_queries_on_whitespace"},
}

// putTemplate validates and stores a composable index template.
func (s *Server) putTemplate(r *http.Request, name string, body []byte) response {
	if res, ok := s.checkParams(r, "create", "master_timeout", "cause"); !ok {
		return res
	}
	bad := func(typ, format string, args ...any) response {
		msg := fmt.Sprintf(format, args...)
		s.violation("_index_template/%s: %s", name, msg)
		return errorResponse(400, typ, msg)
	}
	if why := validIndexName(name); why != "" && !strings.HasPrefix(name, ".") {
		return bad("invalid_index_template_exception", "index_template [%s] invalid, cause [%s]", name, why)
	}
	if len(body) == 0 {
		return bad("parse_exception", "request body is required")
	}
	doc, err := decodeObject(body)
	if err != nil {
		return bad("x_content_parse_exception", "%v", err)
	}
	for k := range doc {
		if !templateKeys[k] {
			return bad("x_content_parse_exception", "[1:2] [index_template] unknown field [%s]", k)
		}
	}
	var patterns []string
	switch p := doc["index_patterns"].(type) {
	case string:
		patterns = []string{p}
	case []any:
		for _, v := range p {
			ps, ok := v.(string)
			if !ok {
				return bad("x_content_parse_exception", "[index_template] index_patterns must be strings")
			}
			patterns = append(patterns, ps)
		}
	case nil:
		return bad("action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	default:
		return bad("x_content_parse_exception", "[index_template] index_patterns must be a string or an array")
	}
	if len(patterns) == 0 {
		return bad("action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	}
	for _, p := range patterns {
		if strings.ContainsAny(p, " ,\"\\/<>|?#") || p == "" || strings.HasPrefix(p, "_") || strings.HasPrefix(p, "-") {
			return bad("invalid_index_template_exception", "index_template [%s] invalid, cause [index_pattern [%s] must not contain a space, ',', '\"', '\\', '/', '<', '>', '|', '?', '#', nor start with '_' or '-']", name, p)
		}
	}
	priority := 0
	if v, ok := doc["priority"]; ok {
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i < 0 {
			return bad("x_content_parse_exception", "[index_template] priority must be a non-negative integer")
		}
		priority = int(i)
	}
	if v, ok := doc["version"]; ok {
		if n, ok := v.(json.Number); !ok {
			return bad("x_content_parse_exception", "[index_template] version must be an integer")
		} else if _, err := n.Int64(); err != nil {
			return bad("x_content_parse_exception", "[index_template] version must be an integer")
		}
	}
	var props map[string]fieldMapping
	if t, ok := doc["template"]; ok {
		tm, ok := t.(map[string]any)
		if !ok {
			return bad("x_content_parse_exception", "[index_template] template must be an object")
		}
		for k := range tm {
			if !templateBodyKeys[k] {
				return bad("x_content_parse_exception", "[template] unknown field [%s]", k)
			}
		}
		if m, ok := tm["mappings"]; ok {
			mm, ok := m.(map[string]any)
			if !ok {
				return bad("mapper_parsing_exception", "mappings must be an object")
			}
			for k := range mm {
				if !mappingsKeys[k] {
					return bad("mapper_parsing_exception", "Root mapping definition has unsupported parameters:  [%s]", k)
				}
			}
			if d, ok := mm["dynamic"]; ok {
				switch d {
				case true, false, "true", "false", "strict", "runtime":
				default:
					return bad("mapper_parsing_exception", "dynamic must be one of [true, false, strict, runtime], got [%v]", d)
				}
			}
			if p, ok := mm["properties"]; ok {
				pm, ok := p.(map[string]any)
				if !ok {
					return bad("mapper_parsing_exception", "properties must be an object")
				}
				var msg string
				props, msg = parseProperties(pm, "")
				if msg != "" {
					return bad("mapper_parsing_exception", "Failed to parse mapping: %s", msg)
				}
			}
		}
	}
	for other, t := range s.templates {
		if other == name || t.priority != priority {
			continue
		}
		for _, a := range t.patterns {
			for _, b := range patterns {
				if a == b || matchPattern(a, b) || matchPattern(b, a) {
					return bad("illegal_argument_exception",
						"index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
						name, patterns, other, other, t.patterns, priority)
				}
			}
		}
	}
	s.templates[name] = &template{name: name, patterns: patterns, priority: priority, props: props, raw: append(json.RawMessage(nil), body...)}
	s.tmplPuts++
	return jsonResponse(200, map[string]bool{"acknowledged": true})
}

// parseProperties checks the field mappings of a properties object.
func parseProperties(pm map[string]any, parent string) (map[string]fieldMapping, string) {
	out := make(map[string]fieldMapping, len(pm))
	names := make([]string, 0, len(pm))
	for k := range pm {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, field := range names {
		full := parent + field
		def, ok := pm[field].(map[string]any)
		if !ok {
			return nil, fmt.Sprintf("Expected map for property [fields] on field [%s] but got a %T", full, pm[field])
		}
		typ, _ := def["type"].(string)
		if typ == "" {
			if _, ok := def["properties"]; ok {
				typ = "object"
			} else {
				return nil, fmt.Sprintf("No type specified for field [%s]", full)
			}
		}
		allowed, known := typeParams[typ]
		if !known {
			return nil, fmt.Sprintf("No handler for type [%s] declared on field [%s]", typ, full)
		}
		for p := range def {
			if !contains(commonParams, p) && !contains(allowed, p) {
				return nil, fmt.Sprintf("unknown parameter [%s] on mapper [%s] of type [%s]", p, full, typ)
			}
		}
		fm := fieldMapping{typ: typ}
		if f, ok := def["fields"]; ok {
			fmap, ok := f.(map[string]any)
			if !ok {
				return nil, fmt.Sprintf("fields of [%s] must be an object", full)
			}
			sub, msg := parseProperties(fmap, full+".")
			if msg != "" {
				return nil, msg
			}
			fm.fields = sub
		}
		if p, ok := def["properties"]; ok {
			pmap, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Sprintf("properties of [%s] must be an object", full)
			}
			if _, msg := parseProperties(pmap, full+"."); msg != "" {
				return nil, msg
			}
		}
		out[field] = fm
	}
	return out, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) getTemplate(name string) response {
	t, ok := s.templates[name]
	if !ok {
		return errorResponse(404, "resource_not_found_exception", "index template matching ["+name+"] not found")
	}
	return jsonResponse(200, map[string]any{"index_templates": []any{
		map[string]any{"name": t.name, "index_template": t.raw},
	}})
}
