package prefetch

import (
	"testing"
	"unsafe"
)

// The prefetches change no memory and must not fault, even on addresses a
// burst computes past the end of its arrays.
func TestPrefetchLeavesMemoryAlone(t *testing.T) {
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i)
	}
	base := uintptr(unsafe.Pointer(&buf[0]))
	addrs := []uintptr{base, base + 64, base + 4095, base + 1<<20, 0}
	for _, a := range addrs {
		Line(a)
	}
	Lines(&addrs[0], len(addrs))
	Lines(&addrs[0], 0)
	Lines(&addrs[0], -1)
	for i := range buf {
		if buf[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}
}

func BenchmarkLines32(b *testing.B) {
	buf := make([]uint64, 32*8)
	var addrs [32]uintptr
	for i := range addrs {
		addrs[i] = uintptr(unsafe.Pointer(&buf[i*8]))
	}
	b.ReportAllocs()
	for b.Loop() {
		Lines(&addrs[0], len(addrs))
	}
}
