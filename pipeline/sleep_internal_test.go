package pipeline

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// The waits between attempts go through p.sleep: with a fake one, hours of
// backoff take no time, and the exact durations are checked.
func TestRetryWaitsWithFakeClock(t *testing.T) {
	var slept []time.Duration
	attempts := 0
	ev := Func("e", func(context.Context, any) (any, error) {
		attempts++
		return nil, errors.New("down")
	})
	p, err := New(Config{NoTelemetry: true, Retry: RetryPolicy{MaxAttempts: 5, BackoffFactor: time.Hour, MaxBackoff: 5 * time.Hour}}, Sequence(ev))
	if err != nil {
		t.Fatal(err)
	}
	p.sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}
	if _, err := p.Run(context.Background(), nil); err == nil {
		t.Fatal("got no error")
	}
	want := []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 5 * time.Hour}
	if attempts != 5 || !slices.Equal(slept, want) {
		t.Errorf("got %d attempts and waits %v, want 5 and %v", attempts, slept, want)
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := sleep(ctx, time.Millisecond); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	cancel()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled at once", err)
	}
	if err := sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v for a zero wait in an ended context, want context.Canceled", err)
	}
}
