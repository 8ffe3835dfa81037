//go:build !amd64

package flowtable

func prefetch(addr uintptr) {}
