package asynq

import (
	"testing"
	"time"

	asynqlib "github.com/hibiken/asynq"
)

// TestReadyAt checks when a task enqueued with options becomes ready: at
// once, or at the start of the second of its ProcessAt or ProcessIn, the
// last of them given winning, nil options skipped.
func TestReadyAt(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 250_000_000, time.UTC)
	at := time.Date(2026, 11, 26, 10, 5, 30, 900_000_000, time.UTC)
	tests := []struct {
		name  string
		opts  []asynqlib.Option
		want  time.Time
		queue string
	}{
		{"no option", nil, now, "default"},
		{"nil option", []asynqlib.Option{nil, asynqlib.Queue("q")}, now, "q"},
		{"ProcessIn", []asynqlib.Option{asynqlib.ProcessIn(10 * time.Second)}, time.Date(2026, 11, 26, 10, 0, 10, 0, time.UTC), "default"},
		{"ProcessAt", []asynqlib.Option{asynqlib.ProcessAt(at)}, time.Date(2026, 11, 26, 10, 5, 30, 0, time.UTC), "default"},
		{"ProcessAt then ProcessIn", []asynqlib.Option{asynqlib.ProcessAt(at), asynqlib.ProcessIn(time.Minute)},
			time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC), "default"},
		{"ProcessIn then ProcessAt", []asynqlib.Option{asynqlib.ProcessIn(time.Minute), asynqlib.ProcessAt(at)},
			time.Date(2026, 11, 26, 10, 5, 30, 0, time.UTC), "default"},
		{"ProcessAt in the past", []asynqlib.Option{asynqlib.ProcessAt(now.Add(-time.Hour))}, now, "default"},
		{"ProcessIn within the second", []asynqlib.Option{asynqlib.ProcessIn(500 * time.Millisecond)}, now, "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := readOptions(tc.opts)
			if got := o.readyAt(now); !got.Equal(tc.want) || o.queueName() != tc.queue {
				t.Errorf("got ready at %v in %q, want %v in %q", got, o.queueName(), tc.want, tc.queue)
			}
		})
	}
}
