//go:build linux

package lpm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge asks the kernel to back the 2 MiB-aligned middle of s with
// transparent huge pages: a full table's node and leaf arrays span many
// megabytes, and random lookups would otherwise miss the TLB on most of
// them. It is advice; errors are ignored.
//
// It then touches every page of s's capacity (s is fresh: a new array
// about to be filled), so that the page faults, and the zeroing of a
// huge page (~2 MiB) that comes with each, are taken here, in the rare
// operation that allocated the array (compaction, a regrowth copy), and
// not one by one in the ordinary updates that append into it afterwards,
// where they made the update latency tail.
func adviseHuge[T uint16 | uint32 | uint64](s []T) {
	const huge = 2 << 20
	n := uintptr(cap(s)) * unsafe.Sizeof(s[:1][0])
	if n < 2*huge {
		return
	}
	defer prefault(s)
	base := unsafe.Pointer(unsafe.SliceData(s))
	p := uintptr(base)
	lo := (p + huge - 1) &^ (huge - 1)
	hi := (p + n) &^ (huge - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, lo-p)), hi-lo), unix.MADV_HUGEPAGE)
}

// prefault writes a zero into each 4 KiB page of s's capacity beyond its
// length (which the caller has just allocated, so those words are zero).
func prefault[T uint16 | uint32 | uint64](s []T) {
	step := 4096 / int(unsafe.Sizeof(s[:1][0]))
	all := s[:cap(s)]
	for i := len(s); i < len(all); i += step {
		all[i] = 0
	}
}
