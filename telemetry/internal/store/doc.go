// Package store is the storage engine of package telemetry: where a
// Recorder keeps the pending and recently finished runs of one kind of
// record (event runs, network operations), the exact totals over them, and
// the finished records waiting for each queued publisher. It imports the
// standard library only, and knows little of what a record holds: R is the
// record type, T the totals type, both the caller's, and [Funcs] tell it a
// record's start, end, duration and failure. R must begin with its string
// fields, at most three, and hold no other pointer; [NewTable] panics
// otherwise. That lets the ring keep records where the garbage collector
// does not look (see Memory below).
//
// # Layout
//
// A [Table] has two parts, each under locks of its own:
//
//   - Shards hold the runs of the task ids whose hash picks them. A
//     shard's open-addressing index holds each pending record itself in
//     the slot of its task id, with its retries; starting a run takes the
//     shard's lock and writes one slot. Ending it takes the same lock,
//     reads that slot, which the start left in the cache, and appends the
//     finished record to the shard's batch of up to 64, counts it in the
//     shard's Totals and hands it to the delivery buffers described below,
//     all under that one lock. A table whose capacity is below 4,096
//     records has one shard; one of 4,096 or more has up to 16, each
//     standing for at least 2,048 records of capacity. Each shard holds the limit of pending runs
//     divided by their number, rounded up ([TooManyPending]).
//     A run thus costs two locks, its start's and its end's, whatever the
//     number of shards, and two goroutines share a lock only when their
//     task ids fall in the same shard.
//   - The ring holds the retained finished records. A shard moves its batch
//     into it, under the table's lock, when the batch is full or a query
//     comes; a table of one shard moves each record into the ring as soon
//     as it ends, under the shard's lock, which then guards the ring. When the
//     ring is full, each new record evicts the oldest, so the table holds
//     exactly its capacity however many shards record; with one shard
//     records enter in end order and eviction is strictly oldest first,
//     with several in batches, so oldest first within a batch's span.
//     Beside the records the ring keeps their durations in a dense array
//     (slow records are found by scanning 8 bytes a record), the sequence
//     numbers of the failed ones (found without reading the others), and an
//     index of the latest run of each task id that only queries bring up to
//     date (recording never pays for it).
//
// Recording allocates nothing once the shards' indexes, the ring's blocks
// (allocated 1,024 records at a time, with their slabs) and the buffers
// have grown to their steady size. A task id is hashed once per call.
//
// # Memory
//
// The ring holds no pointers, so that the garbage collector neither marks
// its records nor follows their strings: a program whose Recorder retains
// 100,000 records would otherwise pay for marking them in every
// collection, whatever it allocates. A block of the ring is one byte array
// holding, for each record, a fixed slot (the task id's hash, the end, and
// where each string is) followed by the record's plain fields, copied as
// bytes; the durations in a dense array; and two byte slabs for the
// strings. A record moved into the ring has its task id and strings copied
// into the block's current slab, except a string equal to the one the
// previous record of the block had in the same field (an event name, a
// pipeline id), which is shared. When the ring comes back to a block's
// first slot, every record that used the other slab has been overwritten,
// so that slab is emptied and takes the strings of the new pass.
//
// Reading a record back copies its strings out of the slabs: a query copies
// those of the records it returns into one allocation of its own, so that
// what it returns never shares memory that the ring reuses. A [Copy], which
// the JSON report takes, copies the retained records and their blocks'
// slabs as they are, in a few large moves, into memory of its own that
// holds no pointers either. The pending runs, the batches and the delivery
// buffers hold records as they are, pointers included: they are few.
//
// # Queries
//
// [Table.Locked] locks every shard and the ring, in that order (the order
// recording takes them in), moves every batch into the
// ring, and hands a [View] to its caller: one consistent snapshot, in which
// a run is pending or finished, never neither. Results come oldest end
// first, sorting positions and keys, not records: a selection in order
// already costs one pass, a small one nearly in order is put in order in
// place, and any other is grouped by shard (the ring holds each shard's
// records in about end order) and the sorted runs that leaves are merged
// (see orderByEnd). A Copy is sorted after the locks are released.
//
// # Delivery buffers
//
// This is the one place where the storage engine and delivery meet. Each
// shard also holds one buffer per queued publisher, its "slot" (slots are
// numbered in the order of the [Table.AddOut] calls). AddOut(q) gives each
// shard's buffer room for q divided by the number of shards, rounded up.
// The coupling is this:
//
//   - A recorder that ends a run already holds its shard's lock to finish
//     the run and count it. Under that same lock it appends the finished
//     record to every queued publisher's buffer of that shard with
//     [Shard.Offer]. Handing a record to delivery thus costs no lock,
//     channel or allocation of its own. A full buffer refuses the record,
//     and the caller counts the drop; Offer also reports when a buffer has
//     become half full, and every 256 records after that, so that the
//     caller can hurry that publisher's worker.
//   - A publisher's worker takes its records with [Table.SwapOut]: it locks
//     one shard at a time only to swap the buffer for an empty slice of its
//     own (the one it emptied in its previous round), then converts and
//     sends the records with no lock held. [Table.Queued] counts what waits.
//   - Because SwapOut takes each shard's lock in turn, every Offer made
//     under that lock lands either before the swap of its shard or after
//     it. The telemetry package's Close relies on this: it sets its closed
//     flag before the worker's last SwapOut, and a recorder checks the flag
//     again under the shard lock before it offers, so that no record is
//     left in a buffer after the last swap.
//
// So a publisher's queue is not a channel but its buffers in every shard,
// and the records of different shards reach its worker in no particular
// order. When the worker runs, how often it swaps and how drops are counted
// are the business of the delivery code in package telemetry; this package
// only keeps the buffers bounded and the swap cheap.
//
// # Concurrency
//
// A Table's methods are safe for concurrent use, except that calls to
// [Table.AddOut] are serialized by the caller and only one goroutine swaps
// out a slot. A Shard's fields and methods are used only while it is
// locked (by [Table.Acquire], or inside [Table.Locked]).
package store
