package store

import "time"

// blockShift sets the size of the blocks the ring is allocated in (1024
// records). Allocating by block keeps a small Recorder small and a full one
// free of the slack that doubling a slice would leave.
const (
	blockShift = 10
	blockSize  = 1 << blockShift
	blockMask  = blockSize - 1
)

// An Entry is a record with its task id.
type Entry[R any] struct {
	// TaskID is the task id of the run.
	TaskID string
	// hash is the task id's hash, kept to index the entry without hashing
	// again; 0 in the delivery buffers, which have no index.
	hash uint64
	// Rec is the record of the run.
	Rec R
}

// A ring holds the retained finished records of a table, in the order they
// were flushed from the shards, and evicts the oldest when a new one
// arrives and it is full. Beside the records it keeps what lets queries
// answer without reading them all: the duration of each record in a dense
// array (slow records are found by scanning 8 bytes per record), the
// sequence numbers of the failed ones, and the index of the latest finished
// run of each task id, brought up to date only when a query needs it. It is
// used only under its table's lock or, in a table of one shard, that
// shard's.
type ring[R any] struct {
	capacity int
	blocks   []*[blockSize]Entry[R]
	durs     []*[blockSize]time.Duration
	next     int    // slot the next record goes to
	ended    uint64 // records ever stored; the next sequence number
	evicted  uint64 // records evicted to make room

	// failed holds the sequence numbers of failed records, oldest first,
	// from failed[failedHead]; those below the oldest retained one are
	// trimmed as records arrive.
	failed     []uint64
	failedHead int

	// latest maps a task id to the slot of its latest retained run. It
	// covers the records below sequence number indexed; an entry whose slot
	// has since been overwritten by another task id is stale, and is
	// recognized by comparing the task id.
	latest  index
	indexed uint64
}

func newRing[R any](capacity int) ring[R] {
	nb := (capacity + blockSize - 1) / blockSize
	return ring[R]{
		capacity: capacity,
		blocks:   make([]*[blockSize]Entry[R], nb),
		durs:     make([]*[blockSize]time.Duration, nb),
	}
}

// retained returns the number of records retained.
func (g *ring[R]) retained() int { return int(min(g.ended, uint64(g.capacity))) }

// oldest returns the sequence number of the oldest retained record.
func (g *ring[R]) oldest() uint64 { return g.ended - uint64(g.retained()) }

// slot returns ring slot i.
func (g *ring[R]) slot(i int) *Entry[R] { return &g.blocks[i>>blockShift][i&blockMask] }

// at returns the record with sequence number seq, which must be retained.
func (g *ring[R]) at(seq uint64) *Entry[R] { return g.slot(int(seq % uint64(g.capacity))) }

// push stores e as the newest record, evicting the oldest if the ring is
// full. dur is its duration and failed whether it failed.
func (g *ring[R]) push(e *Entry[R], dur time.Duration, failed bool) {
	*g.reserve() = *e
	g.commit(dur, failed)
}

// reserve returns the slot the next record goes to, to be written before
// [ring.commit] makes it the newest record; until then the slot may still
// hold the oldest record, which commit counts as evicted.
func (g *ring[R]) reserve() *Entry[R] {
	b := g.next >> blockShift
	if g.blocks[b] == nil {
		g.blocks[b] = new([blockSize]Entry[R])
		g.durs[b] = new([blockSize]time.Duration)
	}
	return &g.blocks[b][g.next&blockMask]
}

// commit makes the record written in the reserved slot the newest one,
// with its duration and whether it failed.
func (g *ring[R]) commit(dur time.Duration, failed bool) {
	if g.ended >= uint64(g.capacity) {
		g.evicted++
	}
	g.durs[g.next>>blockShift][g.next&blockMask] = dur
	if failed {
		g.addFailed(g.ended)
	}
	g.ended++
	if g.next++; g.next == g.capacity {
		g.next = 0
	}
}

// addFailed appends seq to the failed list, first trimming the evicted
// ones and moving the list to the front of its array when half of it is
// trimmed, so that the array never grows past the ring's capacity plus one.
func (g *ring[R]) addFailed(seq uint64) {
	low := seq + 1 - uint64(min(seq+1, uint64(g.capacity)))
	for g.failedHead < len(g.failed) && g.failed[g.failedHead] < low {
		g.failedHead++
	}
	if g.failedHead > 0 && g.failedHead >= len(g.failed)/2 {
		n := copy(g.failed, g.failed[g.failedHead:])
		g.failed = g.failed[:n]
		g.failedHead = 0
	}
	g.failed = append(g.failed, seq)
}

// eachFailed calls f on every retained failed record, oldest first.
func (g *ring[R]) eachFailed(f func(*Entry[R])) {
	low := g.oldest()
	for _, seq := range g.failed[g.failedHead:] {
		if seq >= low {
			f(g.at(seq))
		}
	}
}

// eachSlower calls f on every retained record that took longer than d,
// oldest first, reading only the durations of the others.
func (g *ring[R]) eachSlower(d time.Duration, f func(*Entry[R])) {
	g.segments(func(lo, hi int) {
		blk, durs := g.blocks[lo>>blockShift], g.durs[lo>>blockShift]
		for j := lo & blockMask; j <= (hi-1)&blockMask; j++ {
			if durs[j] > d {
				f(&blk[j])
			}
		}
	})
}

// each calls f on every retained record, oldest first.
func (g *ring[R]) each(f func(*Entry[R])) {
	g.segments(func(lo, hi int) {
		blk := g.blocks[lo>>blockShift]
		for j := lo & blockMask; j <= (hi-1)&blockMask; j++ {
			f(&blk[j])
		}
	})
}

// segments calls f with the ranges [lo, hi) of ring slots that hold the
// retained records, oldest first, each range within one block.
func (g *ring[R]) segments(f func(lo, hi int)) {
	n := g.retained()
	i := 0
	if g.ended > uint64(g.capacity) {
		i = g.next
	}
	for n > 0 {
		hi := min(i+n, g.capacity, (i|blockMask)+1)
		f(i, hi)
		n -= hi - i
		if i = hi; i == g.capacity {
			i = 0
		}
	}
}

// lookup returns the latest retained run of taskID, the one that ended
// last by end, bringing the index of latest runs up to date first.
func (g *ring[R]) lookup(h uint64, taskID string, end func(*R) time.Duration) (*Entry[R], bool) {
	g.catchUp(end)
	r, ok := g.latest.get(h, func(r int32) bool { return g.slot(int(r)).TaskID == taskID })
	if !ok {
		return nil, false
	}
	return g.slot(int(r)), true
}

// catchUp indexes the records stored since the last call. When more than
// the ring holds arrived since, or stale entries make up more than half of
// the index, it rebuilds the index from the retained records instead; so
// the index never holds more than about twice the capacity, and its upkeep
// costs O(1) per record, paid by the queries that need it rather than by
// recording. A run replaces the entry of its task id only if it ended no
// earlier than the run the entry holds. The runs of a task id all end in
// its shard, so they reach the ring in end order; the check keeps the
// index right even for records that would not.
func (g *ring[R]) catchUp(end func(*R) time.Duration) {
	from := g.indexed
	if g.ended-from > uint64(g.capacity) || g.latest.n > 2*g.capacity {
		clear(g.latest.slots)
		g.latest.n = 0
		from = g.oldest()
	}
	for seq := from; seq < g.ended; seq++ {
		r := int32(seq % uint64(g.capacity))
		e := g.slot(int(r))
		i := g.latest.find(e.hash, func(o int32) bool { return g.slot(int(o)).TaskID == e.TaskID })
		switch {
		case i < 0:
			g.latest.insert(e.hash, r)
		case end(&g.slot(int(g.latest.slots[i].ring)).Rec) <= end(&e.Rec):
			g.latest.slots[i].ring = r
		}
	}
	g.indexed = g.ended
}
