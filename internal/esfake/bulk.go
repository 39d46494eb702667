package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var bulkParams = []string{
	"refresh", "pipeline", "routing", "timeout", "wait_for_active_shards", "require_alias",
	"require_data_stream", "_source", "_source_includes", "_source_excludes", "list_executed_pipelines",
}

var actionParams = map[string]bool{
	"_index": true, "_id": true, "routing": true, "pipeline": true, "require_alias": true,
	"version": true, "version_type": true, "if_seq_no": true, "if_primary_term": true,
	"dynamic_templates": true, "retry_on_conflict": true, "require_data_stream": true,
	"list_executed_pipelines": true,
}

// bulk answers a _bulk request. Malformed requests are refused as a whole,
// as Elasticsearch refuses them; per-document problems become item errors.
func (s *Server) bulk(r *http.Request, defIndex string, body []byte) response {
	if res, ok := s.checkParams(r, bulkParams...); !ok {
		return res
	}
	bad := func(format string, args ...any) response {
		msg := fmt.Sprintf(format, args...)
		s.violation("bulk: %s", msg)
		return errorResponse(400, "illegal_argument_exception", msg)
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if !strings.Contains(ct, "ndjson") {
		// Elasticsearch accepts JSON too, but a well-behaved client says NDJSON.
		s.violation("bulk: Content-Type %q is not NDJSON", r.Header.Get("Content-Type"))
	}
	if len(body) == 0 {
		return bad("request body is required")
	}
	if body[len(body)-1] != '\n' {
		return bad("The bulk request must be terminated by a newline [\\n]")
	}
	lines := bytes.Split(body[:len(body)-1], []byte{'\n'})
	start := time.Now()
	var (
		items  []byte
		n      int
		errors bool
	)
	items = append(items, '[')
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if len(bytes.TrimSpace(line)) == 0 {
			return bad("line [%d]: empty line", i+1)
		}
		action, err := decodeObject(line)
		if err != nil {
			return bad("Malformed action/metadata line [%d], expected START_OBJECT: %v", i+1, err)
		}
		if len(action) != 1 {
			return bad("Malformed action/metadata line [%d], expected a single action, got %d keys", i+1, len(action))
		}
		var (
			op   string
			meta map[string]any
		)
		for k, v := range action {
			op = k
			m, ok := v.(map[string]any)
			if !ok {
				return bad("Malformed action/metadata line [%d], expected START_OBJECT after [%s]", i+1, k)
			}
			meta = m
		}
		switch op {
		case "index", "create", "update", "delete":
		default:
			return bad("Malformed action/metadata line [%d], expected field [create], [delete], [index] or [update] but found [%s]", i+1, op)
		}
		for k := range meta {
			if !actionParams[k] {
				return bad("Action/metadata line [%d] contains an unknown parameter [%s]", i+1, k)
			}
		}
		idx, _ := meta["_index"].(string)
		if _, has := meta["_index"]; has && idx == "" {
			return bad("Action/metadata line [%d]: [_index] must be a non-empty string", i+1)
		}
		if idx == "" {
			idx = defIndex
		}
		if idx == "" {
			return bad("Action/metadata line [%d]: index is missing", i+1)
		}
		id, _ := meta["_id"].(string)
		if _, has := meta["_id"]; has && id == "" {
			return bad("Action/metadata line [%d]: [_id] must be a non-empty string", i+1)
		}
		var src []byte
		if op != "delete" {
			i++
			if i >= len(lines) {
				return bad("The bulk request must be terminated by a newline [\\n]: action line [%d] has no source line", i)
			}
			src = lines[i]
		}
		n++
		if id == "" && op != "delete" {
			s.seqNo++
			id = "esfake" + strconv.FormatInt(s.seqNo, 36)
		}
		if n > 1 {
			items = append(items, ',')
		}
		res, ierr := s.applyItem(op, idx, id, src)
		if ierr != nil {
			errors = true
			items = appendItemError(items, op, idx, id, ierr)
		} else {
			items = appendItemResult(items, op, idx, id, res)
		}
	}
	items = append(items, ']')
	out := []byte(`{"errors":`)
	out = strconv.AppendBool(out, errors)
	out = append(out, `,"took":`...)
	out = strconv.AppendInt(out, time.Since(start).Milliseconds(), 10)
	out = append(out, `,"items":`...)
	out = append(out, items...)
	out = append(out, '}')
	return response{status: 200, body: out, items: n}
}

type itemResult struct {
	version int
	result  string // created, updated, deleted, not_found
	status  int
	seqNo   int64
}

// applyItem stores or deletes one document.
func (s *Server) applyItem(op, idx, id string, src []byte) (itemResult, *ItemError) {
	if why := validIndexName(idx); why != "" {
		return itemResult{}, &ItemError{Status: 400, Type: "invalid_index_name_exception", Reason: "Invalid index name [" + idx + "], " + why}
	}
	ix := s.indices[idx]
	switch op {
	case "delete":
		if ix == nil || ix.docs[id] == nil {
			return itemResult{result: "not_found", status: 404, version: 1}, nil
		}
		v := ix.docs[id].Version + 1
		delete(ix.docs, id)
		for i, o := range ix.order {
			if o == id {
				ix.order = append(ix.order[:i], ix.order[i+1:]...)
				break
			}
		}
		s.seqNo++
		return itemResult{version: v, result: "deleted", status: 200, seqNo: s.seqNo}, nil
	case "update":
		return itemResult{}, &ItemError{Status: 400, Type: "illegal_argument_exception", Reason: "esfake does not support the update action"}
	}
	source, err := decodeObject(src)
	if err != nil {
		return itemResult{}, &ItemError{Status: 400, Type: "document_parsing_exception",
			Reason: "[1:1] failed to parse: " + err.Error(),
			Cause:  &ItemError{Type: "json_parse_exception", Reason: err.Error()}}
	}
	if s.itemFn != nil {
		if ierr := s.itemFn(idx, id, source); ierr != nil {
			return itemResult{}, ierr
		}
	}
	props := s.indexProps(idx, ix)
	if ierr := checkSource(props, source, id); ierr != nil {
		return itemResult{}, ierr
	}
	if ix == nil {
		ix = &index{name: idx, docs: make(map[string]*Doc), props: props}
		s.indices[idx] = ix
	}
	s.seqNo++
	if old := ix.docs[id]; old != nil {
		if op == "create" {
			return itemResult{}, &ItemError{Status: 409, Type: "version_conflict_engine_exception",
				Reason: "[" + id + "]: version conflict, document already exists (current version [" + strconv.Itoa(old.Version) + "])"}
		}
		old.Version++
		old.Source, old.Raw = source, append([]byte(nil), src...)
		return itemResult{version: old.Version, result: "updated", status: 200, seqNo: s.seqNo}, nil
	}
	ix.docs[id] = &Doc{Index: idx, ID: id, Version: 1, Source: source, Raw: append([]byte(nil), src...)}
	ix.order = append(ix.order, id)
	return itemResult{version: 1, result: "created", status: 201, seqNo: s.seqNo}, nil
}

// indexProps returns the mappings of an index: those it was created with,
// or, for a new index, those of the matching template of highest priority.
func (s *Server) indexProps(name string, ix *index) map[string]fieldMapping {
	if ix != nil {
		return ix.props
	}
	var best *template
	for _, t := range s.templates {
		for _, p := range t.patterns {
			if matchPattern(p, name) && (best == nil || t.priority > best.priority) {
				best = t
			}
		}
	}
	if best == nil {
		return nil
	}
	return best.props
}

// checkSource checks the values of a document against explicit mappings,
// as Elasticsearch's mappers do (with their default coercion).
func checkSource(props map[string]fieldMapping, src map[string]any, id string) *ItemError {
	for field, v := range src {
		m, ok := props[field]
		if !ok || v == nil {
			continue
		}
		if !fits(m.typ, v) {
			return MappingError(field, m.typ, id, v)
		}
	}
	return nil
}

// fits reports whether a JSON value can be indexed in a field of type typ.
func fits(typ string, v any) bool {
	switch typ {
	case "keyword", "text", "wildcard", "constant_keyword":
		switch v.(type) {
		case string, json.Number, bool:
			return true
		}
		return false
	case "long", "integer", "short", "byte":
		var f float64
		switch x := v.(type) {
		case json.Number:
			var err error
			if f, err = x.Float64(); err != nil {
				return false
			}
		case string:
			var err error
			if f, err = strconv.ParseFloat(x, 64); err != nil {
				return false
			}
		default:
			return false
		}
		limit := map[string]float64{"long": math.MaxInt64, "integer": math.MaxInt32, "short": math.MaxInt16, "byte": math.MaxInt8}[typ]
		return f <= limit && f >= -limit-1
	case "double", "float", "half_float", "scaled_float":
		switch x := v.(type) {
		case json.Number:
			_, err := x.Float64()
			return err == nil
		case string:
			_, err := strconv.ParseFloat(x, 64)
			return err == nil
		}
		return false
	case "date", "date_nanos":
		switch x := v.(type) {
		case json.Number:
			_, err := x.Int64()
			return err == nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return false
			}
			if typ == "date_nanos" && (t.Year() < 1970 || t.Year() > 2262) {
				return false
			}
			return true
		}
		return false
	case "boolean":
		switch x := v.(type) {
		case bool:
			return true
		case string:
			return x == "true" || x == "false" || x == ""
		}
		return false
	case "object", "nested", "flattened":
		_, ok := v.(map[string]any)
		return ok
	}
	return true
}

func appendItemResult(b []byte, op, idx, id string, r itemResult) []byte {
	b = append(b, `{"`...)
	b = append(b, op...)
	b = append(b, `":{"_index":`...)
	b = strconv.AppendQuote(b, idx)
	b = append(b, `,"_id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, int64(r.version), 10)
	b = append(b, `,"result":"`...)
	b = append(b, r.result...)
	b = append(b, `","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":`...)
	b = strconv.AppendInt(b, r.seqNo, 10)
	b = append(b, `,"_primary_term":1,"status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	return append(b, `}}`...)
}

func appendItemError(b []byte, op, idx, id string, e *ItemError) []byte {
	b = append(b, `{"`...)
	b = append(b, op...)
	b = append(b, `":{"_index":`...)
	b = strconv.AppendQuote(b, idx)
	b = append(b, `,"_id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"error":`...)
	b = appendError(b, e)
	return append(b, `}}`...)
}

func appendError(b []byte, e *ItemError) []byte {
	js, _ := json.Marshal(map[string]string{"type": e.Type, "reason": e.Reason})
	if e.Cause == nil {
		return append(b, js...)
	}
	b = append(b, js[:len(js)-1]...)
	b = append(b, `,"caused_by":`...)
	b = appendError(b, e.Cause)
	return append(b, '}')
}
