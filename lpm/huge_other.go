//go:build !linux

package lpm

func adviseHuge[T uint16 | uint32 | uint64](s []T) {}
