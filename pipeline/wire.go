package pipeline

import "encoding/json"

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
