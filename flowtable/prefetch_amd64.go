package flowtable

// prefetch hints the CPU to load the cache line at addr. It never faults and
// never reads for the Go memory model, so it is not a data race.
//
//go:noescape
func prefetch(addr uintptr)
