package lpm

// prefetchN hints the CPU to load the cache lines at the n addresses at p.
// One call covers a whole level of a burst: a Go call into assembly spills
// the live registers, which one call per address would pay 32 times. A
// prefetch never faults and is no read for the Go memory model, so an
// address past the end of an array is harmless.
//
//go:noescape
func prefetchN(p *uintptr, n int)
