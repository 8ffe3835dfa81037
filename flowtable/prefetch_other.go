//go:build !amd64

package flowtable

func prefetch(addr uintptr) {}

func prefetchN(p *uintptr, n int) {}
