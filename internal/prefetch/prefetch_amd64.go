package prefetch

// Line hints the CPU to load the cache line at addr into every cache level.
//
//go:noescape
func Line(addr uintptr)

// Lines prefetches the n addresses stored at p (p[0], ..., p[n-1]).
//
//go:noescape
func Lines(p *uintptr, n int)
