package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the options of [NewRecorder].
const (
	DefaultMaxEvents      = 100_000          // finished event runs retained
	DefaultMaxNetworkOps  = 100_000          // finished network operations retained
	DefaultMaxPending     = 100_000          // pending runs of each kind
	DefaultQueueSize      = 8192             // records of each kind buffered per publisher
	DefaultMaxBatchSize   = 512              // records per batch for a BatchPublisher
	DefaultBatchTimeout   = time.Second      // longest a record waits for its batch to fill
	DefaultPublishTimeout = 10 * time.Second // limit of one publish attempt
	DefaultMaxErrorLength = 1024             // bytes of an error text kept in a record
)

// DefaultSlowThreshold is a threshold for [Recorder.SlowEvents] and
// [Network.SlowOperations] for callers that have none of their own.
const DefaultSlowThreshold = time.Second

// An Option configures a Recorder. Options are made by the With functions of
// this package.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxEvents      int
	maxNetworkOps  int
	maxPending     int
	queueSize      int
	maxBatchSize   int
	batchTimeout   time.Duration
	publishTimeout time.Duration
	maxErrorLength int
	retry          RetryPolicy
	jitter         func(time.Duration) time.Duration // nil: random; set by tests
	logger         *slog.Logger
	publishers     []Publisher
	errs           []error
}

func newConfig(opts []Option) (config, error) {
	c := config{
		maxEvents:      DefaultMaxEvents,
		maxNetworkOps:  DefaultMaxNetworkOps,
		maxPending:     DefaultMaxPending,
		queueSize:      DefaultQueueSize,
		maxBatchSize:   DefaultMaxBatchSize,
		batchTimeout:   DefaultBatchTimeout,
		publishTimeout: DefaultPublishTimeout,
		maxErrorLength: DefaultMaxErrorLength,
		retry:          DefaultRetryPolicy,
	}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, errors.New("telemetry: nil Option"))
			continue
		}
		o.apply(&c)
	}
	if _, err := flatten(c.publishers); err != nil {
		c.errs = append(c.errs, callError("with publishers", err))
	}
	return c, errors.Join(c.errs...)
}

// positive is the check of the options that take a count or a duration.
func positive[T int | time.Duration](c *config, name string, v T, dst *T) {
	if v <= 0 {
		c.errs = append(c.errs, fmt.Errorf("telemetry: %s must be positive, got %v", name, v))
		return
	}
	*dst = v
}

// WithMaxEvents sets how many finished event runs are retained for queries
// and the report (default [DefaultMaxEvents]). When full, the oldest is
// evicted for each new one and counted in [Stats]. n must be positive.
func WithMaxEvents(n int) Option {
	return optionFunc(func(c *config) { positive(c, "max events", n, &c.maxEvents) })
}

// WithMaxNetworkOps sets how many finished network operations are retained
// (default [DefaultMaxNetworkOps]). n must be positive.
func WithMaxNetworkOps(n int) Option {
	return optionFunc(func(c *config) { positive(c, "max network operations", n, &c.maxNetworkOps) })
}

// WithMaxPending sets how many runs of each kind may be pending at once
// (default [DefaultMaxPending]); starting one more returns
// [ErrTooManyPending]. n must be positive. A Recorder that retains 4,096
// or more records of a kind splits its runs into up to 16 shards by task
// id, to record from many goroutines at once; each shard then accepts
// n/shards pending runs (rounded up), so the limit holds for the total but
// one shard may refuse a start a little before it is reached.
func WithMaxPending(n int) Option {
	return optionFunc(func(c *config) { positive(c, "max pending", n, &c.maxPending) })
}

// WithQueueSize sets how many records of each kind (events, network
// operations) are buffered for each publisher (default [DefaultQueueSize]).
// A record that finds the buffer full is dropped and counted in
// [PublisherStats.DroppedQueueFull]. n must be positive. The buffer is
// split evenly between the shards of the Recorder (see [WithMaxPending]),
// each holding n/shards records (rounded up), so a burst of records whose
// task ids fall in one shard can find its part full a little before the
// whole buffer is. When n is not a multiple of the number of shards the
// buffer holds a little more than n, up to shards-1 more (with 16
// shards, 112 records for 100, 16 for 8);
// [PublisherStats.QueueCapacity] reports the exact number.
func WithQueueSize(n int) Option {
	return optionFunc(func(c *config) { positive(c, "queue size", n, &c.queueSize) })
}

// WithMaxBatchSize sets the largest batch handed to a [BatchPublisher]
// (default [DefaultMaxBatchSize]). n must be positive.
func WithMaxBatchSize(n int) Option {
	return optionFunc(func(c *config) { positive(c, "max batch size", n, &c.maxBatchSize) })
}

// WithBatchTimeout sets how long a record may wait for its batch to fill
// before the batch is sent anyway (default [DefaultBatchTimeout]). d must be
// positive.
func WithBatchTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { positive(c, "batch timeout", d, &c.batchTimeout) })
}

// WithPublishTimeout sets the limit of one publish attempt (default
// [DefaultPublishTimeout]); an attempt that runs over counts as a failed
// attempt and is retried. For a publisher that takes one record per call,
// the first attempts for records taken from its buffer together share one
// such limit; each retry has its own. d must be positive.
func WithPublishTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { positive(c, "publish timeout", d, &c.publishTimeout) })
}

// WithMaxErrorLength sets the longest error text, in bytes, that a record
// keeps (default [DefaultMaxErrorLength]). [Recorder.EndEvent] and
// [Network.EndOperation] cut a longer text at a UTF-8 character boundary
// and end it with a marker that gives the original length, such as
// "… [truncated, 1048576 bytes]"; the marker counts in the n bytes. Texts
// that fit are kept as they are, at no cost. n must be positive.
func WithMaxErrorLength(n int) Option {
	return optionFunc(func(c *config) { positive(c, "max error length", n, &c.maxErrorLength) })
}

// WithRetry sets how failed publish attempts are retried (default
// [DefaultRetryPolicy]). Zero fields of p take their defaults.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(c *config) {
		if err := p.Validate(); err != nil {
			c.errs = append(c.errs, err)
			return
		}
		c.retry = p
	})
}

// WithLogger sets the logger of delivery problems (publishers dropping
// records, giving up, panicking), all at level Warn. nil, the default, means
// [slog.Default] at the time of logging. Recording logs a publisher's
// full buffer at its first drop and then, while drops go on, at most once
// per 10 seconds with their number, each time on a goroutine of its own,
// so that a log handler that blocks never holds recording up; give-ups are
// logged at most once per 10 seconds per publisher; and [Recorder.Close]
// logs one line per
// publisher that dropped records, with their number by reason. The exact
// counts are in [PublisherStats]. Publisher names and error texts in these
// lines are bounded in length.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithPublishers attaches publishers at creation, as [Recorder.AddPublisher]
// does later, and refuses what it refuses: [NewRecorder] returns an error
// wrapping [ErrNilPublisher] for a nil one and [ErrDuplicatePublisher] for
// one given twice, in one WithPublishers or in several.
func WithPublishers(pubs ...Publisher) Option {
	return optionFunc(func(c *config) { c.publishers = append(c.publishers, pubs...) })
}
