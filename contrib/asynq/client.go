package asynq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"strconv"
	"time"

	asynqlib "github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/otelspan"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// ErrTaskOptions is returned by [Client.Enqueue] for a task made with
// options (asynq.NewTask(typename, payload, opts...)): the task must be
// copied to carry headers, and asynq does not let the options of a task be
// read, so they would be lost. Pass them to Enqueue instead, where they
// apply the same.
var ErrTaskOptions = errors.New("asynq: the task was made with options, which a copy would lose: pass them to Enqueue instead")

// ErrRedisAddr is returned by [NewClient] and [Remote] for a Redis
// connection option whose address is missing or not host:port.
var ErrRedisAddr = errors.New("asynq: redis address is not host:port")

// A Client enqueues asynq tasks, recording each enqueue as a network
// operation and carrying with the task, in its headers, what the
// [Middleware] of the worker records: the caller's trace context, the time
// the task becomes ready to run, and the run id of the pipeline that
// enqueues it. Make one with [NewClient]; it is safe for concurrent use.
type Client struct {
	failures
	inner     *asynqlib.Client
	rec       *telemetry.Recorder
	prop      propagation.TextMapPropagator // nil: the global one, at each use
	tracer    trace.Tracer                  // nil: no spans
	operation string
	host      string
	port      int
	now       func() time.Time
}

// NewClient returns a Client that enqueues into the Redis server of redis,
// which must be an asynq.RedisClientOpt, asynq.RedisFailoverClientOpt or
// asynq.RedisClusterClientOpt (or a pointer to one), as asynq.ParseRedisURI
// returns; its address, or the first of its addresses, is the host and
// port of the recorded network operations. It returns an error wrapping
// [ErrRedisAddr] for a missing or malformed address, and one for another
// type. Close the Client when done.
func NewClient(redis asynqlib.RedisConnOpt, cfg Config) (*Client, error) {
	host, port, err := redisAddr(redis)
	if err != nil {
		return nil, err
	}
	c := &Client{
		inner:     asynqlib.NewClient(redis),
		rec:       recorderOrDefault(cfg.Recorder),
		prop:      cfg.Propagator,
		tracer:    tracer(cfg.TracerProvider),
		operation: cfg.Operation,
		host:      host,
		port:      port,
		now:       time.Now,
	}
	if c.operation == "" {
		c.operation = DefaultEnqueueOperation
	}
	return c, nil
}

// redisAddr returns the host and port of the connection option r: its
// address, or its first one.
func redisAddr(r asynqlib.RedisConnOpt) (string, int, error) {
	var addr string
	switch o := r.(type) {
	case asynqlib.RedisClientOpt:
		addr = o.Addr
	case *asynqlib.RedisClientOpt:
		addr = o.Addr
	case asynqlib.RedisFailoverClientOpt:
		addr = first(o.SentinelAddrs)
	case *asynqlib.RedisFailoverClientOpt:
		addr = first(o.SentinelAddrs)
	case asynqlib.RedisClusterClientOpt:
		addr = first(o.Addrs)
	case *asynqlib.RedisClusterClientOpt:
		addr = first(o.Addrs)
	default:
		return "", 0, fmt.Errorf("asynq: unsupported redis connection option %T: use asynq.RedisClientOpt, RedisFailoverClientOpt or RedisClusterClientOpt", r)
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%w: %q", ErrRedisAddr, addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %q", ErrRedisAddr, addr)
	}
	return host, port, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Close closes the connection to Redis.
func (c *Client) Close() error { return c.inner.Close() }

// Enqueue enqueues a copy of task with opts, as asynq.Client.EnqueueContext
// does, and returns what it returns. The copy has the task's type,
// payload and headers, and these headers added:
//
//   - the trace context of ctx, injected through [Config.Propagator]; with
//     a [Config.TracerProvider], that of a producer span ("send" and the
//     task type, a child of ctx's span) around the enqueue;
//   - [HeaderEnqueueTime]: when the task becomes ready to run: now, or for
//     a task scheduled with asynq.ProcessAt or asynq.ProcessIn the start
//     of the second of its time (asynq keeps it in whole seconds);
//   - [HeaderPipelineID]: the run id of the pipeline task ctx belongs to
//     (pipeline.TaskFrom), if any.
//
// Unless opts hold an asynq.TaskID, the task gets a random id of 32
// hexadecimal digits. The enqueue is recorded as a network operation with
// the task id, the Redis host and port, [Config.Operation], the bytes of
// the payload and headers as bytes sent, and the error of the enqueue.
//
// A task made with options (asynq.NewTask(typename, payload, opts...))
// cannot be copied without losing them: Enqueue refuses it with
// [ErrTaskOptions] and enqueues nothing. It honours ctx as asynq does.
func (c *Client) Enqueue(ctx context.Context, task *asynqlib.Task, opts ...asynqlib.Option) (*asynqlib.TaskInfo, error) {
	if task == nil {
		return nil, errors.New("asynq: enqueue: nil task")
	}
	if hasOptions(task) {
		return nil, fmt.Errorf("enqueue %q: %w", task.Type(), ErrTaskOptions)
	}
	o := readOptions(opts)
	if o.taskID == "" {
		o.taskID = newTaskID()
		opts = append(opts[:len(opts):len(opts)], asynqlib.TaskID(o.taskID))
	}
	now := c.now()
	headers := maps.Clone(task.Headers())
	if headers == nil {
		headers = make(map[string]string, 5)
	}
	headers[HeaderEnqueueTime] = formatTime(o.readyAt(now))
	if t, ok := pipeline.TaskFrom(ctx); ok && t.RunID != "" {
		headers[HeaderPipelineID] = t.RunID
	}
	var span trace.Span
	var startOpts []telemetry.StartOption
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, "send "+task.Type(),
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				systemAsynq,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("send"),
				semconv.MessagingDestinationName(o.queueName()),
				semconv.MessagingMessageID(o.taskID),
				semconv.MessagingMessageBodySize(len(task.Payload())),
				semconv.ServerAddress(c.host),
				semconv.ServerPort(c.port),
				AttrTaskType.String(task.Type()),
			))
		startOpts = append(startOpts, telemetry.WithSpanContext(spanContext(span.SpanContext())))
	}
	propagator(c.prop).Inject(ctx, propagation.MapCarrier(headers))
	sent := int64(len(task.Payload())) + headerBytes(headers)

	startErr := c.rec.Network().StartOperation(o.taskID, c.host, c.port, c.operation, startOpts...)
	c.check(startErr)
	info, err := c.inner.EnqueueContext(ctx, asynqlib.NewTaskWithHeaders(task.Type(), task.Payload(), headers), opts...)
	if startErr == nil {
		if err != nil {
			sent = 0
		}
		c.check(c.rec.Network().EndOperation(o.taskID, sent, 0, err))
	}
	if span != nil {
		if err != nil {
			otelspan.Fail(span, err, c.rec.ErrorText(err))
		}
		span.End()
	}
	return info, err
}

// taskOptions is the type of asynq.Task's unexported field of options.
var taskOptions = reflect.TypeFor[[]asynqlib.Option]()

// hasOptions reports whether t was made with options. asynq keeps them in
// an unexported field, which reflection can measure but not read; if that
// field is not there (another version of asynq), it reports false, and a
// test of this package fails.
func hasOptions(t *asynqlib.Task) bool {
	f := reflect.ValueOf(t).Elem().FieldByName("opts")
	return f.IsValid() && f.Type() == taskOptions && f.Len() > 0
}

// enqueueOptions are the options of an enqueue that the Client needs to
// know: the last of each kind wins, as in asynq.
type enqueueOptions struct {
	taskID    string
	queue     string
	processAt time.Time
	processIn time.Duration
	lastAt    bool // ProcessAt came after ProcessIn
}

func readOptions(opts []asynqlib.Option) enqueueOptions {
	var o enqueueOptions
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		switch opt.Type() {
		case asynqlib.TaskIDOpt:
			o.taskID, _ = opt.Value().(string)
		case asynqlib.QueueOpt:
			o.queue, _ = opt.Value().(string)
		case asynqlib.ProcessAtOpt:
			o.processAt, _ = opt.Value().(time.Time)
			o.lastAt = true
		case asynqlib.ProcessInOpt:
			o.processIn, _ = opt.Value().(time.Duration)
			o.lastAt = false
		}
	}
	return o
}

// readyAt returns when a task enqueued at now with these options becomes
// ready to run: now, or for a scheduled task the start of the second of
// its time, since asynq keeps that time in whole seconds and makes the task
// ready once that second has begun.
func (o enqueueOptions) readyAt(now time.Time) time.Time {
	var at time.Time
	switch {
	case o.lastAt:
		at = o.processAt
	case o.processIn > 0:
		at = now.Add(o.processIn)
	}
	if at = at.Truncate(time.Second); at.After(now) {
		return at
	}
	return now
}

// queueName returns the queue, asynq's "default" if none was given.
func (o enqueueOptions) queueName() string {
	if o.queue == "" {
		return "default"
	}
	return o.queue
}

// newTaskID returns 32 random hexadecimal digits.
func newTaskID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}
