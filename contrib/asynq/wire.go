package asynq

import "encoding/json"

// The JSON documents a [RemoteEvent] and a [Worker] exchange through
// Redis: the same as those of the pipeline package's HTTP remote events.

// callRequest is the payload of a remote event's task.
type callRequest struct {
	Event   string          `json:"event"`
	TaskID  string          `json:"task_id,omitempty"`
	RunID   string          `json:"run_id,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Input   json.RawMessage `json:"input,omitempty"`
}

// callResult is the result a Worker writes for a task: the output when
// the event succeeded, else the error's text, and whether the error is
// permanent (marked with telemetry.Permanent, or a panic), which the
// caller does not retry.
type callResult struct {
	Output    json.RawMessage `json:"output,omitempty"`
	Error     string          `json:"error,omitempty"`
	Permanent bool            `json:"permanent,omitempty"`
}
