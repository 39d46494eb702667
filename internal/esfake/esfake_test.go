package esfake

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
)

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, s *Server, method, path, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

const ndjson = "application/x-ndjson"

func TestInfo(t *testing.T) {
	s := newTestServer(t, Options{})
	code, h, body := do(t, s, "GET", "/", "", "")
	if code != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("GET /: got %d, product %q", code, h.Get("X-Elastic-Product"))
	}
	var info struct {
		Version struct{ Number string } `json:"version"`
		Tagline string                  `json:"tagline"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil || !strings.HasPrefix(info.Version.Number, "8.") {
		t.Errorf("GET /: got %s, want an 8.x version", body)
	}
}

func TestBulkValidation(t *testing.T) {
	const action = `{"index":{"_index":"i","_id":"1"}}` + "\n"
	const doc = `{"a":1}` + "\n"
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantInBody  string
		violation   bool
	}{
		{"valid", ndjson, action + doc, 200, `"result":"created","_shards"`, false},
		{"vendored compat 8", "application/vnd.elasticsearch+x-ndjson; compatible-with=8", action + doc, 200, `"errors":false`, false},
		{"compat 9 refused", "application/vnd.elasticsearch+x-ndjson; compatible-with=9", action + doc, 400, "media_type_header_exception", true},
		{"text/plain refused", "text/plain", action + doc, 406, "is not supported", true},
		{"no trailing newline", ndjson, action + strings.TrimSuffix(doc, "\n"), 400, "must be terminated by a newline", true},
		{"missing source", ndjson, action, 400, "has no source line", true},
		{"unknown action", ndjson, `{"upsert":{"_index":"i"}}` + "\n" + doc, 400, "expected field [create]", true},
		{"two actions", ndjson, `{"index":{"_index":"i"},"create":{"_index":"i"}}` + "\n" + doc, 400, "single action", true},
		{"unknown parameter", ndjson, `{"index":{"_index":"i","colour":"red"}}` + "\n" + doc, 400, "unknown parameter [colour]", true},
		{"no index", ndjson, `{"index":{}}` + "\n" + doc, 400, "index is missing", true},
		{"empty line", ndjson, action + doc + "\n" + action + doc, 400, "empty line", true},
		{"bad action JSON", ndjson, `{"index":` + "\n" + doc, 400, "Malformed action/metadata line [1]", true},
		{"bad source JSON is an item error", ndjson, action + `{"a":}` + "\n", 200, "document_parsing_exception", false},
		{"source not an object", ndjson, action + `[1]` + "\n", 200, "document_parsing_exception", false},
		{"invalid index name", ndjson, `{"index":{"_index":"Upper"}}` + "\n" + doc, 200, "invalid_index_name_exception", false},
		{"empty body", ndjson, "", 400, "request body is required", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			code, h, body := do(t, s, "POST", "/_bulk", tc.contentType, tc.body)
			if code != tc.wantStatus || !strings.Contains(body, tc.wantInBody) {
				t.Errorf("got %d %s, want %d with %q", code, body, tc.wantStatus, tc.wantInBody)
			}
			if h.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Error("response without X-Elastic-Product")
			}
			if got := len(s.Violations()) > 0; got != tc.violation {
				t.Errorf("violation recorded: got %v (%q), want %v", got, s.Violations(), tc.violation)
			}
		})
	}
}

func TestTemplateValidationAndMappingCheck(t *testing.T) {
	s := newTestServer(t, Options{})
	tests := []struct {
		name, body string
		wantStatus int
		wantInBody string
	}{
		{"unknown field", `{"index_patterns":["m-*"],"colour":1}`, 400, "unknown field [colour]"},
		{"no patterns", `{"template":{}}`, 400, "index patterns are missing"},
		{"unknown type", `{"index_patterns":["m-*"],"template":{"mappings":{"properties":{"a":{"type":"strng"}}}}}`, 400, "No handler for type [strng]"},
		{"unknown parameter", `{"index_patterns":["m-*"],"template":{"mappings":{"properties":{"a":{"type":"long","ignore_above":3}}}}}`, 400, "unknown parameter [ignore_above]"},
		{"valid", `{"index_patterns":["m-*"],"priority":5,"template":{"mappings":{"properties":{"n":{"type":"long"},"t":{"type":"date_nanos"},"e":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}}}}}}`, 200, "acknowledged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, s, "PUT", "/_index_template/m", "application/json", tc.body)
			if code != tc.wantStatus || !strings.Contains(body, tc.wantInBody) {
				t.Errorf("got %d %s, want %d with %q", code, body, tc.wantStatus, tc.wantInBody)
			}
		})
	}
	// Documents are checked against the template's mappings.
	bulk := `{"index":{"_index":"m-1","_id":"a"}}` + "\n" + `{"n":12,"t":"2026-01-01T00:00:00.123456789Z","e":"x"}` + "\n" +
		`{"index":{"_index":"m-1","_id":"b"}}` + "\n" + `{"n":"twelve"}` + "\n" +
		`{"index":{"_index":"m-1","_id":"c"}}` + "\n" + `{"t":"yesterday"}` + "\n"
	_, _, body := do(t, s, "POST", "/_bulk", ndjson, bulk)
	var res struct {
		Errors bool
		Items  []map[string]struct {
			Status int
			Error  struct{ Type string }
		}
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	want := []int{201, 400, 400}
	for i, it := range res.Items {
		if it["index"].Status != want[i] {
			t.Errorf("item %d: status %d, want %d", i, it["index"].Status, want[i])
		}
	}
	if res.Items[1]["index"].Error.Type != "mapper_parsing_exception" {
		t.Errorf("item 1: error %q, want mapper_parsing_exception", res.Items[1]["index"].Error.Type)
	}
	if got := s.Count(); got != 1 {
		t.Errorf("documents stored: got %d, want 1", got)
	}
}

func TestAuthAndDownUp(t *testing.T) {
	s := newTestServer(t, Options{Username: "u", Password: "p"})
	if code, h, _ := do(t, s, "GET", "/", "", ""); code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("GET / without credentials: got %d, want 401 with WWW-Authenticate", code)
	}
	s.Down()
	_, err := http.Get(s.URL + "/")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET / while down: got %v, want connection refused", err)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	req.SetBasicAuth("u", "p")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET / after Up: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET / after Up: got %d, want 200", res.StatusCode)
	}
}

func TestBulkFilterPath(t *testing.T) {
	s := newTestServer(t, Options{})
	body := `{"index":{"_index":"i","_id":"1"}}` + "\n{}\n" + `{"index":{"_index":"Bad","_id":"2"}}` + "\n{}\n"
	code, _, got := do(t, s, "POST", "/_bulk?filter_path=errors,items.*.status,items.*.error", ndjson, body)
	want := `{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"reason":"Invalid index name [Bad], must be lowercase","type":"invalid_index_name_exception"}}}]}`
	if code != 200 || got != want {
		t.Errorf("got %d %s\nwant %s", code, got, want)
	}
	if code, _, _ := do(t, s, "POST", "/_bulk?filter_path=items.**.status", ndjson, body); code != 400 {
		t.Errorf("unsupported filter_path: got %d, want 400", code)
	}
}

func TestFailNext(t *testing.T) {
	s := newTestServer(t, Options{})
	s.FailNext(1, 429, "3")
	code, h, body := do(t, s, "POST", "/_bulk", ndjson, `{"index":{"_index":"i"}}`+"\n{}\n")
	if code != 429 || h.Get("Retry-After") != "3" || !strings.Contains(body, "es_rejected_execution_exception") {
		t.Errorf("got %d %q %s, want 429 with Retry-After 3", code, h.Get("Retry-After"), body)
	}
	if code, _, _ := do(t, s, "POST", "/_bulk", ndjson, `{"index":{"_index":"i"}}`+"\n{}\n"); code != 200 {
		t.Errorf("second request: got %d, want 200", code)
	}
}

func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"x\"y","b":[1,{"c":null}],"d":-1.5e3}`, `{"a":}`, `{"a":1,}`, `[1]`, `{"a":"\u00e9"} `, `{"a":01}`, `{"a":"\x01"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := scanObject(b, func(key, raw []byte) error { return nil })
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(b, &m)
		valid := jerr == nil && m != nil
		if (err == nil) != valid {
			t.Errorf("scanObject(%q): error %v, but encoding/json says valid=%v (%v)", b, err, valid, jerr)
		}
	})
}

// TestRoundTripperInBubble uses the in-memory RoundTripper from a synctest
// bubble, Down and Up included: a bubble whose goroutines waited on the
// network, or which started one that outlives it, would hang or fail.
func TestRoundTripperInBubble(t *testing.T) {
	s := newTestServer(t, Options{})
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{Transport: s.RoundTripper()}
		bulk := func() (*http.Response, error) {
			body := `{"index":{"_index":"i","_id":"1"}}` + "\n{}\n"
			return client.Post("http://ignored.invalid/_bulk", ndjson, strings.NewReader(body))
		}
		res, err := bulk()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("X-Elastic-Product") != "Elasticsearch" || !strings.Contains(string(b), `"errors":false`) {
			t.Errorf("bulk: got %d %q %s, want 200 from Elasticsearch without errors", res.StatusCode, res.Header, b)
		}
		s.Down()
		if _, err := bulk(); !errors.Is(err, errRefused) {
			t.Errorf("bulk while down: got %v, want the refusal", err)
		}
		if err := s.Up(); err != nil {
			t.Fatal(err)
		}
		if res, err := bulk(); err != nil || res.StatusCode != 200 {
			t.Errorf("bulk after Up: got %v, %v; want 200", res, err)
		} else {
			res.Body.Close()
		}
		if got := s.Count(); got != 1 {
			t.Errorf("documents: got %d, want 1", got)
		}
	})
	// The node still serves over the network after an Up in a bubble.
	if code, _, _ := do(t, s, "GET", "/", "", ""); code != 200 {
		t.Errorf("GET / over HTTP: got %d, want 200", code)
	}
}

func TestMaxContentLength(t *testing.T) {
	item := `{"index":{"_index":"i","_id":"a"}}` + "\n{}\n"
	s := newTestServer(t, Options{MaxContentLength: len(item)})
	if code, _, body := do(t, s, "POST", "/_bulk", ndjson, item+item); code != 413 || body != "" {
		t.Errorf("body of %d bytes: got %d %q, want 413 with an empty body", 2*len(item), code, body)
	}
	if n := s.Count(); n != 0 {
		t.Errorf("got %d documents stored after a 413, want 0", n)
	}
	if code, _, body := do(t, s, "POST", "/_bulk", ndjson, item); code != 200 {
		t.Errorf("body of %d bytes, the limit: got %d %s, want 200", len(item), code, body)
	}
}
