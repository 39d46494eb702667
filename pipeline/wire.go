package pipeline

import (
	"encoding/json"
	"errors"
	"io"
)

// The JSON documents a [RemoteEvent] and a [Worker] exchange.

// DefaultPath is the path a RemoteEvent posts to when its Path is empty.
const DefaultPath = "/events"

// callRequest is the body of a POST to a worker.
type callRequest struct {
	Event   string          `json:"event"`
	TaskID  string          `json:"task_id,omitempty"`
	CallID  string          `json:"call_id,omitempty"` // the caller's network operation; the worker's task id
	RunID   string          `json:"run_id,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Input   json.RawMessage `json:"input,omitempty"`
}

// callResponse is the body of a worker's answer: the output with status
// 200, else the error.
type callResponse struct {
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// decodeCall decodes the body of a request to a worker: one JSON document,
// the whole body. Its errors are those of encoding/json (and of r, such as
// an *http.MaxBytesError), or one saying that data follows the document.
func decodeCall(r io.Reader) (callRequest, error) {
	var call callRequest
	dec := json.NewDecoder(r)
	err := dec.Decode(&call)
	if err == nil { // the document must be the whole body
		if err = dec.Decode(&struct{}{}); err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("data after the document")
		}
	}
	return call, err
}
