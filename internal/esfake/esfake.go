package esfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the Elasticsearch version the stand-in reports by default.
const Version = "8.15.3"

// Options configures a Server. The zero Options serves without
// authentication.
type Options struct {
	// Username and Password, if Username is set, are the basic
	// authentication credentials required of every request.
	Username, Password string
	// APIKey, if set, is an accepted credential: "Authorization: ApiKey <APIKey>".
	APIKey string
	// Version is the version reported by GET /; "" means [Version].
	Version string
	// MaxContentLength, if positive, is the largest request body
	// accepted, as the setting http.max_content_length of Elasticsearch
	// (100mb by default): a longer one is answered 413 Request Entity
	// Too Large with an empty body, and not processed.
	MaxContentLength int
}

// A Doc is one document stored in an index.
type Doc struct {
	Index   string         // index name
	ID      string         // _id
	Version int            // _version: 1, then 2 after being overwritten...
	Source  map[string]any // the source, decoded, with numbers as json.Number
	Raw     []byte         // the source line as sent
}

// An ItemError is the error of one bulk item.
type ItemError struct {
	Status int    // HTTP status of the item, such as 400 or 429
	Type   string // such as "mapper_parsing_exception"
	Reason string
	Cause  *ItemError // caused_by, if any
}

// MappingError returns the error Elasticsearch gives a document whose field
// does not fit its mapping.
func MappingError(field, fieldType, id string, value any) *ItemError {
	return &ItemError{
		Status: 400, Type: "mapper_parsing_exception",
		Reason: fmt.Sprintf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%v'", field, fieldType, id, value),
		Cause:  &ItemError{Type: "illegal_argument_exception", Reason: fmt.Sprintf("failed to parse field [%s]", field)},
	}
}

// Rejected returns the error of a document refused because the node is
// overloaded (429), which clients should retry.
func Rejected() *ItemError {
	return &ItemError{
		Status: 429, Type: "es_rejected_execution_exception",
		Reason: "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=512, max_coordinating_and_primary_bytes=0]",
	}
}

// An ItemFunc decides the fate of one bulk item before it is stored: nil to
// store it, or the error to answer. It is called with the Server's lock
// held: it must not call the Server.
type ItemFunc func(index, id string, source map[string]any) *ItemError

// A Request is a summary of one request the Server answered.
type Request struct {
	Method, Path string
	Status       int
	Header       http.Header
	Items        int // bulk items, for _bulk
}

// Server is the stand-in node. Create one with [New]; it listens on
// 127.0.0.1. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:41234.
	URL string

	opts Options
	addr string
	srv  *http.Server

	listeners chan net.Listener // to serve, one after the other

	mu         sync.Mutex
	closed     bool
	ln         net.Listener
	conns      map[net.Conn]struct{}
	down       bool
	indices    map[string]*index
	templates  map[string]*template
	tmplPuts   int
	requests   []Request
	violations []string
	faults     []fault
	itemFn     ItemFunc
	seqNo      int64
}

type index struct {
	name  string
	order []string
	docs  map[string]*Doc
	props map[string]fieldMapping // from the template applied at creation
}

type template struct {
	name     string
	patterns []string
	priority int
	props    map[string]fieldMapping
	raw      json.RawMessage
}

type fieldMapping struct {
	typ    string
	fields map[string]fieldMapping
}

type fault struct {
	status     int
	retryAfter string
}

// New starts a Server on 127.0.0.1.
func New(opts Options) (*Server, error) {
	if opts.Version == "" {
		opts.Version = Version
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		addr:      ln.Addr().String(),
		ln:        ln,
		conns:     make(map[net.Conn]struct{}),
		indices:   make(map[string]*index),
		templates: make(map[string]*template),
	}
	s.URL = "http://" + s.addr
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.connState,
	}
	s.listeners = make(chan net.Listener, 1)
	s.listeners <- ln
	go s.serve()
	return s, nil
}

// serve serves each listener given, one after the other: the first, then
// the one of each [Server.Up]. Up does not start a goroutine, so that it
// can be called from a testing/synctest bubble.
func (s *Server) serve() {
	for ln := range s.listeners {
		_ = s.srv.Serve(ln)
	}
}

// RoundTripper returns an [http.RoundTripper] that has s answer each
// request in the calling goroutine, without the network, as it would over
// HTTP (the URL's host is ignored). A test can then run a client of s in a
// testing/synctest bubble, where waits on real connections do not let the
// fake clock advance. While s is [Server.Down], it fails every request as
// a refused connection would.
func (s *Server) RoundTripper() http.RoundTripper { return roundTripper{s} }

type roundTripper struct{ s *Server }

// errRefused is the error of requests through the RoundTripper while the
// node is down.
var errRefused = errors.New("esfake: connection refused: the node is down")

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	rt.s.mu.Lock()
	down := rt.s.down
	rt.s.mu.Unlock()
	if down {
		return nil, errRefused
	}
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	in := r.Clone(r.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	} else {
		in.Body = r.Body
	}
	w := httptest.NewRecorder()
	rt.s.serveHTTP(w, in)
	res := w.Result()
	res.Request = r
	return res, nil
}

// Addr returns the host:port the Server listens on, without a scheme.
func (s *Server) Addr() string { return s.addr }

// Close stops the Server and closes its connections.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	_ = s.srv.Close()
	close(s.listeners)
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		if s.down {
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Down makes the node unreachable: it stops listening, so connections are
// refused, and closes the open ones.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return
	}
	s.down = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
}

// Up makes the node reachable again, on the same address.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return nil
	}
	var (
		ln  net.Listener
		err error
	)
	for range 50 { // the port can take a moment to be free again
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	if s.closed {
		ln.Close()
		return errors.New("esfake: Up after Close")
	}
	s.ln, s.down = ln, false
	s.listeners <- ln // the previous Serve returned when Down closed its listener
	return nil
}

// FailNext makes the next n requests (other than GET /) fail as a whole
// with status, such as 503 or 429, with a Retry-After header if retryAfter
// is not empty.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter})
	}
}

// SetItemFunc sets the function that decides the fate of each bulk item;
// nil stores every valid item.
func (s *Server) SetItemFunc(f ItemFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.itemFn = f
}

// Docs returns the documents of an index, in the order they were first
// indexed.
func (s *Server) Docs(name string) []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[name]
	if ix == nil {
		return nil
	}
	out := make([]Doc, 0, len(ix.order))
	for _, id := range ix.order {
		d := *ix.docs[id]
		d.Source, _ = decodeObject(d.Raw) // validated when indexed
		out = append(out, d)
	}
	return out
}

// AllDocs returns the documents of every index, by index name then order.
func (s *Server) AllDocs() []Doc {
	var out []Doc
	for _, name := range s.Indices() {
		out = append(out, s.Docs(name)...)
	}
	return out
}

// Count returns the number of documents in all indices.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ix := range s.indices {
		n += len(ix.order)
	}
	return n
}

// Indices returns the names of the indices, sorted.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.indices))
	for n := range s.indices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Template returns the body of the index template name, as last put.
func (s *Server) Template(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates[name]
	if !ok {
		return nil, false
	}
	return t.raw, true
}

// TemplatePuts returns the number of successful PUT _index_template calls.
func (s *Server) TemplatePuts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tmplPuts
}

// Requests returns a summary of every request answered, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// BulkRequests returns the number of _bulk requests answered, failed ones
// included.
func (s *Server) BulkRequests() int {
	n := 0
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/_bulk") {
			n++
		}
	}
	return n
}

// Violations returns the protocol violations seen: requests that a real
// node would reject as malformed.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Reset forgets the indices, templates, requests and violations.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indices = make(map[string]*index)
	s.templates = make(map[string]*template)
	s.tmplPuts = 0
	s.requests, s.violations, s.faults = nil, nil, nil
}

// response is what a handler answers.
type response struct {
	status int
	header http.Header
	body   []byte
	items  int
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return response{status: status, body: b}
}

// errorResponse is the error body of Elasticsearch.
func errorResponse(status int, typ, reason string) response {
	cause := map[string]any{"type": typ, "reason": reason}
	return jsonResponse(status, map[string]any{
		"error":  map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason},
		"status": status,
	})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength < 1<<30 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return // the connection broke
	}
	body := buf.Bytes()
	s.mu.Lock()
	res := s.handle(r, body)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Status: res.status, Header: r.Header.Clone(), Items: res.items})
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-Elastic-Product", "Elasticsearch")
	if strings.Contains(r.Header.Get("Accept"), "compatible-with=8") {
		h.Set("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
	} else {
		h.Set("Content-Type", "application/json")
	}
	for k, v := range res.header {
		h[k] = v
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(res.status)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(res.body)))
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

func (s *Server) violation(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// handle answers r. It runs with s.mu held.
func (s *Server) handle(r *http.Request, body []byte) response {
	path := r.URL.Path
	if s.opts.MaxContentLength > 0 && len(body) > s.opts.MaxContentLength {
		return response{status: http.StatusRequestEntityTooLarge}
	}
	if res, ok := s.authenticate(r); !ok {
		return res
	}
	if !(r.Method == http.MethodGet && path == "/") && len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		res := errorResponse(f.status, faultType(f.status), "injected fault")
		if f.retryAfter != "" {
			res.header = http.Header{"Retry-After": {f.retryAfter}}
		}
		return res
	}
	if res, ok := s.checkContentType(r, body); !ok {
		return res
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return s.noHandler(r)
		}
		return s.info()
	case len(parts) == 1 && parts[0] == "_bulk", len(parts) == 2 && parts[1] == "_bulk":
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			return s.noHandler(r)
		}
		defIndex := ""
		if len(parts) == 2 {
			defIndex = parts[0]
		}
		return s.bulk(r, defIndex, body)
	case len(parts) == 2 && parts[0] == "_index_template":
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			return s.putTemplate(r, parts[1], body)
		case http.MethodGet:
			return s.getTemplate(parts[1])
		case http.MethodDelete:
			return s.deleteTemplate(parts[1])
		}
		return s.noHandler(r)
	case len(parts) == 2 && parts[1] == "_search" && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		return s.search(r, parts[0], body)
	case len(parts) == 1 && parts[0] != "" && !strings.HasPrefix(parts[0], "_") && r.Method == http.MethodDelete:
		return s.deleteIndices(parts[0])
	case len(parts) == 2 && parts[1] == "_refresh" && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		return jsonResponse(200, map[string]any{"_shards": map[string]int{"total": 2, "successful": 1, "failed": 0}})
	}
	return s.noHandler(r)
}

func faultType(status int) string {
	switch status {
	case 429:
		return "es_rejected_execution_exception"
	case 503:
		return "cluster_block_exception"
	}
	return "exception"
}

func (s *Server) noHandler(r *http.Request) response {
	msg := fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method)
	s.violation("%s", msg)
	return jsonResponse(400, map[string]any{"error": msg, "status": 400})
}

func (s *Server) authenticate(r *http.Request) (response, bool) {
	if s.opts.Username == "" && s.opts.APIKey == "" {
		return response{}, true
	}
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		return s.unauthorized(r, "missing authentication credentials for REST request ["+r.URL.RequestURI()+"]"), false
	case strings.EqualFold(scheme, "Basic") && s.opts.Username != "":
		raw, err := base64.StdEncoding.DecodeString(cred)
		user, pass, _ := strings.Cut(string(raw), ":")
		if err == nil && user == s.opts.Username && pass == s.opts.Password {
			return response{}, true
		}
		return s.unauthorized(r, "unable to authenticate user ["+user+"] for REST request ["+r.URL.RequestURI()+"]"), false
	case strings.EqualFold(scheme, "ApiKey") && s.opts.APIKey != "":
		if cred == s.opts.APIKey {
			return response{}, true
		}
		return s.unauthorized(r, "unable to authenticate with provided credentials and anonymous access is not allowed for this request"), false
	}
	return s.unauthorized(r, "unable to authenticate with provided credentials for REST request ["+r.URL.RequestURI()+"]"), false
}

func (s *Server) unauthorized(r *http.Request, reason string) response {
	res := errorResponse(401, "security_exception", reason)
	res.header = http.Header{"Www-Authenticate": {`Basic realm="security", charset="UTF-8"`, "ApiKey"}}
	return res
}

// checkContentType checks the Content-Type of a request with a body as
// Elasticsearch 8 does: JSON or NDJSON, or their vendored forms with
// compatible-with=7 or 8.
func (s *Server) checkContentType(r *http.Request, body []byte) (response, bool) {
	if len(body) == 0 {
		return response{}, true
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		s.violation("%s %s: body without Content-Type", r.Method, r.URL.Path)
		return jsonResponse(406, map[string]any{"error": "Content-Type header is missing", "status": 406}), false
	}
	media, params, _ := strings.Cut(ct, ";")
	media = strings.ToLower(strings.TrimSpace(media))
	switch media {
	case "application/json", "application/x-ndjson":
		return response{}, true
	case "application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson":
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "compatible-with") && (v == "7" || v == "8") {
				return response{}, true
			}
		}
		s.violation("%s %s: Content-Type %q: unsupported compatible-with version", r.Method, r.URL.Path, ct)
		return errorResponse(400, "media_type_header_exception", "Invalid media-type value on headers [Content-Type]"), false
	}
	s.violation("%s %s: Content-Type %q is not supported", r.Method, r.URL.Path, ct)
	return jsonResponse(406, map[string]any{"error": "Content-Type header [" + ct + "] is not supported", "status": 406}), false
}

func (s *Server) info() response {
	return jsonResponse(200, map[string]any{
		"name":         "esfake",
		"cluster_name": "esfake",
		"cluster_uuid": "esfake-cluster-uuid-000000",
		"version": map[string]any{
			"number":                              s.opts.Version,
			"build_flavor":                        "default",
			"build_type":                          "docker",
			"build_hash":                          "0000000000000000000000000000000000000000",
			"build_date":                          "2024-10-01T00:00:00.000000000Z",
			"build_snapshot":                      false,
			"lucene_version":                      "9.11.1",
			"minimum_wire_compatibility_version":  "7.17.0",
			"minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	})
}

// checkParams rejects query parameters the endpoint does not know, as
// Elasticsearch does.
func (s *Server) checkParams(r *http.Request, allowed ...string) (response, bool) {
	common := []string{"pretty", "human", "error_trace", "filter_path", "format"}
	for k := range r.URL.Query() {
		ok := false
		for _, a := range append(common, allowed...) {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			s.violation("%s %s: unrecognized parameter %q", r.Method, r.URL.Path, k)
			return errorResponse(400, "illegal_argument_exception",
				fmt.Sprintf("request [%s] contains unrecognized parameter: [%s]", r.URL.Path, k)), false
		}
	}
	return response{}, true
}

// validIndexName reports why name is not a valid index name, or "".
func validIndexName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case name == "." || name == "..":
		return "must not be '.' or '..'"
	case strings.ToLower(name) != name:
		return "must be lowercase"
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "+"):
		return "must not start with '_', '-', or '+'"
	case len(name) > 255:
		return "index name is too long"
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`
	}
	return ""
}

// matchPattern reports whether name matches an index pattern with '*'
// wildcards.
func matchPattern(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for i, p := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(name, p)
		}
		j := strings.Index(name, p)
		if j < 0 {
			return false
		}
		name = name[j+len(p):]
	}
	return true
}

// errBadJSON marks a body that is not the JSON expected.
var errBadJSON = errors.New("esfake: invalid JSON")

// decodeObject decodes a JSON object, keeping numbers as json.Number.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadJSON, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: not an object", errBadJSON)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the object", errBadJSON)
	}
	return m, nil
}
