package telemetry

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// A Recorder records event runs and network operations, answers queries
// about them, and delivers every finished record to its publishers: one
// telemetry instance, for event runs and, through [Recorder.Network], for
// network operations.
//
// Recording (StartEvent, EndEvent, RecordRetry and the [Network] methods)
// takes constant time whatever the number of records retained, allocates
// nothing, and never waits for a publisher. A Recorder is safe for
// concurrent use. Create one with [NewRecorder]; the zero Recorder is not
// usable.
type Recorder struct {
	cfg   config
	net   Network
	clock clock

	events  *store.Table[eventRecord, eventTotals]
	network *store.Table[networkRecord, networkTotals]

	pubMu   sync.Mutex              // serializes changes of outlets
	outlets atomic.Pointer[outlets] // read on every record, copied on change
	closed  atomic.Bool
}

// NewRecorder returns a new Recorder configured by opts. It starts a
// goroutine for each publisher given with [WithPublishers], and none
// otherwise. Invalid options are reported together in one error.
func NewRecorder(opts ...Option) (*Recorder, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Recorder{cfg: cfg, clock: newClock()}
	r.net.r = r
	r.events = store.NewTable(cfg.maxEvents, cfg.maxPending, eventFuncs, (*eventTotals).init)
	r.network = store.NewTable[networkRecord, networkTotals](cfg.maxNetworkOps, cfg.maxPending, networkFuncs, nil)
	r.outlets.Store(&outlets{})
	if err := r.addPublishers("with publishers", cfg.publishers); err != nil {
		r.Close(context.Background()) // not reached: newConfig checked them
		return nil, err
	}
	r.cfg.publishers = nil
	return r, nil
}

// Network returns the Network that records network operations into r.
func (r *Recorder) Network() *Network { return &r.net }

// AddPublisher attaches p: from now on it receives every record that
// finishes, through a queue and a goroutine of its own (or on the recording
// path if it is a [SyncPublisher]). A [*CompositePublisher] is attached as
// its members, so that each has its own queue, retries and stats. If p is an
// [Attacher], its Attach method is called first.
//
// A publisher is attached to a Recorder once: it would otherwise be called
// from two goroutines at once and closed twice. So AddPublisher refuses a p
// that is already attached (the same pointer, or an equal value), or one
// that a CompositePublisher holds twice, with an error wrapping
// [ErrDuplicatePublisher] that names it:
//
//	telemetry: add publisher: publisher already attached "elasticsearch"
//
// Two publishers with the same name, such as two Elasticsearch publishers,
// are two publishers: the second is named "elasticsearch#2" in
// [PublisherStats].
//
// It also returns an error wrapping [ErrNilPublisher] if p is nil, or a nil
// pointer (map, func or channel) of a publisher type, such as a nil
// *CompositePublisher, or holds one; or [ErrClosed]. When it returns an
// error, it has attached nothing, not even a member of p.
func (r *Recorder) AddPublisher(p Publisher) error {
	return r.addPublishers("add publisher", []Publisher{p})
}

// addPublishers attaches pubs, all of them or, with an error naming the
// call op, none.
func (r *Recorder) addPublishers(op string, pubs []Publisher) error {
	pubs, err := flatten(pubs)
	if err != nil {
		return callError(op, err)
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	if r.closed.Load() {
		return callError(op, ErrClosed)
	}
	set := *r.outlets.Load()
	for _, p := range pubs {
		for _, o := range set.all {
			if same(o.pub, p) {
				return callError(op, duplicate(o.name))
			}
		}
	}
	for _, p := range pubs {
		r.attach(&set, p)
	}
	r.outlets.Store(&set)
	return nil
}

// attach makes the outlet of p, adds it to set and starts its worker.
// The caller holds r.pubMu and stores set once every publisher of the
// call is attached.
func (r *Recorder) attach(set *outlets, p Publisher) {
	base := publisherName(p)
	name := base
	for n, taken := 2, true; taken; n++ {
		taken = false
		for _, o := range set.all {
			if o.name == name {
				taken = true
				name = label.Value(base + "#" + strconv.Itoa(n))
				break
			}
		}
	}
	if a, ok := p.(Attacher); ok {
		a.Attach(r)
	}
	o := newOutlet(name, p, r, len(set.queued))
	if !o.sync {
		// The buffers exist before any recorder can see the outlet.
		r.events.AddOut(r.cfg.queueSize)
		r.network.AddOut(r.cfg.queueSize)
		go o.run(Batch{}, nil)
	}
	set.all = append(slices.Clip(set.all), o)
	if o.sync {
		set.sync = append(slices.Clip(set.sync), o)
	} else {
		set.queued = append(slices.Clip(set.queued), o)
	}
}

// flatten returns the publishers that attaching pubs attaches, in order:
// each of them, a [CompositePublisher] replaced by its members. It returns
// an error wrapping [ErrNilPublisher] for a nil one, or
// [ErrDuplicatePublisher] for one given twice.
func flatten(pubs []Publisher) ([]Publisher, error) {
	var out []Publisher
	var walk func([]Publisher) error
	walk = func(pubs []Publisher) error {
		for _, p := range pubs {
			if isNil(p) {
				return nilPublisher(p)
			}
			if c, ok := p.(*CompositePublisher); ok {
				if err := walk(c.pubs); err != nil {
					return err
				}
				continue
			}
			for _, q := range out {
				if same(p, q) {
					return duplicate(publisherName(p))
				}
			}
			out = append(out, p)
		}
		return nil
	}
	return out, walk(pubs)
}

// same reports whether a and b are the same publisher: equal values of one
// type, such as the same pointer. Values that cannot be compared (a struct
// holding a slice, say) are never the same.
func same(a, b Publisher) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) &&
		reflect.ValueOf(a).Comparable() && reflect.ValueOf(b).Comparable() && a == b
}

// duplicate returns the error for the publisher named name given twice.
func duplicate(name string) error {
	return &valueError{err: ErrDuplicatePublisher, value: strconv.Quote(name)}
}

// outlets are the outlets of a Recorder's publishers: all of them, in the
// order they were attached, and the same split by how records reach them.
type outlets struct {
	all, sync, queued []*outlet
}

// Flush waits until every record that finished before the call has been
// delivered to (or dropped by) every publisher, and each publisher that is a
// [Flusher] has flushed. It returns ctx.Err() if ctx ends first, the
// publishers' Flush errors joined, or [ErrClosed] after Close: also when
// Close stopped a publisher's goroutine before it took this Flush, or cut
// short the publisher's Flush in progress.
func (r *Recorder) Flush(ctx context.Context) error {
	if r.closed.Load() {
		return callError("flush", ErrClosed)
	}
	err := r.flush(ctx)
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return cerr // ctx ended first: ctx.Err() itself, not joined
	}
	return err
}

func (r *Recorder) flush(ctx context.Context) error {
	outs := r.outlets.Load().all
	errs := make([]error, len(outs))
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Go(func() { errs[i] = o.flush(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops recording, delivers what is buffered, stops the publishers'
// goroutines and closes every publisher that is a [Closer]. After Close,
// recording calls, Flush and AddPublisher return [ErrClosed]; queries and
// the report keep working on what was recorded.
//
// If ctx ends first, Close cuts short the publish attempts in progress, a
// publisher's Flush in progress (that Flush then returns [ErrClosed]) and
// the waits between attempts, drops what is still queued, and returns
// ctx.Err() as soon as each publisher has returned from the call it was in
// (at once for a publisher that honours its ctx, as a Publisher must).
// Either way, when Close returns, every record handed to a queued publisher
// is counted in its [PublisherStats] as published or dropped (Queued is 0),
// each publisher that dropped records has logged one warning with their
// number by reason, and the goroutines have exited. A queued publisher's
// Close never runs while another of its methods does; a [SyncPublisher]'s
// may, for a run that ends while Close runs (see SyncPublisher).
//
// A second call returns [ErrClosed]. Close is safe to call from several
// goroutines.
func (r *Recorder) Close(ctx context.Context) error {
	r.pubMu.Lock()
	first := r.closed.CompareAndSwap(false, true)
	r.pubMu.Unlock()
	if !first {
		return callError("close", ErrClosed)
	}
	err := r.flush(ctx)
	outs := r.outlets.Load().all
	errs := make([]error, len(outs)+1)
	errs[0] = err
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Go(func() { errs[i+1] = o.close(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}
