package esfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// searchRequest is the subset of the search API the stand-in answers:
// match_all, term, and bool filters of terms.
type searchRequest struct {
	Size  *int            `json:"size"`
	Query json.RawMessage `json:"query"`
}

// matchingIndices returns the indices named by a comma-separated list of
// names and patterns.
func (s *Server) matchingIndices(expr string) []*index {
	var out []*index
	for _, ix := range s.indices {
		for _, p := range strings.Split(expr, ",") {
			if p == "_all" || matchPattern(p, ix.name) {
				out = append(out, ix)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (s *Server) search(r *http.Request, expr string, body []byte) response {
	if res, ok := s.checkParams(r, "size", "q", "from", "track_total_hits", "rest_total_hits_as_int", "ignore_unavailable", "allow_no_indices"); !ok {
		return res
	}
	var req searchRequest
	if len(body) > 0 {
		d := json.NewDecoder(strings.NewReader(string(body)))
		d.DisallowUnknownFields()
		if err := d.Decode(&req); err != nil {
			s.violation("_search: %v", err)
			return errorResponse(400, "parsing_exception", err.Error())
		}
	}
	size := 10
	if req.Size != nil {
		size = *req.Size
	}
	if v := r.URL.Query().Get("size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	match, err := compileQuery(req.Query)
	if err != nil {
		s.violation("_search: %v", err)
		return errorResponse(400, "parsing_exception", err.Error())
	}
	var hits []any
	total := 0
	for _, ix := range s.matchingIndices(expr) {
		for _, id := range ix.order {
			d := ix.docs[id]
			src, _ := decodeObject(d.Raw)
			if !match(src) {
				continue
			}
			total++
			if len(hits) < size {
				hits = append(hits, map[string]any{"_index": ix.name, "_id": id, "_score": 1.0, "_source": json.RawMessage(d.Raw)})
			}
		}
	}
	return jsonResponse(200, map[string]any{
		"took": 1, "timed_out": false,
		"_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": total, "relation": "eq"}, "max_score": 1.0, "hits": hits},
	})
}

// compileQuery returns a predicate for match_all, term and bool.filter.
func compileQuery(q json.RawMessage) (func(map[string]any) bool, error) {
	if len(q) == 0 {
		return func(map[string]any) bool { return true }, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(q, &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf("query must be an object with one clause")
	}
	for kind, body := range m {
		switch kind {
		case "match_all":
			return func(map[string]any) bool { return true }, nil
		case "term":
			var t map[string]json.RawMessage
			if err := json.Unmarshal(body, &t); err != nil || len(t) != 1 {
				return nil, fmt.Errorf("[term] query malformed")
			}
			for field, v := range t {
				var want any
				if err := json.Unmarshal(v, &want); err != nil {
					return nil, err
				}
				if obj, ok := want.(map[string]any); ok {
					want = obj["value"]
				}
				return func(src map[string]any) bool { return fmt.Sprint(src[field]) == fmt.Sprint(want) }, nil
			}
		case "bool":
			var b struct {
				Filter []json.RawMessage `json:"filter"`
				Must   []json.RawMessage `json:"must"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				return nil, err
			}
			var preds []func(map[string]any) bool
			for _, c := range append(b.Filter, b.Must...) {
				p, err := compileQuery(c)
				if err != nil {
					return nil, err
				}
				preds = append(preds, p)
			}
			return func(src map[string]any) bool {
				for _, p := range preds {
					if !p(src) {
						return false
					}
				}
				return true
			}, nil
		}
		return nil, fmt.Errorf("esfake does not support the [%s] query", kind)
	}
	return nil, fmt.Errorf("empty query")
}

// deleteIndices deletes the indices named by expr.
func (s *Server) deleteIndices(expr string) response {
	found := s.matchingIndices(expr)
	if len(found) == 0 && !strings.Contains(expr, "*") {
		return errorResponse(404, "index_not_found_exception", "no such index ["+expr+"]")
	}
	for _, ix := range found {
		delete(s.indices, ix.name)
	}
	return jsonResponse(200, map[string]bool{"acknowledged": true})
}

func (s *Server) deleteTemplate(name string) response {
	if _, ok := s.templates[name]; !ok {
		return errorResponse(404, "resource_not_found_exception", "index_template matching ["+name+"] not found")
	}
	delete(s.templates, name)
	return jsonResponse(200, map[string]bool{"acknowledged": true})
}
