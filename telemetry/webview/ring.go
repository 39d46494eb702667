package webview

// A ring keeps the last len(buf) items added to it, overwriting the oldest.
// It is not safe for concurrent use: the collector guards it.
type ring[T any] struct {
	buf  []T
	next int // where the next item goes
	n    int // items held, at most len(buf)
}

func newRing[T any](capacity int) ring[T] { return ring[T]{buf: make([]T, capacity)} }

// add adds v, overwriting the oldest item when the ring is full.
func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// newest calls f on the items from the newest to the oldest, until f
// returns false.
func (r *ring[T]) newest(f func(*T) bool) {
	for i := range r.n {
		j := (r.next - 1 - i + 2*len(r.buf)) % len(r.buf)
		if !f(&r.buf[j]) {
			return
		}
	}
}
