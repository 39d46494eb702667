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
	f, ok := parseFilterPath(r.URL.Query().Get("filter_path"))
	if !ok {
		return bad("esfake supports filter_path entries errors, took, items, items.*, items.*.<field> only; got %q", r.URL.Query().Get("filter_path"))
	}
	if media, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.EqualFold(strings.TrimSpace(media), "application/json") {
		// Elasticsearch accepts it, but the body is NDJSON: a client that
		// knows it says application/x-ndjson (the vendored compatible-with
		// forms are what the client sends in compatibility mode).
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
	items = make([]byte, 0, 64+len(lines)*100)
	items = append(items, '[')
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if len(bytes.TrimSpace(line)) == 0 {
			return bad("line [%d]: empty line", i+1)
		}
		op, meta, err := parseAction(line)
		if err != "" {
			return bad("Malformed action/metadata line [%d]: %s", i+1, err)
		}
		idx := meta.Index
		if meta.hasIndex && idx == "" {
			return bad("Action/metadata line [%d]: [_index] must be a non-empty string", i+1)
		}
		if idx == "" {
			idx = defIndex
		}
		if idx == "" {
			return bad("Action/metadata line [%d]: index is missing", i+1)
		}
		id := meta.ID
		if meta.hasID && id == "" {
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
			items = appendItemError(items, f, op, idx, id, ierr)
		} else {
			items = appendItemResult(items, f, op, idx, id, res)
		}
	}
	items = append(items, ']')
	var out []byte
	sep := byte('{')
	if f.top("errors") {
		out = append(out, sep)
		out = append(out, `"errors":`...)
		out = strconv.AppendBool(out, errors)
		sep = ','
	}
	if f.top("took") {
		out = append(out, sep)
		out = append(out, `"took":`...)
		out = strconv.AppendInt(out, time.Since(start).Milliseconds(), 10)
		sep = ','
	}
	if f.top("items") && n > 0 {
		out = append(out, sep)
		out = append(out, `"items":`...)
		out = append(out, items...)
		sep = ','
	}
	if sep == '{' {
		out = append(out, '{')
	}
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
	if err := checkSource(s.indexProps(idx, ix), src, id); err != nil {
		return itemResult{}, err
	}
	if s.itemFn != nil {
		source, _ := decodeObject(src)
		if ierr := s.itemFn(idx, id, source); ierr != nil {
			return itemResult{}, ierr
		}
	}
	if ix == nil {
		ix = &index{name: idx, docs: make(map[string]*Doc), props: s.indexProps(idx, nil)}
		s.indices[idx] = ix
	}
	s.seqNo++
	if old := ix.docs[id]; old != nil {
		if op == "create" {
			return itemResult{}, &ItemError{Status: 409, Type: "version_conflict_engine_exception",
				Reason: "[" + id + "]: version conflict, document already exists (current version [" + strconv.Itoa(old.Version) + "])"}
		}
		old.Version++
		old.Raw = append([]byte(nil), src...)
		return itemResult{version: old.Version, result: "updated", status: 200, seqNo: s.seqNo}, nil
	}
	ix.docs[id] = &Doc{Index: idx, ID: id, Version: 1, Raw: append([]byte(nil), src...)}
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

// checkSource checks that src is a JSON object and its values fit the
// explicit mappings, as Elasticsearch's mappers do (with their default
// coercion).
func checkSource(props map[string]fieldMapping, src []byte, id string) *ItemError {
	var bad *ItemError
	err := scanObject(src, func(key, raw []byte) error {
		if len(props) == 0 || string(raw) == "null" {
			return nil
		}
		var m fieldMapping
		var ok bool
		if bytes.IndexByte(key, '\\') < 0 {
			m, ok = props[string(key[1:len(key)-1])] // no allocation
		} else if field, valid := unquote(key); valid {
			m, ok = props[field]
		}
		if ok && bad == nil && !fits(m.typ, raw) {
			field, _ := unquote(key)
			bad = MappingError(field, m.typ, id, string(raw))
		}
		return nil
	})
	if err != nil {
		return &ItemError{Status: 400, Type: "document_parsing_exception",
			Reason: "[1:1] failed to parse: " + err.Error(),
			Cause:  &ItemError{Type: "json_parse_exception", Reason: err.Error()}}
	}
	return bad
}

// fits reports whether a JSON value can be indexed in a field of type typ.
func fits(typ string, raw json.RawMessage) bool {
	var (
		str    string
		isStr  = raw[0] == '"'
		isNum  = raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')
		isBool = string(raw) == "true" || string(raw) == "false"
	)
	if isStr {
		var ok bool
		if str, ok = unquote(raw); !ok {
			return false
		}
	}
	number := func() (float64, bool) {
		switch {
		case isNum:
			f, err := strconv.ParseFloat(string(raw), 64)
			return f, err == nil
		case isStr:
			f, err := strconv.ParseFloat(str, 64)
			return f, err == nil
		}
		return 0, false
	}
	switch typ {
	case "keyword", "text", "wildcard", "constant_keyword":
		return isStr || isNum || isBool
	case "long", "integer", "short", "byte":
		f, ok := number()
		limit := map[string]float64{"long": math.MaxInt64, "integer": math.MaxInt32, "short": math.MaxInt16, "byte": math.MaxInt8}[typ]
		return ok && f <= limit && f >= -limit-1
	case "double", "float", "half_float", "scaled_float":
		_, ok := number()
		return ok
	case "date", "date_nanos":
		if isNum {
			_, err := strconv.ParseInt(string(raw), 10, 64)
			return err == nil
		}
		if !isStr {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return false
		}
		return typ == "date" || (t.Year() >= 1970 && t.Year() <= 2262)
	case "boolean":
		return isBool || (isStr && (str == "true" || str == "false" || str == ""))
	case "object", "nested", "flattened":
		return raw[0] == '{'
	}
	return true
}

// actionMeta is the metadata of a bulk action line.
type actionMeta struct {
	Index, ID       string
	hasIndex, hasID bool
}

// parseAction parses an action line strictly: one action among index,
// create, update and delete, with known parameters only.
func parseAction(line []byte) (op string, meta actionMeta, problem string) {
	n := 0
	var body []byte
	err := scanObject(line, func(key, raw []byte) error {
		n++
		k, _ := unquote(key)
		op, body = k, raw
		return nil
	})
	if err != nil {
		return "", meta, "expected START_OBJECT: " + err.Error()
	}
	if n != 1 {
		return "", meta, fmt.Sprintf("expected a single action, got %d keys", n)
	}
	switch op {
	case "index", "create", "update", "delete":
	default:
		return "", meta, fmt.Sprintf("expected field [create], [delete], [index] or [update] but found [%s]", op)
	}
	if len(body) == 0 || body[0] != '{' {
		return "", meta, fmt.Sprintf("expected START_OBJECT after [%s]", op)
	}
	err = scanObject(body, func(key, raw []byte) error {
		k, _ := unquote(key)
		if !actionParams[k] {
			problem = fmt.Sprintf("contains an unknown parameter [%s]", k)
			return errSyntax
		}
		var ok bool
		switch k {
		case "_index":
			meta.hasIndex = true
			if meta.Index, ok = unquote(raw); !ok {
				problem = "[_index] must be a string"
				return errSyntax
			}
		case "_id":
			meta.hasID = true
			if meta.ID, ok = unquote(raw); !ok {
				problem = "[_id] must be a string"
				return errSyntax
			}
		}
		return nil
	})
	if problem != "" {
		return "", meta, problem
	}
	if err != nil {
		return "", meta, "invalid metadata: " + err.Error()
	}
	return op, meta, ""
}

// filterPath is the filter_path of a bulk request, in the forms the
// stand-in supports: top-level fields, and fields of every item.
type filterPath struct {
	all   bool
	tops  map[string]bool
	items map[string]bool // nil: every field
}

func parseFilterPath(v string) (filterPath, bool) {
	if v == "" {
		return filterPath{all: true}, true
	}
	f := filterPath{tops: map[string]bool{}}
	for _, p := range strings.Split(v, ",") {
		switch {
		case p == "errors" || p == "took":
			f.tops[p] = true
		case p == "items" || p == "items.*" || p == "items.*.*":
			f.tops["items"] = true
			f.items = nil
		case strings.HasPrefix(p, "items.*.") && !strings.ContainsAny(p[len("items.*."):], ".*"):
			if !f.tops["items"] || f.items != nil {
				if f.items == nil {
					f.items = map[string]bool{}
				}
				f.items[p[len("items.*."):]] = true
			}
			f.tops["items"] = true
		default:
			return f, false
		}
	}
	return f, true
}

func (f filterPath) top(name string) bool { return f.all || f.tops[name] }

func (f filterPath) item(name string) bool { return f.all || f.items == nil || f.items[name] }

// itemWriter appends the fields of one item that the filter keeps.
type itemWriter struct {
	b     []byte
	f     filterPath
	first bool
}

func (w *itemWriter) field(name string) bool {
	if !w.f.item(name) {
		return false
	}
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
	return true
}

func appendItemResult(b []byte, f filterPath, op, idx, id string, r itemResult) []byte {
	b = append(b, `{"`...)
	b = append(b, op...)
	b = append(b, `":{`...)
	w := itemWriter{b: b, f: f, first: true}
	if w.field("_index") {
		w.b = strconv.AppendQuote(w.b, idx)
	}
	if w.field("_id") {
		w.b = strconv.AppendQuote(w.b, id)
	}
	if w.field("_version") {
		w.b = strconv.AppendInt(w.b, int64(r.version), 10)
	}
	if w.field("result") {
		w.b = strconv.AppendQuote(w.b, r.result)
	}
	if w.field("_shards") {
		w.b = append(w.b, `{"total":2,"successful":1,"failed":0}`...)
	}
	if w.field("_seq_no") {
		w.b = strconv.AppendInt(w.b, r.seqNo, 10)
	}
	if w.field("_primary_term") {
		w.b = append(w.b, '1')
	}
	if w.field("status") {
		w.b = strconv.AppendInt(w.b, int64(r.status), 10)
	}
	return append(w.b, `}}`...)
}

func appendItemError(b []byte, f filterPath, op, idx, id string, e *ItemError) []byte {
	b = append(b, `{"`...)
	b = append(b, op...)
	b = append(b, `":{`...)
	w := itemWriter{b: b, f: f, first: true}
	if w.field("_index") {
		w.b = strconv.AppendQuote(w.b, idx)
	}
	if w.field("_id") {
		w.b = strconv.AppendQuote(w.b, id)
	}
	if w.field("status") {
		w.b = strconv.AppendInt(w.b, int64(e.Status), 10)
	}
	if w.field("error") {
		w.b = appendError(w.b, e)
	}
	return append(w.b, `}}`...)
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
