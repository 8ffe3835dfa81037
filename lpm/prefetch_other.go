//go:build !amd64

package lpm

func prefetchN(p *uintptr, n int) {}
