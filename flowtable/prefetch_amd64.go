package flowtable

// prefetch hints the CPU to load the cache line at addr. It never faults and
// never reads for the Go memory model, so it is not a data race.
//
//go:noescape
func prefetch(addr uintptr)

// prefetchN prefetches the n addresses at p: one call for a whole pass over
// a burst instead of one per key (a Go call to assembly spills every live
// register around it).
//
//go:noescape
func prefetchN(p *uintptr, n int)
