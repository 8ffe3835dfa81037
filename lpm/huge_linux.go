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
func adviseHuge[T uint16 | uint32 | uint64](s []T) {
	const huge = 2 << 20
	n := uintptr(cap(s)) * unsafe.Sizeof(s[:1][0])
	if n < 2*huge {
		return
	}
	base := unsafe.Pointer(unsafe.SliceData(s))
	p := uintptr(base)
	lo := (p + huge - 1) &^ (huge - 1)
	hi := (p + n) &^ (huge - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, lo-p)), hi-lo), unix.MADV_HUGEPAGE)
}
