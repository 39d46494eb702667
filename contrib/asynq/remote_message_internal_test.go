package asynq

import (
	"errors"
	"testing"

	asynqlib "github.com/hibiken/asynq"
)

// TestRemoteErrorMessage checks the Message of the RemoteError of a
// finished task: the worker's error text on one line, trimmed, escaped,
// and never empty, so that the error always says why.
func TestRemoteErrorMessage(t *testing.T) {
	e := &RemoteEvent{name: "score", queue: "default", maxResult: 1 << 20}
	for _, tc := range []struct {
		name    string
		info    asynqlib.TaskInfo
		message string
	}{
		{"worker's error", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, Result: []byte(`{"error":"model not loaded"}`)}, "model not loaded"},
		{"controls escaped", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, Result: []byte(`{"error":"a\nb\u001b[2J"}`)}, `a\nb\x1b[2J`},
		{"trimmed", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, Result: []byte(`{"error":"  exit status 1\n"}`)}, "exit status 1"},
		{"asynq's error", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, Result: []byte(`{}`), LastErr: "lease expired\n"}, "lease expired"},
		{"no result, asynq's error", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, LastErr: "handler not found\r\n"}, "handler not found"},
		{"blank error", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, Result: []byte(`{"error":" \n"}`), LastErr: "timed out"}, "timed out"},
		{"no error at all", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, Result: []byte(`{}`)}, "the task failed without an error text"},
		{"no result, no error", asynqlib.TaskInfo{State: asynqlib.TaskStateArchived, LastErr: "\n"}, "the task failed without a result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.decode("id1", &tc.info)
			var re *RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a *RemoteError", err)
			}
			if re.Message != tc.message {
				t.Errorf("Message = %q, want %q", re.Message, tc.message)
			}
		})
	}
}
