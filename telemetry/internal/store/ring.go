package store

import (
	"fmt"
	"math"
	"reflect"
	"time"
	"unsafe"
)

// blockShift sets the size of the blocks the ring is allocated in (1024
// records). Allocating by block keeps a small Recorder small and a full one
// free of the slack that doubling a slice would leave.
const (
	blockShift = 10
	blockSize  = 1 << blockShift
	blockMask  = blockSize - 1
)

// maxStrings is the most string fields a record may have.
const maxStrings = 3

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

// A layout tells how the ring keeps a record of type R without pointers.
// R must begin with its string fields, at most maxStrings of them, and
// hold no other pointer: the ring copies the strings' bytes into byte
// slabs and the rest of the record, its plain part from plainOff on, as
// bytes.
type layout struct {
	nstr      int
	plainOff  uintptr
	plainSize uintptr
	stride    uintptr // the bytes of a record in a block: slot and plain part
}

// layoutOf returns the layout of R. It panics if R is not a struct that
// begins with at most maxStrings string fields and holds no other pointer:
// that is a mistake of the package that defines R, found when it creates
// its first table.
func layoutOf[R any]() layout {
	t := reflect.TypeFor[R]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("store: record type %v is not a struct", t))
	}
	n := 0
	for n < t.NumField() && t.Field(n).Type.Kind() == reflect.String {
		n++
	}
	if n > maxStrings {
		panic(fmt.Sprintf("store: record type %v has %d string fields, more than %d", t, n, maxStrings))
	}
	for i := n; i < t.NumField(); i++ {
		if f := t.Field(i); hasPointers(f.Type) {
			panic(fmt.Sprintf("store: field %s of record type %v holds pointers: only its leading string fields may", f.Name, t))
		}
	}
	off := uintptr(n) * unsafe.Sizeof("")
	return layout{nstr: n, plainOff: off, plainSize: t.Size() - off, stride: slotSize + (t.Size()-off+7)&^7}
}

// hasPointers reports whether a value of type t holds pointers.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	default:
		return true
	}
}

// strings returns the string fields of r.
func (l *layout) strings(r unsafe.Pointer) []string {
	return unsafe.Slice((*string)(r), l.nstr)
}

// stringField returns string field k of r, which has more than k: what
// strings gives, without making a slice, whose length unsafe.Slice checks.
func stringField(r unsafe.Pointer, k int) string {
	return *(*string)(unsafe.Add(r, uintptr(k)*unsafe.Sizeof("")))
}

// plain returns the bytes of the plain part of r.
func (l *layout) plain(r unsafe.Pointer) []byte {
	if l.plainSize == 0 { // a record of strings only: none of telemetry's is one
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(r, l.plainOff)), l.plainSize)
}

// copyPlain copies n bytes, which hold no pointers, from src to dst: 32
// at a time as words, inline, then the rest with copy, a call of the
// runtime's memmove. (A copy of an array through pointers is a memmove
// too.) A record's plain part is mostly a few times 32 bytes:
// eventRecord's is two. No pointer is made past the end of the bytes,
// which the race detector's pointer checks would report.
func copyPlain(dst, src unsafe.Pointer, n uintptr) {
	for n >= 32 {
		d, s := (*[4]uint64)(dst), (*[4]uint64)(src)
		d[0], d[1], d[2], d[3] = s[0], s[1], s[2], s[3]
		if n -= 32; n == 0 {
			return
		}
		dst, src = unsafe.Add(dst, 32), unsafe.Add(src, 32)
	}
	if n > 0 {
		copy(unsafe.Slice((*byte)(dst), n), unsafe.Slice((*byte)(src), n))
	}
}

// A strRef locates a string in a block's slab: n bytes from off. The
// empty string has n == 0.
type strRef struct{ off, n uint32 }

// A slot is what the ring keeps of a record besides its plain bytes,
// which follow it in the block's memory. It holds no pointer.
type slot struct {
	hash uint64
	end  time.Duration
	task strRef
	strs [maxStrings]strRef
	gen  uint8 // the slab of its block that holds its strings
}

// slotSize is the size of a slot, rounded up so that the plain bytes that
// follow it, and the next slot, stay 8-byte aligned.
const slotSize = (unsafe.Sizeof(slot{}) + 7) &^ 7

// A block holds blockSize records of the ring, in memory that the garbage
// collector does not scan: each record's slot followed by its plain part,
// stride bytes a record (so that writing a record touches few cache
// lines), their durations in a dense array, and their strings' bytes in
// two slabs. The records written in the ring's current pass over the
// block keep their strings in slabs[gen], those of the pass before in the
// other slab; when the ring comes back to the block's first slot, every
// record of the pass before last has been overwritten, so that slab is
// emptied and takes the new pass's strings. A slab grows as a pass needs
// and keeps its memory for the next ones.
type block struct {
	recs  []byte // blockSize records of stride bytes
	durs  *[blockSize]time.Duration
	slabs [2][]byte // each to its capacity; used says how much holds strings
	used  [2]int
	gen   uint8
}

// at returns the slot of record j of the block, 0 <= j < blockSize, and
// its plain bytes.
func (b *block) at(j int, lay *layout) (*slot, []byte) {
	s := b.slotAt(j, lay)
	return s, unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(s), slotSize)), lay.stride-slotSize)
}

// slotAt returns the slot of record j of the block, which its plain bytes
// follow, for a caller that needs no slice of them.
func (b *block) slotAt(j int, lay *layout) *slot {
	return (*slot)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b.recs)), uintptr(j)*lay.stride))
}

// put copies s into the block's current slab and returns where it is.
// The slab's offsets are 32 bits: a string that would take the slab past
// 4 GiB, which would take 1,024 records of 4 MiB of strings each, is cut
// to what fits.
func (b *block) put(s string) strRef {
	sl, n := b.slabs[b.gen], b.used[b.gen]
	if len(s) > math.MaxUint32-n {
		s = s[:math.MaxUint32-n]
	}
	if len(sl)-n >= len(s) {
		copy(sl[n:], s)
	} else {
		sl = append(sl[:n], s...)
		b.slabs[b.gen] = sl[:cap(sl)]
	}
	b.used[b.gen] = n + len(s)
	return strRef{off: uint32(n), n: uint32(len(s))}
}

// view returns the string ref locates in slab gen, a view of the slab's
// bytes: valid while the table stays locked, as the slab is reused.
func (b *block) view(gen uint8, ref strRef) string {
	if ref.n == 0 { // only task ids are viewed, never empty in telemetry: kept for the bounds check below
		return ""
	}
	sl := b.slabs[gen]
	_ = sl[ref.off+ref.n-1] // in bounds, checked once
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(sl)), ref.off)), ref.n)
}

// A ring holds the retained finished records of a table, in the order they
// were flushed from the shards, and evicts the oldest when a new one
// arrives and it is full. It keeps them without pointers (see [block]), so
// that the garbage collector does not mark them: a program that retains
// many records does not pay for them in every collection. Beside the
// records it keeps what lets queries answer without reading them all: the
// duration of each record in a dense array (slow records are found by
// scanning 8 bytes per record), the sequence numbers of the failed ones,
// and the index of the latest finished run of each task id, brought up to
// date only when a query needs it. It is used only under its table's lock
// or, in a table of one shard, that shard's.
type ring[R any] struct {
	lay      layout
	capacity int
	blocks   []*block
	next     int    // slot the next record goes to
	ended    uint64 // records ever stored; the next sequence number
	evicted  uint64 // records evicted to make room

	// last holds, for each string field, the last string stored in the
	// current slab of the block being written, and where: a record with
	// the same string (an event name, a pipeline id) refers to those
	// bytes instead of copying them again. It is emptied when the ring
	// starts a pass over a block.
	last [maxStrings]struct {
		s   string
		ref strRef
	}

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
		lay:      layoutOf[R](),
		capacity: capacity,
		blocks:   make([]*block, nb),
	}
}

// retained returns the number of records retained.
func (g *ring[R]) retained() int { return int(min(g.ended, uint64(g.capacity))) }

// oldest returns the sequence number of the oldest retained record.
func (g *ring[R]) oldest() uint64 { return g.ended - uint64(g.retained()) }

// slot returns the slot of ring position i and its block.
func (g *ring[R]) slot(i int) (*block, *slot) {
	b := g.blocks[i>>blockShift]
	return b, b.slotAt(i&blockMask, &g.lay)
}

// push stores e as the newest record, evicting the oldest if the ring is
// full. end is its end, dur its duration and failed whether it failed.
func (g *ring[R]) push(e *Entry[R], end, dur time.Duration, failed bool) {
	i := g.next
	b, j := g.blocks[i>>blockShift], i&blockMask
	if b == nil {
		b = &block{
			recs: make([]byte, blockSize*g.lay.stride),
			durs: new([blockSize]time.Duration),
		}
		g.blocks[i>>blockShift] = b
	}
	if j == 0 {
		// A new pass over the block: every record that used the other
		// slab has been overwritten since, so its memory takes the new
		// pass's strings. (Allocating a new slab for each pass instead,
		// so that queries could return views of the slabs, costs
		// recording more than the copies cost queries.)
		b.gen ^= 1
		b.used[b.gen] = 0
		clear(g.last[:])
	}
	s := b.slotAt(j, &g.lay)
	s.hash, s.end, s.gen = e.hash, end, b.gen
	s.task = b.put(e.TaskID)
	for k := range min(g.lay.nstr, maxStrings) { // min: no bounds checks below
		switch v, last := stringField(unsafe.Pointer(&e.Rec), k), &g.last[k]; {
		case v == "":
			s.strs[k] = strRef{}
		case sameString(v, last.s):
			s.strs[k] = last.ref
		default:
			s.strs[k] = b.put(v)
			last.s, last.ref = v, s.strs[k]
		}
	}
	copyPlain(unsafe.Add(unsafe.Pointer(s), slotSize), unsafe.Add(unsafe.Pointer(&e.Rec), g.lay.plainOff), g.lay.plainSize)
	b.durs[j] = dur
	if g.ended >= uint64(g.capacity) {
		g.evicted++
	}
	if failed {
		g.addFailed(g.ended)
	}
	g.ended++
	if g.next++; g.next == g.capacity {
		g.next = 0
	}
}

// sameString reports whether a == b, without calling the runtime to
// compare their bytes when they share them, as the same field of
// successive records (an event name from a constant) mostly does, and
// the task id a caller gives to start a run and to end it.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// read writes the record at ring position i, which must hold one, into
// e, field by field (for a caller whose e is on the heap anyway, a copy of
// the whole record from get would cost more). Its strings are copies in a;
// with a nil arena they are views of the ring's memory instead, valid only
// until the table is unlocked, for a caller that keeps none of them.
func (g *ring[R]) read(i int, a *arena, e *Entry[R]) {
	b := g.blocks[i>>blockShift]
	s, plain := b.at(i&blockMask, &g.lay)
	sl := b.slabs[s.gen&1]
	e.hash = s.hash
	copy(g.lay.plain(unsafe.Pointer(&e.Rec)), plain)
	strs := g.lay.strings(unsafe.Pointer(&e.Rec))
	if a == nil {
		e.TaskID = slabString(sl, s.task)
		for k := range strs {
			strs[k] = slabString(sl, s.strs[k])
		}
		return
	}
	e.TaskID = a.copy(sl, s.task)
	for k := range strs {
		strs[k] = a.copyField(sl, s.strs[k], k)
	}
}

// get returns the record at ring position i, which must hold one, with
// its strings copied in a. It builds the record in a variable of its own,
// on the stack, so that setting its strings costs no write barriers while
// the garbage collector marks.
func (g *ring[R]) get(i int, a *arena) (e Entry[R]) {
	b := g.blocks[i>>blockShift]
	s, plain := b.at(i&blockMask, &g.lay)
	sl := b.slabs[s.gen&1]
	e.hash = s.hash
	copy(g.lay.plain(unsafe.Pointer(&e.Rec)), plain)
	strs := g.lay.strings(unsafe.Pointer(&e.Rec))
	e.TaskID = a.copy(sl, s.task)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(sl)))
	for k := range strs {
		ref := s.strs[k]
		if ref.n == 0 {
			continue
		}
		// As a.copyField does, written out here, where the compiler sees
		// that e is on the stack.
		if l := &a.last[k]; l.from == base+uintptr(ref.off) && l.n == int(ref.n) {
			strs[k] = unsafe.String(&a.buf[l.off], l.n)
			continue
		}
		strs[k] = a.copy(sl, ref)
		a.last[k].from, a.last[k].off, a.last[k].n = base+uintptr(ref.off), a.n-int(ref.n), int(ref.n)
	}
	return e
}

// hasTask reports whether the record at ring position i is a run of
// taskID.
func (g *ring[R]) hasTask(i int, taskID string) bool {
	b, s := g.slot(i)
	return int(s.task.n) == len(taskID) && b.view(s.gen, s.task) == taskID
}

// sameTask reports whether the records at ring positions i and j are runs
// of the same task id.
func (g *ring[R]) sameTask(i, j int) bool {
	bi, si := g.slot(i)
	bj, sj := g.slot(j)
	return bi.view(si.gen, si.task) == bj.view(sj.gen, sj.task)
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

// eachFailed calls f with the position of every retained failed record,
// oldest first.
func (g *ring[R]) eachFailed(f func(i int)) {
	low := g.oldest()
	for _, seq := range g.failed[g.failedHead:] {
		if seq >= low {
			f(int(seq % uint64(g.capacity)))
		}
	}
}

// eachSlower calls f with the position of every retained record that took
// longer than d, oldest first, reading only the durations of the others,
// eight at a time.
func (g *ring[R]) eachSlower(d time.Duration, f func(i int)) {
	g.segments(func(lo, hi int) {
		durs := g.blocks[lo>>blockShift].durs[lo&blockMask : (hi-1)&blockMask+1]
		j := 0
		for ; j+8 <= len(durs); j += 8 {
			q := (*[8]time.Duration)(durs[j : j+8])
			if max(max(q[0], q[1]), max(q[2], q[3]), max(max(q[4], q[5]), max(q[6], q[7]))) > d {
				for k := j; k < j+8; k++ {
					if durs[k] > d {
						f(lo + k)
					}
				}
			}
		}
		for ; j < len(durs); j++ {
			if durs[j] > d {
				f(lo + j)
			}
		}
	})
}

// each calls f with the position of every retained record, oldest first.
func (g *ring[R]) each(f func(i int)) {
	g.segments(func(lo, hi int) {
		for i := lo; i < hi; i++ {
			f(i)
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

// lookup returns the position of the latest retained run of taskID, the
// newest in the ring, bringing the index of latest runs up to date first.
func (g *ring[R]) lookup(h uint64, taskID string) (int, bool) {
	g.catchUp()
	r, ok := g.latest.get(h, func(r int32) bool { return g.hasTask(int(r), taskID) })
	return int(r), ok
}

// catchUp indexes the records stored since the last call. When more than
// the ring holds arrived since, or stale entries make up more than half of
// the index, it rebuilds the index from the retained records instead; so
// the index never holds more than about twice the capacity, and its upkeep
// costs O(1) per record, paid by the queries that need it rather than by
// recording. A run replaces the entry of its task id: the runs of a task
// id all end in its shard, one after the other, so they reach the ring in
// the order they were recorded, the latest last, whatever end times their
// callers gave them (an end given with EndEventAt may be earlier than
// that of the run before).
func (g *ring[R]) catchUp() {
	from := g.indexed
	if g.ended-from > uint64(g.capacity) || g.latest.n > 2*g.capacity {
		clear(g.latest.slots)
		g.latest.n = 0
		from = g.oldest()
	}
	for seq := from; seq < g.ended; seq++ {
		r := int32(seq % uint64(g.capacity))
		_, s := g.slot(int(r))
		i := g.latest.find(s.hash, func(o int32) bool { return g.sameTask(int(o), int(r)) })
		if i < 0 {
			g.latest.insert(s.hash, r)
		} else {
			g.latest.slots[i].ring = r
		}
	}
	g.indexed = g.ended
}

// An arena holds copies of the strings of records read from a ring, in
// chunks shared by many strings, so that a query copies them with a few
// allocations rather than one per string. A string keeps its whole chunk
// alive. The zero arena is ready to use; a nil *arena makes views instead
// of copies (see [ring.read]). Copying a string writes no pointer but the
// string itself (the chunk is set when it is allocated, and what the
// fields last copied were is kept as offsets), so that copies cost no
// write barriers while the garbage collector marks.
type arena struct {
	buf []byte // the current chunk, to its capacity
	n   int    // the bytes of buf in use
	// last holds, for each string field, where in a slab the last string
	// copied for it was, and where its copy is in buf, so that a field
	// repeated from record to record (an event name) is copied once.
	last [maxStrings]struct {
		from   uintptr // the address of its bytes in the slab; 0 if none
		off, n int
	}
}

// arenaChunk is the size of the chunks of an arena, unless [arena.grow]
// asks for one of another size.
const arenaChunk = 16 << 10

// grow makes room for n more bytes in the current chunk.
func (a *arena) grow(n int) {
	if a != nil && len(a.buf)-a.n < n {
		a.chunk(n)
	}
}

// chunk starts a chunk of n bytes.
func (a *arena) chunk(n int) {
	a.buf, a.n = make([]byte, n), 0
	a.last = [maxStrings]struct {
		from   uintptr
		off, n int
	}{}
}

// copy returns a copy in a of the string ref locates in the slab sl.
func (a *arena) copy(sl []byte, ref strRef) string {
	if ref.n == 0 { // its callers skip empty strings, and task ids are never empty in telemetry
		return ""
	}
	src := sl[ref.off : ref.off+ref.n]
	// Not reached: every arena is grown first to what its copies take
	// (ring.size); kept so that an underestimate costs a chunk, not a panic.
	if len(a.buf)-a.n < len(src) {
		a.chunk(max(len(src), arenaChunk))
	}
	dst := a.buf[a.n : a.n+len(src)]
	copy(dst, src)
	a.n += len(src)
	return unsafe.String(&dst[0], len(dst))
}

// copyField returns a copy in a of the string ref locates in the slab sl,
// read from string field k: the copy made for the field before, if that
// was of the same bytes of the slab.
func (a *arena) copyField(sl []byte, ref strRef, k int) string {
	if ref.n == 0 {
		return ""
	}
	from := uintptr(unsafe.Pointer(unsafe.SliceData(sl))) + uintptr(ref.off)
	if l := &a.last[k]; l.from == from && l.n == int(ref.n) {
		return unsafe.String(&a.buf[l.off], l.n)
	}
	s := a.copy(sl, ref)
	a.last[k].from, a.last[k].off, a.last[k].n = from, a.n-len(s), len(s)
	return s
}

// size returns the bytes of the strings of the records at the ring
// positions sel, an upper bound of what copying them takes in an arena.
func (g *ring[R]) size(sel []int32) int {
	n := 0
	for _, i := range sel {
		_, s := g.slot(int(i))
		n += int(s.task.n)
		for _, r := range s.strs {
			n += int(r.n)
		}
	}
	return n
}
