// Package store is the storage engine of package telemetry: where a
// Recorder keeps the pending and recently finished runs of one kind of
// record (event runs, network operations), the exact totals over them, and
// the finished records waiting for each queued publisher. It imports the
// standard library only, and knows nothing of what a record holds: R is the
// record type, T the totals type, both the caller's.
//
// # Partitions
//
// A [Table] is split into 1 to 16 partitions (a power of two), chosen by a
// seeded maphash of the task id: [Table.Part] hashes a task id once and
// returns its partition with the hash, which every [Runs] method then takes,
// so no call hashes twice. Each [Partition] has its own mutex, so recorders
// on different task ids rarely wait for each other. A table has one
// partition until it retains at least 4,096 records, and doubles the count
// while each partition would still retain at least 2,048.
//
// # Capacity, eviction and the pending limit
//
// The capacities of the partitions add up exactly to the table's capacity
// (the remainder of the division goes one each to the first partitions).
// Each partition evicts its own oldest finished run when a new one arrives
// and its ring is full, and counts it ([Runs.Evicted]); with several
// partitions the table as a whole evicts approximately oldest first, with
// one partition strictly. The limit of pending runs is split the same way,
// rounded up, and enforced per partition ([TooManyPending]).
//
// Within a partition, pending runs live in a slab and finished runs in a
// ring allocated in blocks of 1,024; an open-addressing index keyed by the
// task id's hash finds each (one for pending runs, one for the latest
// finished run of each task id). Records move by value, so recording
// allocates nothing once the slab, the index and the ring blocks have grown
// to their steady size. Queries lock every partition at once
// ([Table.Locked]) and merge the partitions' rings, each in end order, into
// one list oldest end first.
//
// # Delivery buffers
//
// This is the one place where the storage engine and delivery meet. Each
// partition also holds one buffer per queued publisher, its "slot" (slots
// are numbered in the order of the [Table.AddOut] calls). AddOut(q) gives
// each partition's buffer room for q divided by the number of partitions,
// rounded up, so a publisher can have about q records of a table waiting.
// The coupling is this:
//
//   - A recorder that ends a run already holds the partition's lock to move
//     the run from the slab to the ring and to count it in Totals. Under
//     that same lock it appends the finished record to every queued
//     publisher's buffer of that partition with [Partition.Offer]. Handing a
//     record to delivery thus costs no lock, channel or allocation of its
//     own. A full buffer refuses the record, and the caller counts the drop;
//     Offer also reports when a buffer has just become half full, so that
//     the caller can hurry that publisher's worker.
//   - A publisher's worker takes its records with [Table.SwapOut]: it locks
//     one partition at a time only to swap the buffer for an empty slice of
//     its own (the one it emptied in its previous round), then converts and
//     sends the records with no lock held. [Table.Queued] counts what waits.
//   - Because SwapOut takes each partition's lock in turn, every Offer made
//     under that lock lands either before the swap of its partition or
//     after it. The telemetry package's Close relies on this: it sets its
//     closed flag before the worker's last SwapOut, and a recorder checks
//     the flag again under the partition lock before it offers, so that no
//     record is left in a buffer after the last swap.
//
// So a publisher's queue is not a channel but its buffers in every
// partition, and the records of different partitions reach its worker in
// no particular order. When the worker runs, how often it swaps and how
// drops are counted are the business of the delivery code in package
// telemetry; this package only keeps the buffers bounded and the swap cheap.
//
// # Concurrency
//
// A Table's methods are safe for concurrent use, except that calls to
// [Table.AddOut] are serialized by the caller and only one goroutine swaps
// out a slot. A Partition's fields and methods, and the Runs in it, are
// used only while the Partition is locked, either by [Partition.Lock] or
// inside [Table.Locked].
package store
