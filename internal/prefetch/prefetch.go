// Package prefetch issues software cache-line prefetches for the hot paths
// that overlap independent memory misses across a burst (lpm's burst
// lookups, flowtable's burst lookups and creations).
//
// Go has no prefetch intrinsic for user code, so these are small assembly
// functions on amd64 and no-ops elsewhere. A Go call into assembly spills
// the caller's live registers, which is why Lines takes a whole array of
// addresses: one call per pass over a burst instead of one per address.
// A prefetch never faults and is not a read for the Go memory model, so an
// address past the end of an array, or one another goroutine writes, is
// harmless.
package prefetch
