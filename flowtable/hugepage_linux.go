package flowtable

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge asks the kernel to back [p, p+n) with transparent huge pages
// before it is first touched: with 4 KiB pages every random lookup in a
// table of millions also misses the TLB. Best effort: errors are ignored
// (THP disabled, or not page-aligned enough to matter).
func adviseHuge(p unsafe.Pointer, n uintptr) {
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + n) &^ (huge - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(p), n)
	_ = unix.Madvise(b[start-uintptr(p):end-uintptr(p)], unix.MADV_HUGEPAGE)
}
