// Package flowtable is the concurrent session table of stateful NAT: a flat,
// preallocated, pointer-free table of sessions, each reachable from two keys
// (the flow as its inside host sends it, and the reply as it arrives from the
// remote end at the public address), with aging by protocol state.
//
// Design, in the order the hot path meets it:
//   - One 64-bit hash per key (seeded, two multiply-fold rounds). Its top bits
//     choose a stripe (a lock and its own share of buckets and sessions), its
//     low 32 bits a bucket inside the stripe (multiply-shift, no power of two
//     needed) and its middle 32 bits a tag.
//   - Buckets are one cache line: 7 tags, 7 session indexes and an overflow
//     count (entries whose home bucket is this one or earlier and that were
//     placed further on). Lookups stop at the first bucket with no overflow,
//     so deletion needs no tombstones and churn never lengthens probes.
//   - Sessions live in one []session of 32-byte pointer-free records; the GC
//     never scans them. A session's slot belongs to the stripe of its forward
//     key, which keeps that stripe's free list local to its lock.
//   - Both directions of a session find the same record whatever goroutine
//     looks: the table is shared and striped. The forward and reverse entries
//     of a session usually sit in different stripes; creation and deletion
//     take both locks in stripe order, lookups take one. The mutable part of a
//     session (TCP flags, generation, deadline) is updated with atomics so the
//     two directions never need each other's lock.
//   - Burst lookups (LookupBurst) hash every key first and prefetch the
//     home buckets, then peek their tags without a lock (following overflow
//     chains, prefetched) to record and prefetch candidate sessions, then
//     validate each candidate against its key and the stripe's sequence
//     count: the memory misses of a burst overlap and no bucket is scanned
//     twice. Anything unusual falls back to the one-packet lookup.
//   - Stores made under a stripe lock are release stores (a plain MOV on
//     amd64), not sync/atomic's locked XCHG: the seqlock needs no more. A
//     bucket slot's change (sequence bump, stores, bump) is one assembly
//     call. The stripe lock itself is a spin lock released by such a store:
//     a locked release would wait for every store made under the lock.
//   - New sessions: PrepareNew draws the first port, hashes its reply key
//     and prefetches its bucket and the stripe's free slot for a whole
//     burst; CreateDrawn uses that draw. Sweep gathers expired sessions,
//     prefetches their buckets together, and frees a run of them in one
//     stripe under one hold of its lock.
//   - Aging: a deadline in whole seconds per session, computed from its
//     protocol state and the configured timeouts. Sweep examines a bounded
//     number of session slots per call (a shared cursor); it never scans the
//     whole table at once.
//
// The package knows sessions, tuples, ports and timeouts; it knows nothing of
// pools, configuration, packets, gRPC or DPDK (see package nat).
package flowtable
