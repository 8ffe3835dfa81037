//go:build !amd64

package prefetch

// Line is a no-op without the amd64 assembly.
func Line(addr uintptr) {}

// Lines is a no-op without the amd64 assembly.
func Lines(p *uintptr, n int) {}
