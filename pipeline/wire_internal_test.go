package pipeline

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// countValues returns the number of JSON values the valid document data
// holds on the wire, as MaxInputValues counts them: the document, and
// every array element and object member value (duplicate keys included),
// at any depth. It reads the tokens of encoding/json.
func countValues(t *testing.T, data []byte) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	var objects []bool // per open container: an object?
	wantKey := false   // the next token of the object is a key
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("input %q is not valid JSON: %v", data, err)
		}
		if wantKey {
			wantKey = false
			if _, ok := tok.(string); ok {
				continue // a key, not a value
			}
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			n++
			objects = append(objects, tok == json.Delim('{'))
		case json.Delim(']'), json.Delim('}'):
			objects = objects[:len(objects)-1]
		default:
			n++
		}
		wantKey = len(objects) > 0 && objects[len(objects)-1]
	}
}

// FuzzDecodeCall checks that decodeCall never panics, accepts only one
// valid JSON document, gives back what it decoded after a round trip, and
// that tooManyValues counts the values of every input it accepts as
// encoding/json does.
func FuzzDecodeCall(f *testing.F) {
	for _, seed := range []string{
		`{"event":"echo","input":7}`,
		`{"event":"echo","task_id":"r/echo/1","call_id":"r/echo/1/call-1","run_id":"r","attempt":2,"input":{"a":[1,"x",null,true,{}]}}`,
		`{"event":"echo","input":["[,{,\",]",1,"\\\\",{"k":"}"}]}`,
		`{"event":"e","input":[[],{},[[]]]} `,
		`{"event":"e"}{"event":"e"}`,
		`{"event":"e"} x`,
		`{"event":1}`,
		`{"attempt":1e100}`,
		`{"event":"\ud800","input":"\xff"}`,
		`null`,
		`[]`,
		`{"event":"e","input":`,
		`{"event":"e","input":{"a":1,"a":2}}`,
		`{"EVENT":"e","Input":[1]}`,
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		call, err := decodeCall(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted %q, which is not one valid JSON document", data)
		}
		b, err := json.Marshal(call)
		if err != nil {
			t.Fatalf("cannot encode %+v: %v", call, err)
		}
		back, err := decodeCall(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("cannot decode %s, the encoding of %+v: %v", b, call, err)
		}
		if len(call.Input) > 0 {
			var compact bytes.Buffer
			if err := json.Compact(&compact, call.Input); err != nil {
				t.Fatalf("input %q is not valid JSON: %v", call.Input, err)
			}
			call.Input = compact.Bytes()
		}
		if !reflect.DeepEqual(back, call) {
			t.Fatalf("round trip: got %+v, want %+v", back, call)
		}
		if len(call.Input) == 0 {
			return
		}
		n := countValues(t, call.Input)
		for _, limit := range []int{1, n - 1, n, n + 1} {
			if limit < 1 {
				continue
			}
			if got, want := tooManyValues(call.Input, limit), n > limit; got != want {
				t.Errorf("tooManyValues(%q, %d) = %v, want %v (%d values)", call.Input, limit, got, want, n)
			}
		}
	})
}

func TestDecodeCallRefusesDataAfterTheDocument(t *testing.T) {
	for _, body := range []string{`{"event":"e"}{}`, `{"event":"e"} 1`, `{"event":"e"}]`} {
		if _, err := decodeCall(strings.NewReader(body)); err == nil {
			t.Errorf("decodeCall(%q): got nil, want an error", body)
		}
	}
}
