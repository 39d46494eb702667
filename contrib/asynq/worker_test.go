package asynq_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestWorkerProcessTask calls ProcessTask directly, as asynq's server
// does (without a server, so that no result is written), with tasks that
// the Worker must refuse, and checks the error and whether asynq would
// retry the task.
func TestWorkerProcessTask(t *testing.T) {
	boom := errors.New("boom")
	w, err := epasynq.NewWorker(epasynq.WorkerConfig{MaxPayloadBytes: 64},
		pipeline.Func("double", func(_ context.Context, in any) (any, error) { return in.(float64) * 2, nil }),
		pipeline.Func("refuse", func(context.Context, any) (any, error) { return nil, telemetry.Permanent(boom) }),
		pipeline.Func("flaky", func(context.Context, any) (any, error) { return nil, boom }),
		pipeline.Func("chan", func(context.Context, any) (any, error) { return make(chan int), nil }),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(slices.Values(w.TaskTypes())),
		[]string{"eventpipeline:chan", "eventpipeline:double", "eventpipeline:flaky", "eventpipeline:refuse"}; !slices.Equal(got, want) {
		t.Errorf("TaskTypes: got %q, want %q", got, want)
	}
	tests := []struct {
		name     string
		typ      string
		payload  string
		want     string // substring of the error; empty for success
		retrying bool   // asynq retries the task (not SkipRetry)
	}{
		{name: "success", typ: "eventpipeline:double", payload: `{"event":"double","input":2}`},
		{name: "not one of ours", typ: "email:send", payload: `{}`, want: `no event for task type "email:send"`},
		{name: "unknown event", typ: "eventpipeline:triple", payload: `{"event":"triple"}`, want: `no event for task type "eventpipeline:triple"`},
		{name: "payload too large", typ: "eventpipeline:double", payload: `{"event":"double","input":"` + strings.Repeat("x", 64) + `"}`,
			want: "payload of 93 bytes, larger than 64"},
		{name: "data after the document", typ: "eventpipeline:double", payload: `{"event":"double","input":2} {}`,
			want: "bad payload: data after the document"},
		{name: "another event named", typ: "eventpipeline:double", payload: `{"event":"refuse","input":2}`,
			want: `bad payload: the payload names the event "refuse", the task type "eventpipeline:double"`},
		{name: "permanent failure", typ: "eventpipeline:refuse", payload: `{"event":"refuse"}`, want: "boom"},
		{name: "transient failure", typ: "eventpipeline:flaky", payload: `{"event":"flaky"}`, want: "boom", retrying: true},
		{name: "output that cannot be encoded", typ: "eventpipeline:chan", payload: `{"event":"chan"}`,
			want: `event "chan": cannot encode output`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := w.ProcessTask(context.Background(), asynq.NewTask(tc.typ, []byte(tc.payload)))
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if skip := errors.Is(err, asynq.SkipRetry); skip == tc.retrying {
				t.Errorf("errors.Is(err, asynq.SkipRetry) = %v, want %v", skip, !tc.retrying)
			}
		})
	}
}
