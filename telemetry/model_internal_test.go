package telemetry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// This file drives a real Recorder with random sequences of recording
// calls and queries, on the fake clock of testing/synctest, and checks
// every answer against a plain model: a slice of finished records in the
// order they reach the ring, evicted oldest first, and a map of pending
// runs. The model knows which shard each task id falls in (the shard
// [store.Table.Acquire] returns), so that it moves each shard's batch of
// finished records into the ring when the store does: when the batch is
// full, and whenever a query (or a refused call, which asks the table why)
// locks the table.

var modelLong = flag.Bool("model.long", false, "run the model tests with more seeds and larger tables")

// mEvent is the model's record of an event run.
type mEvent struct {
	id, name, pipeline, err string
	start, dur, enq         time.Duration
	hasEnq                  bool
	pid, retries            int32
	status                  statusCode
	span                    SpanContext
}

func (e *mEvent) end() time.Duration { return e.start + e.dur }

func (e *mEvent) metrics(c clock) EventMetrics {
	m := EventMetrics{
		EventName: e.name, TaskID: e.id, StartTime: c.time(e.start), Status: e.status.status(),
		Error: e.err, RetryCount: int(e.retries), ProcessID: int(e.pid), PipelineID: e.pipeline, Span: e.span,
	}
	if e.status != pending {
		m.EndTime = c.time(e.end())
	}
	if e.hasEnq {
		m.EnqueueTime = c.time(e.enq)
	}
	return m
}

// mNet is the model's record of a network operation.
type mNet struct {
	id, op, host, err string
	start, dur        time.Duration
	sent, recv        int64
	port              uint16
	status            statusCode
	span              SpanContext
}

func (n *mNet) end() time.Duration { return n.start + n.dur }

func (n *mNet) metrics(c clock) NetworkMetrics {
	m := NetworkMetrics{
		TaskID: n.id, Operation: n.op, Host: n.host, Port: int(n.port), StartTime: c.time(n.start),
		Status: n.status.status(), BytesSent: n.sent, BytesReceived: n.recv, Error: n.err, Span: n.span,
	}
	if n.status != pending {
		m.EndTime = c.time(n.end())
	}
	return m
}

// mTable models a store.Table of records M.
type mTable[M any] struct {
	capacity   int
	maxPending int // per shard
	oneShard   bool
	shardOf    func(id string) uintptr
	pending    map[string]*M
	pendIDs    []string        // the keys of pending, to pick one at random
	perShard   map[uintptr]int // pending runs by shard
	stage      map[uintptr][]M
	ring       []M // moved into the ring, in order; the last capacity are retained
	moved      int // records moved into the ring, ever
	batches    int // full batches moved by an end, in a table of several shards
	locks      int // times the table was locked
	all        []M // every record that ended, in end-call order (for publishers)
}

func newMTable[M any](capacity, maxPending int, oneShard bool, shardOf func(string) uintptr) *mTable[M] {
	return &mTable[M]{capacity: capacity, maxPending: maxPending, oneShard: oneShard, shardOf: shardOf,
		pending: map[string]*M{}, stage: map[uintptr][]M{}, perShard: map[uintptr]int{}}
}

// move moves the batch of shard s into the ring.
func (t *mTable[M]) move(s uintptr) {
	t.ring = append(t.ring, t.stage[s]...)
	t.moved += len(t.stage[s])
	delete(t.stage, s)
	if len(t.ring) > 2*t.capacity+stageSizeModel {
		t.ring = slices.Clone(t.ring[len(t.ring)-t.capacity:])
	}
}

// stageSizeModel is the size of a shard's batch (store's stageSize).
const stageSizeModel = 64

// lock is what store.Table.Locked does first: move every batch, shards in
// the order of their index (their addresses).
func (t *mTable[M]) lock() {
	t.locks++
	keys := make([]uintptr, 0, len(t.stage))
	for k := range t.stage {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.move(k)
	}
}

// ended records a finished run.
func (t *mTable[M]) ended(id string, m M) {
	t.unpend(id)
	s := t.shardOf(id)
	t.stage[s] = append(t.stage[s], m)
	t.all = append(t.all, m)
	switch {
	case t.oneShard:
		t.move(s)
	case len(t.stage[s]) >= stageSizeModel:
		t.batches++
		t.move(s)
	}
}

func (t *mTable[M]) retained() []M { return t.ring[max(0, len(t.ring)-t.capacity):] }

func (t *mTable[M]) evicted() int { return t.moved - len(t.retained()) }

// pendingIn returns the number of pending runs in the shard of id.
func (t *mTable[M]) pendingIn(id string) int { return t.perShard[t.shardOf(id)] }

// pend adds the pending run of id.
func (t *mTable[M]) pend(id string, m *M) {
	t.pending[id] = m
	t.pendIDs = append(t.pendIDs, id)
	t.perShard[t.shardOf(id)]++
}

// unpend removes the pending run of id.
func (t *mTable[M]) unpend(id string) {
	delete(t.pending, id)
	i := slices.Index(t.pendIDs, id)
	t.pendIDs[i] = t.pendIDs[len(t.pendIDs)-1]
	t.pendIDs = t.pendIDs[:len(t.pendIDs)-1]
	t.perShard[t.shardOf(id)]--
}

// latestAll returns the newest retained run of every task id.
func (t *mTable[M]) latestAll(idOf func(*M) string) map[string]*M {
	out := map[string]*M{}
	kept := t.retained()
	for i := range kept {
		out[idOf(&kept[i])] = &kept[i]
	}
	return out
}

// latestRetained returns the newest retained run of id, in ring order.
func (t *mTable[M]) latestRetained(id string, idOf func(*M) string) (*M, bool) {
	kept := t.retained()
	for i := len(kept) - 1; i >= 0; i-- {
		if idOf(&kept[i]) == id {
			return &kept[i], true
		}
	}
	return nil, false
}

// why is the model of store.Table.Why: it locks the table.
func (t *mTable[M]) why(id string, idOf func(*M) string) error {
	t.lock()
	if _, ok := t.latestRetained(id, idOf); ok {
		return ErrAlreadyEnded
	}
	return ErrNotStarted
}

// modelConfig is one configuration of a model run.
type modelConfig struct {
	maxEvents, maxNet, maxPending int
	ids                           int     // size of the pool of task ids
	steps                         int     // recording calls
	query                         float64 // chance of a query after a call
	full                          float64 // chance of a full check after a call
	valid                         float64 // chance that an end or retry is of a pending run
	publisher                     bool
}

func (c modelConfig) String() string {
	return fmt.Sprintf("events=%d,net=%d,pending=%d,ids=%d,pub=%v", c.maxEvents, c.maxNet, c.maxPending, c.ids, c.publisher)
}

// modelRun is one run: the Recorder, the model, and the random source.
type modelRun struct {
	t      *testing.T
	cfg    modelConfig
	r      *Recorder
	rng    *rand.Rand
	ids    []string
	ev     *mTable[mEvent]
	net    *mTable[mNet]
	closed bool
	step   int
	log    []string // the last calls, for failure messages

	retries                    uint64 // every retry recorded
	evEnded, evFailed, evClamp uint64
	withRetries                uint64
	byRetry                    map[int]uint64
	netEnded, netFailed        uint64
	sent, recv                 int64
	pub                        *modelPublisher
	late                       *modelPublisher // attached during the run
	lateEv, lateNet            int             // records that had ended when it was

	prefix string       // of the task ids, and of failure messages
	fail   func(string) // reports a failure and stops; t.Fatal if nil
}

const modelErrLen = 48

func shardKey[R, T any](tb *store.Table[R, T]) func(string) uintptr {
	cache := map[string]uintptr{}
	return func(id string) uintptr {
		if k, ok := cache[id]; ok {
			return k
		}
		s, _ := tb.Acquire(id)
		tb.Release(s)
		k := uintptr(unsafe.Pointer(s))
		cache[id] = k
		return k
	}
}

func newModelRun(t *testing.T, cfg modelConfig, seed uint64) *modelRun {
	return newModelRunOf(t, cfg, seed, nil, "")
}

// newModelRunOf returns a model run of cfg on r, a new Recorder if nil,
// over the task ids that begin with prefix.
func newModelRunOf(t *testing.T, cfg modelConfig, seed uint64, r *Recorder, prefix string) *modelRun {
	if r != nil {
		m := &modelRun{t: t, cfg: cfg, r: r, rng: rand.New(rand.NewPCG(seed, 0x5eed)), byRetry: map[int]uint64{}, prefix: prefix}
		m.init()
		return m
	}
	opts := []Option{WithMaxEvents(cfg.maxEvents), WithMaxNetworkOps(cfg.maxNet), WithMaxPending(cfg.maxPending),
		WithMaxErrorLength(modelErrLen), WithQueueSize(1 << 17)}
	var pub *modelPublisher
	if cfg.publisher {
		// A queued publisher, a synchronous one, and an Observer.
		pub = &modelPublisher{sync: &modelSyncPublisher{}, obs: &modelObserver{}}
		opts = append(opts, WithPublishers(pub, pub.sync, pub.obs))
	}
	r, err := NewRecorder(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	m := &modelRun{t: t, cfg: cfg, r: r, rng: rand.New(rand.NewPCG(seed, 0x5eed)), byRetry: map[int]uint64{}, pub: pub}
	m.init()
	return m
}

func (m *modelRun) init() {
	for i := range m.cfg.ids {
		// Ids of several lengths, so that the slabs hold strings of
		// several sizes.
		m.ids = append(m.ids, fmt.Sprintf("%st%d%s", m.prefix, i, strings.Repeat("x", i%5)))
	}
	r := m.r
	m.ev = newMTable[mEvent](m.cfg.maxEvents, r.events.MaxPending(), r.events.NumShards() == 1, shardKey(r.events))
	m.net = newMTable[mNet](m.cfg.maxNet, r.network.MaxPending(), r.network.NumShards() == 1, shardKey(r.network))
}

func (m *modelRun) logf(format string, args ...any) {
	m.log = append(m.log, fmt.Sprintf("%d: ", m.step)+fmt.Sprintf(format, args...))
	if len(m.log) > 30 {
		m.log = m.log[1:]
	}
}

func (m *modelRun) fatalf(format string, args ...any) {
	m.t.Helper()
	msg := fmt.Sprintf("%sstep %d (%v): %s\nlast calls:\n%s", m.prefix, m.step, m.cfg, fmt.Sprintf(format, args...), strings.Join(m.log, "\n"))
	if m.fail != nil {
		m.fail(msg)
	}
	m.t.Fatal(msg)
}

func (m *modelRun) now() time.Duration { return m.r.clock.now() }

// checkErr checks that err is what the model expects: nil, or a
// *TaskError for op and id wrapping want.
func (m *modelRun) checkErr(call string, err, want error, id string) {
	m.t.Helper()
	if want == nil {
		if err != nil {
			m.fatalf("%s: got %v, want no error", call, err)
		}
		return
	}
	var te *TaskError
	if !errors.Is(err, want) || !errors.As(err, &te) || te.TaskID != id {
		m.fatalf("%s: got %v, want a *TaskError for %q wrapping %v", call, err, id, want)
	}
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func (m *modelRun) pickID() string {
	if m.rng.IntN(60) == 0 {
		return ""
	}
	return m.ids[m.rng.IntN(len(m.ids))]
}

// pickPending returns mostly a task id pending in pending, so that most
// ends succeed and the shards' batches fill between queries.
func pickPending[M any](m *modelRun, t *mTable[M]) string {
	if len(t.pendIDs) > 0 && m.rng.Float64() < cmp.Or(m.cfg.valid, 0.75) {
		return t.pendIDs[m.rng.IntN(len(t.pendIDs))]
	}
	return m.pickID()
}

var modelSpan = SpanContext{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Sampled: true}

// errLong is longer than modelErrLen, with multi-byte characters.
var errLong = errors.New(strings.Repeat("é-rröр ", 12))

func (m *modelRun) pickErr() error {
	return pick(m.rng, nil, nil, nil, errors.New("boom"), fmt.Errorf("wrapped: %w", errors.New("disk full")),
		errors.New(""), errLong, errors.New("bad\n\"json\"\u2029\x1b"))
}

func errText(err error) (statusCode, string) {
	if err == nil {
		return completed, ""
	}
	msg := err.Error()
	if msg == "" {
		msg = "unknown error"
	}
	return failed, safetext.Cut(msg, modelErrLen)
}

// startEvent calls StartEvent with random arguments.
func (m *modelRun) startEvent() {
	id := m.pickID()
	name := pick(m.rng, "extract", "load", "transform", "a-rather-long-event-name-for-the-slabs", "",
		"q\"<b>\\ \u2028\x01\t\u0085é")
	if name == "" && m.rng.IntN(4) != 0 {
		name = "e"
	}
	now := m.now()
	rec := mEvent{id: id, name: name, start: now}
	var opts []StartOption
	var want error
	var at *time.Duration
	wait, hasWait := time.Duration(0), false
	for range m.rng.IntN(4) {
		switch m.rng.IntN(7) {
		case 0:
			pid := pick(m.rng, 0, 7, 1<<31-1, 12345, -1)
			opts = append(opts, WithProcessID(pid))
			if pid < 0 && want == nil {
				want = ErrInvalidProcessID
			}
			rec.pid = int32(pid)
		case 1:
			p := pick(m.rng, "", "p1", "p2", "pipeline-run-2026-11-26-0001", "p\u202e\x7f\"")
			opts = append(opts, WithPipelineID(p))
			rec.pipeline = p
		case 2:
			d := pick(m.rng, 0, 5*time.Millisecond, 2*time.Second, -1)
			opts = append(opts, WithWait(d))
			if d < 0 && want == nil {
				want = ErrInvalidOption
			}
			wait, hasWait = d, true
		case 3:
			off := now + pick(m.rng, -3*time.Second, -time.Nanosecond, 0, time.Second)
			tm := m.r.clock.time(off)
			if m.rng.IntN(10) == 0 {
				tm = time.Time{}
				if want == nil {
					want = ErrInvalidOption
				}
			}
			opts = append(opts, WithEnqueueTime(tm))
			rec.enq, rec.hasEnq, hasWait = off, true, false
		case 4:
			d := pick(m.rng, 0, time.Nanosecond, time.Second, 5*time.Second, -time.Second)
			opts = append(opts, WithStartTime(m.r.clock.time(now-d)))
			at = new(now - d)
		case 5:
			opts = append(opts, WithSpanContext(modelSpan))
			rec.span = modelSpan
		case 6:
			opts = append(opts, WithSpanContext(SpanContext{}))
			rec.span = SpanContext{}
		}
	}
	if at != nil {
		if *at > now && want == nil {
			want = ErrInvalidOption
		}
		rec.start = *at
	}
	if hasWait {
		rec.enq, rec.hasEnq = rec.start-wait, true
	}
	switch {
	case id == "":
		want = ErrEmptyTaskID
	case name == "":
		want = ErrEmptyEventName
	}
	if want == nil {
		switch {
		case m.closed:
			want = ErrClosed
		case m.ev.pending[id] != nil:
			want = ErrAlreadyStarted
		case m.ev.pendingIn(id) >= m.ev.maxPending:
			want = ErrTooManyPending
		}
	}
	m.logf("StartEvent(%q, %q, %d opts) want %v", name, id, len(opts), want)
	err := m.r.StartEvent(name, id, opts...)
	m.checkErr("StartEvent", err, want, id)
	if want == nil {
		rec.status = pending
		m.ev.pend(id, &rec)
	}
}

// endAt returns a random end: now (by EndEvent) or a time given to the
// At variant, and the error that time makes the call return.
func (m *modelRun) endAt() (end time.Duration, given *time.Time, want error) {
	now := m.now()
	if m.rng.IntN(2) == 0 {
		return now, nil, nil
	}
	off := now + pick(m.rng, 0, -time.Nanosecond, -2*time.Second, -time.Hour, time.Millisecond, time.Hour)
	tm := m.r.clock.time(off)
	if m.rng.IntN(15) == 0 {
		return 0, &time.Time{}, ErrInvalidOption
	}
	return off, &tm, nil
}

func (m *modelRun) endEvent() {
	id := pickPending(m, m.ev)
	cause := m.pickErr()
	end, given, want := m.endAt()
	if want == nil && id == "" {
		want = ErrEmptyTaskID
	}
	p := m.ev.pending[id]
	if want == nil && m.closed {
		want = ErrClosed
	}
	m.logf("EndEvent(%q, %v, at %v) want %v", id, cause, given != nil, want)
	var err error
	if given != nil {
		err = m.r.EndEventAt(id, cause, *given)
	} else {
		err = m.r.EndEvent(id, cause)
	}
	if want == nil && p == nil {
		want = m.ev.why(id, func(e *mEvent) string { return e.id })
	}
	m.checkErr("EndEvent", err, want, id)
	if want != nil {
		return
	}
	rec := *p
	rec.dur = max(end-rec.start, 0)
	rec.status, rec.err = errText(cause)
	m.evEnded++
	if rec.status == failed {
		m.evFailed++
	}
	if rec.hasEnq && rec.enq > rec.start {
		m.evClamp++
	}
	if rec.retries > 0 {
		m.withRetries++
		m.byRetry[int(rec.retries)]++
	}
	m.ev.ended(id, rec)
}

func (m *modelRun) recordRetry() {
	id := pickPending(m, m.ev)
	var want error
	switch {
	case id == "":
		want = ErrEmptyTaskID
	case m.closed:
		want = ErrClosed
	}
	p := m.ev.pending[id]
	m.logf("RecordRetry(%q)", id)
	err := m.r.RecordRetry(id)
	if want == nil && p == nil {
		want = m.ev.why(id, func(e *mEvent) string { return e.id })
	}
	m.checkErr("RecordRetry", err, want, id)
	if want == nil {
		p.retries++
		m.retries++
	}
}

func (m *modelRun) startOperation() {
	id := m.pickID()
	host := pick(m.rng, "db", "api.example.com", "10.0.0.1", "", "h\u0085\\")
	if host == "" && m.rng.IntN(3) != 0 {
		host = "h"
	}
	port := pick(m.rng, 0, 443, 5432, 65535, 65536, -1)
	op := pick(m.rng, "", "http_request", "query")
	now := m.now()
	rec := mNet{id: id, op: op, host: host, port: uint16(port), start: now}
	if op == "" {
		rec.op = DefaultOperation
	}
	var want error
	var opts []StartOption
	for range m.rng.IntN(3) {
		switch m.rng.IntN(4) {
		case 0:
			d := pick(m.rng, 0, time.Nanosecond, 3*time.Second, -time.Second)
			opts = append(opts, WithStartTime(m.r.clock.time(now-d)))
			rec.start = now - d
		case 1:
			opts = append(opts, WithSpanContext(modelSpan))
			rec.span = modelSpan
		case 2:
			opts = append(opts, StartOption{})
		case 3:
			opts = append(opts, WithPipelineID("p"))
			if want == nil {
				want = ErrInvalidOption
			}
		}
	}
	if want == nil && rec.start > now {
		want = ErrInvalidOption
	}
	switch {
	case id == "":
		want = ErrEmptyTaskID
	case host == "":
		want = ErrEmptyHost
	case port < 0 || port > 65535:
		want = ErrInvalidPort
	}
	if want == nil {
		switch {
		case m.closed:
			want = ErrClosed
		case m.net.pending[id] != nil:
			want = ErrAlreadyStarted
		case m.net.pendingIn(id) >= m.net.maxPending:
			want = ErrTooManyPending
		}
	}
	m.logf("StartOperation(%q, %q, %d, %q) want %v", id, host, port, op, want)
	err := m.r.Network().StartOperation(id, host, port, op, opts...)
	m.checkErr("StartOperation", err, want, id)
	if want == nil {
		rec.status = pending
		m.net.pend(id, &rec)
	}
}

func (m *modelRun) endOperation() {
	id := pickPending(m, m.net)
	cause := m.pickErr()
	sent := pick(m.rng, int64(0), 1, 1500, 1<<40, -1)
	recv := pick(m.rng, int64(0), 7, 1<<20, -5)
	end, given, want := m.endAt()
	if want == nil {
		switch {
		case id == "":
			want = ErrEmptyTaskID
		case sent < 0 || recv < 0:
			want = ErrNegativeBytes
		case m.closed:
			want = ErrClosed
		}
	}
	p := m.net.pending[id]
	m.logf("EndOperation(%q, %d, %d, %v, at %v) want %v", id, sent, recv, cause, given != nil, want)
	var err error
	if given != nil {
		err = m.r.Network().EndOperationAt(id, sent, recv, cause, *given)
	} else {
		err = m.r.Network().EndOperation(id, sent, recv, cause)
	}
	if want == nil && p == nil {
		want = m.net.why(id, func(n *mNet) string { return n.id })
	}
	m.checkErr("EndOperation", err, want, id)
	if want != nil {
		return
	}
	rec := *p
	rec.dur = max(end-rec.start, 0)
	rec.status, rec.err = errText(cause)
	rec.sent, rec.recv = sent, recv
	m.netEnded++
	if rec.status == failed {
		m.netFailed++
	}
	m.sent += sent
	m.recv += recv
	m.net.ended(id, rec)
}

// normEvent and normNet make records comparable with ==: times by their
// instant only.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

func normEvent(e EventMetrics) EventMetrics {
	e.StartTime, e.EndTime, e.EnqueueTime = normTime(e.StartTime), normTime(e.EndTime), normTime(e.EnqueueTime)
	return e
}

func normNet(n NetworkMetrics) NetworkMetrics {
	n.StartTime, n.EndTime = normTime(n.StartTime), normTime(n.EndTime)
	return n
}

// sameOrdered reports why got differs from want, or "": both ordered by
// key, records of equal keys in any order. If prefix, got may be a
// prefix of want's length n (PendingEvents' limit), whose last group of
// equal keys may be any part of want's.
func sameOrdered[M comparable](got, want []M, key func(M) time.Time, n int) string {
	if len(got) != n {
		return fmt.Sprintf("got %d records, want %d", len(got), n)
	}
	for i := 0; i < n; {
		j := i + 1
		for j < len(want) && key(want[j]).Equal(key(want[i])) {
			j++
		}
		hi := min(j, n)
		for k := i; k < hi; k++ {
			if !key(got[k]).Equal(key(want[i])) {
				return fmt.Sprintf("record %d: got %+v, want one of %+v", k, got[k], want[i:j])
			}
		}
		rest := slices.Clone(want[i:j])
		for k := i; k < hi; k++ {
			p := slices.Index(rest, got[k])
			if p < 0 {
				return fmt.Sprintf("record %d: got %+v, want one of %+v", k, got[k], want[i:j])
			}
			rest = slices.Delete(rest, p, p+1)
		}
		i = j
	}
	return ""
}

// A kind is what the model checks the same way for both kinds of record:
// event runs (the model's M mEvent, the Recorder's X EventMetrics) and
// network operations (mNet, NetworkMetrics).
type kind[M any, X comparable] struct {
	what       string // "events" or "operations", in messages
	latestName string // the Recorder's method for the latest run, in messages
	table      func(*modelRun) *mTable[M]
	metrics    func(*M, clock) X
	norm       func(X) X
	id         func(*M) string
	end, start func(X) time.Time
	latest     func(*Recorder, string) (X, bool)
}

var (
	eventKind = kind[mEvent, EventMetrics]{
		what: "events", latestName: "Metrics",
		table:   func(m *modelRun) *mTable[mEvent] { return m.ev },
		metrics: (*mEvent).metrics, norm: normEvent,
		id:     func(e *mEvent) string { return e.id },
		end:    func(e EventMetrics) time.Time { return e.EndTime },
		start:  func(e EventMetrics) time.Time { return e.StartTime },
		latest: (*Recorder).Metrics,
	}
	netKind = kind[mNet, NetworkMetrics]{
		what: "operations", latestName: "Network.Metrics",
		table:   func(m *modelRun) *mTable[mNet] { return m.net },
		metrics: (*mNet).metrics, norm: normNet,
		id:     func(n *mNet) string { return n.id },
		end:    func(n NetworkMetrics) time.Time { return n.EndTime },
		start:  func(n NetworkMetrics) time.Time { return n.StartTime },
		latest: func(r *Recorder, id string) (NetworkMetrics, bool) { return r.Network().Metrics(id) },
	}
)

// finished returns the model's retained records of k that keep selects
// (all if keep is nil), normalised, in end order.
func finished[M any, X comparable](m *modelRun, k kind[M, X], keep func(*M) bool) []X {
	var out []X
	ret := k.table(m).retained()
	for i := range ret {
		if keep == nil || keep(&ret[i]) {
			out = append(out, k.norm(k.metrics(&ret[i], m.r.clock)))
		}
	}
	slices.SortStableFunc(out, func(a, b X) int { return k.end(a).Compare(k.end(b)) })
	return out
}

// pendingOf returns the model's pending records of k, normalised, in start
// order.
func pendingOf[M any, X comparable](m *modelRun, k kind[M, X]) []X {
	var out []X
	for _, p := range k.table(m).pending {
		out = append(out, k.norm(k.metrics(p, m.r.clock)))
	}
	slices.SortStableFunc(out, func(a, b X) int { return k.start(a).Compare(k.start(b)) })
	return out
}

func mapSlice[A, B any](xs []A, f func(A) B) []B {
	out := make([]B, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// checkFinished checks finished records a query returned against want, in
// end order.
func checkFinished[M any, X comparable](m *modelRun, k kind[M, X], what string, got, want []X) {
	m.t.Helper()
	if why := sameOrdered(mapSlice(got, k.norm), want, k.end, len(want)); why != "" {
		m.fatalf("%s: %s", what, why)
	}
}

// checkPending checks the first n pending records a query returned
// against want, in start order.
func checkPending[M any, X comparable](m *modelRun, k kind[M, X], what string, got, want []X, n int) {
	m.t.Helper()
	if why := sameOrdered(mapSlice(got, k.norm), want, k.start, n); why != "" {
		m.fatalf("%s: %s", what, why)
	}
}

// checkLatest checks the Recorder's latest run of id (Metrics) against the
// model: the pending run, or the newest retained one (from latest if not
// nil).
func checkLatest[M any, X comparable](m *modelRun, k kind[M, X], id string, latest map[string]*M) {
	m.t.Helper()
	t := k.table(m)
	t.lock()
	got, ok := k.latest(m.r, id)
	want := t.pending[id]
	if want == nil {
		if latest != nil {
			want = latest[id]
		} else {
			want, _ = t.latestRetained(id, k.id)
		}
	}
	switch {
	case want == nil && ok:
		m.fatalf("%s(%q): got %+v, want none", k.latestName, id, got)
	case want != nil && !ok:
		m.fatalf("%s(%q): got none, want %+v", k.latestName, id, k.metrics(want, m.r.clock))
	case want != nil && k.norm(got) != k.norm(k.metrics(want, m.r.clock)):
		m.fatalf("%s(%q): got %+v, want %+v", k.latestName, id, k.norm(got), k.norm(k.metrics(want, m.r.clock)))
	}
}

func (m *modelRun) threshold() time.Duration {
	return pick(m.rng, 0, time.Nanosecond, time.Millisecond, 999*time.Millisecond, time.Second, 2*time.Second, time.Hour)
}

// query runs one random query and checks it.
func (m *modelRun) query() {
	m.t.Helper()
	switch m.rng.IntN(12) {
	case 0:
		checkLatest(m, eventKind, m.ids[m.rng.IntN(len(m.ids))], nil)
	case 1:
		checkLatest(m, netKind, m.ids[m.rng.IntN(len(m.ids))], nil)
	case 2:
		m.ev.lock()
		checkFinished(m, eventKind, "FailedEvents", m.r.FailedEvents(), finished(m, eventKind, func(e *mEvent) bool { return e.status == failed }))
	case 3:
		d := m.threshold()
		m.ev.lock()
		got, err := m.r.SlowEvents(d)
		if err != nil {
			m.fatalf("SlowEvents(%v): %v", d, err)
		}
		checkFinished(m, eventKind, fmt.Sprintf("SlowEvents(%v)", d), got, finished(m, eventKind, func(e *mEvent) bool { return e.dur > d }))
	case 4:
		d := m.threshold()
		m.ev.lock()
		got, err := m.r.WaitedEvents(d)
		if err != nil {
			m.fatalf("WaitedEvents(%v): %v", d, err)
		}
		checkFinished(m, eventKind, fmt.Sprintf("WaitedEvents(%v)", d), got, finished(m, eventKind, func(e *mEvent) bool {
			return e.hasEnq && max(e.start-e.enq, 0) > d
		}))
	case 5:
		m.net.lock()
		checkFinished(m, netKind, "FailedOperations", m.r.Network().FailedOperations(), finished(m, netKind, func(n *mNet) bool { return n.status == failed }))
	case 6:
		d := m.threshold()
		m.net.lock()
		got, err := m.r.Network().SlowOperations(d)
		if err != nil {
			m.fatalf("SlowOperations(%v): %v", d, err)
		}
		checkFinished(m, netKind, fmt.Sprintf("SlowOperations(%v)", d), got, finished(m, netKind, func(n *mNet) bool { return n.dur > d }))
	case 7:
		limit := m.rng.IntN(len(m.ids)+2) - 1
		m.ev.lock()
		got, n := m.r.PendingEvents(limit)
		want := pendingOf(m, eventKind)
		if n != len(want) {
			m.fatalf("PendingEvents(%d): got a count of %d, want %d", limit, n, len(want))
		}
		checkPending(m, eventKind, fmt.Sprintf("PendingEvents(%d)", limit), got, want, min(max(limit, 0), len(want)))
	case 8:
		limit := m.rng.IntN(len(m.ids)+2) - 1
		m.net.lock()
		got, n := m.r.Network().PendingOperations(limit)
		want := pendingOf(m, netKind)
		if n != len(want) {
			m.fatalf("PendingOperations(%d): got a count of %d, want %d", limit, n, len(want))
		}
		checkPending(m, netKind, fmt.Sprintf("PendingOperations(%d)", limit), got, want, min(max(limit, 0), len(want)))
	case 9:
		m.ev.lock()
		m.net.lock()
		m.checkStats("Stats", m.r.Stats())
	case 10:
		m.ev.lock()
		m.checkRetryStats("RetryStats", m.r.RetryStats())
	case 11:
		if _, err := m.r.SlowEvents(-time.Nanosecond); !errors.Is(err, ErrNegativeThreshold) {
			m.fatalf("SlowEvents(-1ns): got %v, want ErrNegativeThreshold", err)
		}
		if _, err := m.r.WaitedEvents(-time.Second); !errors.Is(err, ErrNegativeThreshold) {
			m.fatalf("WaitedEvents(-1s): got %v, want ErrNegativeThreshold", err)
		}
		if _, err := m.r.Network().SlowOperations(-1); !errors.Is(err, ErrNegativeThreshold) {
			m.fatalf("SlowOperations(-1ns): got %v, want ErrNegativeThreshold", err)
		}
	}
}

func (m *modelRun) wantStats() Stats {
	return Stats{
		EventsPending: len(m.ev.pending), EventsRetained: len(m.ev.retained()), EventsEnded: m.evEnded,
		EventsFailed: m.evFailed, EventsEvicted: uint64(m.ev.evicted()), EventsWaitClamped: m.evClamp,
		NetworkPending: len(m.net.pending), NetworkRetained: len(m.net.retained()), NetworkEnded: m.netEnded,
		NetworkFailed: m.netFailed, NetworkEvicted: uint64(m.net.evicted()), BytesSent: m.sent, BytesReceived: m.recv,
	}
}

func (m *modelRun) checkStats(what string, got Stats) {
	m.t.Helper()
	got.Publishers = nil
	if want := m.wantStats(); fmt.Sprint(got) != fmt.Sprint(want) {
		m.fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func (m *modelRun) wantRetryStats() RetrySummary {
	s := RetrySummary{TotalRetries: m.retries, EventsWithRetries: m.withRetries, ByRetryCount: map[int]uint64{}}
	for k, v := range m.byRetry {
		s.ByRetryCount[k] = v
	}
	for _, p := range m.ev.pending {
		if p.retries > 0 {
			s.EventsWithRetries++
			s.ByRetryCount[int(p.retries)]++
		}
	}
	return s
}

func (m *modelRun) checkRetryStats(what string, got RetrySummary) {
	m.t.Helper()
	want := m.wantRetryStats()
	if got.TotalRetries != want.TotalRetries || got.EventsWithRetries != want.EventsWithRetries || fmt.Sprint(got.ByRetryCount) != fmt.Sprint(want.ByRetryCount) {
		m.fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// checkReport checks a report against the model.
func (m *modelRun) checkReport(what string, rep Report) {
	m.t.Helper()
	checkReportPart(m, eventKind, what, rep.Events)
	checkReportPart(m, netKind, what, rep.NetworkOperations)
	m.checkRetryStats(what+" retry_stats", rep.RetryStats)
	m.checkStats(what+" stats", rep.Stats)
}

// checkReportPart checks the records of k in a report, got, against the
// model: the finished ones in end order, then the pending ones in start
// order.
func checkReportPart[M any, X comparable](m *modelRun, k kind[M, X], what string, got []X) {
	m.t.Helper()
	fin, pend := finished(m, k, nil), pendingOf(m, k)
	if len(got) != len(fin)+len(pend) {
		m.fatalf("%s: %d %s, want %d finished and %d pending", what, len(got), k.what, len(fin), len(pend))
	}
	checkFinished(m, k, what+" finished "+k.what, got[:len(fin)], fin)
	checkPending(m, k, what+" pending "+k.what, got[len(fin):], pend, len(pend))
}

// fullCheck checks every query against the model.
func (m *modelRun) fullCheck() {
	m.t.Helper()
	m.ev.lock()
	m.net.lock()
	evLatest := m.ev.latestAll(eventKind.id)
	netLatest := m.net.latestAll(netKind.id)
	for _, id := range m.ids {
		checkLatest(m, eventKind, id, evLatest)
		checkLatest(m, netKind, id, netLatest)
	}
	for range 12 {
		m.query()
	}
	m.ev.lock()
	m.net.lock()
	m.checkReport("Report", m.r.Report())
	b, err := m.r.MetricsJSON()
	if err != nil {
		m.fatalf("MetricsJSON: %v", err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		m.fatalf("MetricsJSON does not decode into a Report: %v", err)
	}
	m.checkReport("MetricsJSON", rep)
}

// run makes cfg.steps recording calls with queries between them.
func (m *modelRun) run() {
	m.t.Helper()
	m.steps(m.query, m.fullCheck)
	m.finish()
}

// steps makes cfg.steps recording calls, with query and full between
// them as cfg says.
func (m *modelRun) steps(query, full func()) {
	for m.step = 0; m.step < m.cfg.steps; m.step++ {
		// With nothing pending, an end or a retry would be refused, and
		// a refusal locks the table, which moves the shards' batches:
		// start one instead, as often as ends should succeed.
		noEvent := len(m.ev.pending) == 0 && m.rng.Float64() < cmp.Or(m.cfg.valid, 0.75)
		noOp := len(m.net.pending) == 0 && m.rng.Float64() < cmp.Or(m.cfg.valid, 0.75)
		switch k := m.rng.IntN(20); {
		case k < 5 || k < 12 && noEvent:
			m.startEvent()
		case k < 10:
			m.endEvent()
		case k < 12:
			m.recordRetry()
		case k < 15 || k < 18 && noOp:
			m.startOperation()
		case k < 18:
			m.endOperation()
		case m.pub != nil && m.late == nil && m.rng.IntN(200) == 0:
			m.addLatePublisher()
		default:
			d := pick(m.rng, time.Nanosecond, time.Microsecond, time.Millisecond, 700*time.Millisecond, time.Second, 2*time.Second)
			time.Sleep(d)
		}
		if m.rng.Float64() < m.cfg.query {
			query()
		}
		if m.rng.Float64() < m.cfg.full {
			full()
		}
	}
}

// finish checks everything, the publisher if there is one, and what
// Close changes.
func (m *modelRun) finish() {
	m.t.Helper()
	m.fullCheck()
	m.t.Logf("events: %d ended, %d evicted, %d full batches moved, %d locks; network: %d ended, %d evicted, %d full batches moved, %d locks",
		m.evEnded, m.ev.evicted(), m.ev.batches, m.ev.locks, m.netEnded, m.net.evicted(), m.net.batches, m.net.locks)
	if m.pub != nil {
		if err := m.r.Flush(context.Background()); err != nil {
			m.fatalf("Flush: %v", err)
		}
		m.checkPublished()
	}
	// After Close, recording calls are refused and change nothing;
	// queries still answer.
	if err := m.r.Close(context.Background()); err != nil {
		m.fatalf("Close: %v", err)
	}
	m.closed = true
	for range 50 {
		switch m.rng.IntN(5) {
		case 0:
			m.startEvent()
		case 1:
			m.endEvent()
		case 2:
			m.recordRetry()
		case 3:
			m.startOperation()
		case 4:
			m.endOperation()
		}
	}
	m.fullCheck()
}

// addLatePublisher attaches a publisher during the run: it must get the
// records that end from then on. Attaching one locks the tables, which
// moves the shards' batches into the rings.
func (m *modelRun) addLatePublisher() {
	m.late = &modelPublisher{}
	m.lateEv, m.lateNet = len(m.ev.all), len(m.net.all)
	m.logf("AddPublisher")
	if err := m.r.AddPublisher(m.late); err != nil {
		m.fatalf("AddPublisher: %v", err)
	}
	m.ev.lock()
	m.net.lock()
}

// checkPublished checks that each publisher got every finished record
// once.
func (m *modelRun) checkPublished() {
	m.t.Helper()
	wantEv := mapSlice(m.ev.all, func(e mEvent) EventMetrics { return normEvent(e.metrics(m.r.clock)) })
	wantNet := mapSlice(m.net.all, func(n mNet) NetworkMetrics { return normNet(n.metrics(m.r.clock)) })
	if p := m.late; p != nil {
		m.t.Logf("a publisher attached after %d event runs and %d operations ended got the %d and %d that ended since",
			m.lateEv, m.lateNet, len(wantEv)-m.lateEv, len(wantNet)-m.lateNet)
		p.mu.Lock()
		if why := sameBag(mapSlice(p.events, normEvent), wantEv[m.lateEv:]); why != "" {
			m.fatalf("event records published to the publisher attached at the %dth: %s", m.lateEv, why)
		}
		if why := sameBag(mapSlice(p.network, normNet), wantNet[m.lateNet:]); why != "" {
			m.fatalf("network records published to the publisher attached at the %dth: %s", m.lateNet, why)
		}
		p.mu.Unlock()
	}
	for _, p := range []*modelPublisher{m.pub, &m.pub.sync.modelPublisher} {
		p.mu.Lock()
		if why := sameBag(mapSlice(p.events, normEvent), wantEv); why != "" {
			m.fatalf("published event records: %s", why)
		}
		if why := sameBag(mapSlice(p.network, normNet), wantNet); why != "" {
			m.fatalf("published network records: %s", why)
		}
		p.mu.Unlock()
	}
	o := m.pub.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	if why := sameBag(o.events, mapSlice(wantEv, EventMetrics.Observation)); why != "" {
		m.fatalf("observed event runs: %s", why)
	}
	if why := sameBag(o.network, mapSlice(wantNet, NetworkMetrics.Observation)); why != "" {
		m.fatalf("observed network operations: %s", why)
	}
}

// sameBag reports why got and want do not hold the same records as many
// times each, or "".
func sameBag[M comparable](got, want []M) string {
	if why := subBag(got, want); why != "" {
		return why
	}
	if len(got) < len(want) {
		return fmt.Sprintf("got %d records, want the %d that ended", len(got), len(want))
	}
	return ""
}

// modelPublisher keeps what it is given.
type modelPublisher struct {
	mu      sync.Mutex
	events  []EventMetrics
	network []NetworkMetrics
	sync    *modelSyncPublisher // attached beside it
	obs     *modelObserver      // attached beside it
}

// modelSyncPublisher is a modelPublisher called on the recording path.
type modelSyncPublisher struct{ modelPublisher }

func (*modelSyncPublisher) Synchronous() bool { return true }

// modelObserver keeps the observations it is given.
type modelObserver struct {
	modelSyncPublisher
	events  []EventObservation
	network []NetworkObservation
}

func (o *modelObserver) ObserveEvent(_ context.Context, e EventObservation) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
	return nil
}

func (o *modelObserver) ObserveNetwork(_ context.Context, n NetworkObservation) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.network = append(o.network, n)
	return nil
}

func (p *modelPublisher) PublishEventMetrics(_ context.Context, e EventMetrics) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}

func (p *modelPublisher) PublishNetworkMetrics(_ context.Context, n NetworkMetrics) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.network = append(p.network, n)
	return nil
}

// TestRecorderMatchesModel runs the model over tables of one shard (limits
// below 4,096) and of several, with limits that wrap the ring within a
// block and across blocks of 1,024 records, pools of task ids small
// enough that ids repeat, and pending limits that are reached.
func TestRecorderMatchesModel(t *testing.T) {
	configs := []modelConfig{
		{maxEvents: 1, maxNet: 2, maxPending: 3, ids: 6, steps: 1500, query: 0.3, full: 0.05},
		{maxEvents: 5, maxNet: 3, maxPending: 100, ids: 12, steps: 3000, query: 0.2, full: 0.02, publisher: true},
		{maxEvents: 64, maxNet: 100, maxPending: 8, ids: 40, steps: 4000, query: 0.1, full: 0.01},
		{maxEvents: 100, maxNet: 64, maxPending: 1000, ids: 150, steps: 4000, query: 0.05, full: 0.005},
		{maxEvents: 1025, maxNet: 5, maxPending: 1000, ids: 3000, steps: 8000, query: 0.01, full: 0.0005},
		// Several shards.
		{maxEvents: 4096, maxNet: 4100, maxPending: 50, ids: 60, steps: 30000, query: 0.0005, full: 0.00005, valid: 0.9995, publisher: true},
		{maxEvents: 5000, maxNet: 7, maxPending: 5000, ids: 6000, steps: 30000, query: 0.0005, full: 0.00005, valid: 0.9995},
		{maxEvents: 4100, maxNet: 4096, maxPending: 4096, ids: 30, steps: 30000, query: 0.001, full: 0.00005, valid: 0.99},
	}
	seeds := 2
	if testing.Short() || raceEnabled {
		seeds = 1
	}
	if *modelLong {
		seeds = 40
		configs = append(configs,
			modelConfig{maxEvents: 8192, maxNet: 16384, maxPending: 64, ids: 300, steps: 120000, query: 0.001, full: 0.00002},
			modelConfig{maxEvents: 16384, maxNet: 3, maxPending: 1 << 20, ids: 20000, steps: 150000, query: 0.0005, full: 0.00001})
	}
	for _, cfg := range configs {
		for seed := range seeds {
			t.Run(fmt.Sprintf("%v/seed=%d", cfg, seed), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					newModelRun(t, cfg, uint64(seed)).run()
				})
			})
		}
	}
}

// TestRecorderMatchesModelConcurrently records from several goroutines at
// once, each over task ids of its own with a model of its own, on the
// fake clock (each goroutine sleeps between some calls, so their calls
// interleave in time), while another goroutine queries. Each goroutine
// checks the answers to its calls and the latest run of its task ids;
// the querying one checks that each answer agrees with itself; at the
// end, the models merged are checked as the sequential test does. With
// eviction (the second case), which run of a task id is retained depends
// on the other goroutines: every end and retry is then of a pending run,
// so that the answers stay exact, and at the end the retained records
// must be some of those that ended, all the counts exact.
func TestRecorderMatchesModelConcurrently(t *testing.T) {
	for _, tc := range []struct {
		cfg   modelConfig
		evict bool
	}{
		{cfg: modelConfig{maxEvents: 1 << 14, maxNet: 4000, maxPending: 1 << 20, ids: 40, steps: 2500, query: 0.05, valid: 0.95, publisher: true}},
		{cfg: modelConfig{maxEvents: 4096, maxNet: 300, maxPending: 1 << 20, ids: 40, steps: 6000, valid: 1}, evict: true},
	} {
		seeds := 1
		if *modelLong {
			seeds = 10
		}
		for seed := range seeds {
			t.Run(fmt.Sprintf("%v/seed=%d", tc.cfg, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testModelConcurrently(t, tc.cfg, tc.evict, uint64(seed)) })
			})
		}
	}
}

func testModelConcurrently(t *testing.T, cfg modelConfig, evict bool, seed uint64) {
	const workers = 4
	all := newModelRun(t, cfg, 1000+seed)
	r := all.r
	ms := make([]*modelRun, workers)
	for w := range ms {
		ms[w] = newModelRunOf(t, cfg, seed*workers+uint64(w), r, fmt.Sprintf("w%d-", w))
		ms[w].fail = func(msg string) {
			t.Error(msg)
			runtime.Goexit()
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			checkReportItself(t, r.Report())
			b, err := r.MetricsJSON()
			var rep Report
			if err == nil {
				err = json.Unmarshal(b, &rep)
			}
			if err != nil {
				t.Errorf("MetricsJSON: %v", err)
				return
			}
			checkReportItself(t, rep)
			r.FailedEvents()
			r.Network().SlowOperations(time.Second)
			r.Stats()
			time.Sleep(time.Duration(10+rand.IntN(20)) * time.Second)
		}
	})
	var workersWG sync.WaitGroup
	for _, m := range ms {
		workersWG.Go(func() {
			if evict {
				m.steps(func() {}, func() {})
				return
			}
			m.steps(func() {
				checkLatest(m, eventKind, m.ids[m.rng.IntN(len(m.ids))], nil)
				checkLatest(m, netKind, m.ids[m.rng.IntN(len(m.ids))], nil)
			}, func() {})
		})
	}
	workersWG.Wait()
	close(done)
	wg.Wait()
	if t.Failed() {
		return
	}
	// Merge the models into all.
	for _, m := range ms {
		all.ids = append(all.ids, m.ids...)
		for _, id := range m.ev.pendIDs {
			all.ev.pend(id, m.ev.pending[id])
		}
		for _, id := range m.net.pendIDs {
			all.net.pend(id, m.net.pending[id])
		}
		m.ev.lock()
		m.net.lock()
		all.ev.ring = append(all.ev.ring, m.ev.ring...)
		all.ev.moved += m.ev.moved
		all.ev.all = append(all.ev.all, m.ev.all...)
		all.net.ring = append(all.net.ring, m.net.ring...)
		all.net.moved += m.net.moved
		all.net.all = append(all.net.all, m.net.all...)
		all.retries += m.retries
		all.evEnded += m.evEnded
		all.evFailed += m.evFailed
		all.evClamp += m.evClamp
		all.withRetries += m.withRetries
		for k, v := range m.byRetry {
			all.byRetry[k] += v
		}
		all.netEnded += m.netEnded
		all.netFailed += m.netFailed
		all.sent += m.sent
		all.recv += m.recv
	}
	if !evict {
		all.finish()
		return
	}
	// Which records are retained depends on how the goroutines' batches
	// met in the ring: only the counts are exact, and the retained
	// records must be some of those that ended.
	all.ev.ring, all.net.ring = all.ev.all, all.net.all
	t.Logf("events: %d ended, %d evicted; network: %d ended, %d evicted", all.evEnded, all.ev.evicted(), all.netEnded, all.net.evicted())
	all.checkStats("Stats", r.Stats())
	all.checkRetryStats("RetryStats", r.RetryStats())
	rep := r.Report()
	checkReportItself(t, rep)
	nfin := len(all.ev.retained())
	if why := sameBag(mapSlice(rep.Events[nfin:], normEvent), pendingOf(all, eventKind)); why != "" {
		t.Errorf("pending events: %s", why)
	}
	if why := subBag(mapSlice(rep.Events[:nfin], normEvent),
		mapSlice(all.ev.all, func(e mEvent) EventMetrics { return normEvent(e.metrics(r.clock)) })); why != "" {
		t.Errorf("retained events: %s", why)
	}
	nfin = len(all.net.retained())
	if why := sameBag(mapSlice(rep.NetworkOperations[nfin:], normNet), pendingOf(all, netKind)); why != "" {
		t.Errorf("pending operations: %s", why)
	}
	if why := subBag(mapSlice(rep.NetworkOperations[:nfin], normNet),
		mapSlice(all.net.all, func(n mNet) NetworkMetrics { return normNet(n.metrics(r.clock)) })); why != "" {
		t.Errorf("retained operations: %s", why)
	}
}

// subBag reports why got is not a part of want, each record at most as
// many times, or "".
func subBag[M comparable](got, want []M) string {
	n := map[M]int{}
	for _, x := range want {
		n[x]++
	}
	for _, x := range got {
		if n[x]--; n[x] < 0 {
			return fmt.Sprintf("got %+v more often than it ended", x)
		}
	}
	return ""
}

// checkReportItself checks that a report agrees with itself: its counts
// with its records, its records in their order.
func checkReportItself(t *testing.T, rep Report) {
	t.Helper()
	st := rep.Stats
	if len(rep.Events) != st.EventsRetained+st.EventsPending || len(rep.NetworkOperations) != st.NetworkRetained+st.NetworkPending {
		t.Errorf("report: %d events and %d operations, its stats say %+v", len(rep.Events), len(rep.NetworkOperations), st)
		return
	}
	if st.EventsEnded != uint64(st.EventsRetained)+st.EventsEvicted || st.NetworkEnded != uint64(st.NetworkRetained)+st.NetworkEvicted {
		t.Errorf("report stats: ended is not retained plus evicted: %+v", st)
	}
	var sum uint64
	for _, n := range rep.RetryStats.ByRetryCount {
		sum += n
	}
	if sum != rep.RetryStats.EventsWithRetries {
		t.Errorf("report retry stats: %+v", rep.RetryStats)
	}
	for i := 1; i < st.EventsRetained; i++ {
		if rep.Events[i].EndTime.Before(rep.Events[i-1].EndTime) {
			t.Errorf("report: event %d ended before the one before it", i)
		}
	}
	for i := st.EventsRetained; i < len(rep.Events); i++ {
		if rep.Events[i].Status != StatusPending || i > st.EventsRetained && rep.Events[i].StartTime.Before(rep.Events[i-1].StartTime) {
			t.Errorf("report: pending event %d is not pending or not in start order", i)
		}
	}
	for i := 1; i < st.NetworkRetained; i++ {
		if rep.NetworkOperations[i].EndTime.Before(rep.NetworkOperations[i-1].EndTime) {
			t.Errorf("report: operation %d ended before the one before it", i)
		}
	}
}

// FuzzRecorderModel runs the model over a configuration and a seed the
// fuzzer picks: with go test -fuzz=FuzzRecorderModel it searches seeds
// and small limits beyond those of TestRecorderMatchesModel.
func FuzzRecorderModel(f *testing.F) {
	f.Add(uint64(1), uint8(1), uint8(5), uint8(3), uint8(12), uint16(800))
	f.Add(uint64(2), uint8(64), uint8(3), uint8(8), uint8(70), uint16(1500))
	f.Add(uint64(3), uint8(255), uint8(1), uint8(255), uint8(4), uint16(2000))
	f.Fuzz(func(t *testing.T, seed uint64, events, network, pending, ids uint8, steps uint16) {
		cfg := modelConfig{
			maxEvents: 1 + int(events), maxNet: 1 + int(network), maxPending: 1 + int(pending),
			ids: 1 + int(ids), steps: int(steps % 4000), query: 0.1, full: 0.01, valid: 0.75 + float64(seed%25)/100,
			publisher: seed%3 == 0,
		}
		synctest.Test(t, func(t *testing.T) { newModelRun(t, cfg, seed).run() })
	})
}
