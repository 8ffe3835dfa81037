//go:build cgo && dpdk

package dpdk

/*
#include "pg_dpdk.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// NewBurst allocates a burst of capacity n in C memory. Close frees it.
func NewBurst(n int) (*Burst, error) {
	if n <= 0 || n > 65535 {
		return nil, fmt.Errorf("burst size %d out of range 1..65535", n)
	}
	arr := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0))))
	if arr == nil {
		return nil, fmt.Errorf("burst of %d: %w", n, errNoMem)
	}
	return &Burst{arr: arr, cap: n}, nil
}

// Close frees the array (not the mbufs in it).
func (b *Burst) Close() {
	if b.arr != nil {
		C.free(b.arr)
		b.arr, b.n, b.cap = nil, 0, 0
	}
}

func (b *Burst) c() **C.struct_rte_mbuf { return (**C.struct_rte_mbuf)(b.arr) }

// u is the array's address as an integer for the hot-path helpers (C
// memory: nothing for the garbage collector to track).
func (b *Burst) u() C.uintptr_t { return C.uintptr_t(uintptr(b.arr)) }

// FreeMbufs frees every mbuf of the burst in one call and empties it.
func (b *Burst) FreeMbufs() {
	if b.n > 0 {
		C.pg_pktmbuf_free_bulk(b.u(), C.uint(b.n))
		b.n = 0
	}
}

// NewPktmbufPool creates a pktmbuf pool of n mbufs (best n = 2^k-1) with a
// per-lcore cache and dataRoom bytes of buffer (headroom included) on
// NUMA socket socket (-1: any).
func NewPktmbufPool(name string, n, cache, dataRoom, socket int) (*Mempool, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	p := C.pg_pool_create(cname, C.uint(n), C.uint(cache), C.uint16_t(dataRoom), C.int(socket))
	if p == nil {
		return nil, fmt.Errorf("mbuf pool %q of %d x %d bytes: %w", name, n, dataRoom, rteErr())
	}
	return &Mempool{p: unsafe.Pointer(p), name: name}, nil
}

func (p *Mempool) c() *C.struct_rte_mempool { return (*C.struct_rte_mempool)(p.p) }

// Close frees the pool. Every mbuf must be back in it.
func (p *Mempool) Close() {
	if p.p != nil {
		C.rte_mempool_free(p.c())
		p.p = nil
	}
}

// InUse is the number of mbufs taken from the pool (rte_mempool_in_use_count):
// held by drivers' rings, by workers, or leaked.
func (p *Mempool) InUse() int { return int(C.rte_mempool_in_use_count(p.c())) }

// Avail is the number of free mbufs, per-lcore caches included.
func (p *Mempool) Avail() int { return int(C.rte_mempool_avail_count(p.c())) }

// Size is the pool's capacity.
func (p *Mempool) Size() int { return int(p.c().size) }

// Alloc takes one mbuf, reset, with the default headroom; nil when empty.
// One cgo call: for the slow path.
func (p *Mempool) Alloc() *Mbuf { return (*Mbuf)(unsafe.Pointer(C.pg_pktmbuf_alloc(p.c()))) }

// AllocBulk fills b to its capacity, all or nothing.
func (p *Mempool) AllocBulk(b *Burst) error {
	if rc := C.pg_pktmbuf_alloc_bulk(p.c(), b.c(), C.uint(b.cap)); rc != 0 {
		return fmt.Errorf("mbuf pool %q: alloc %d: %w", p.name, b.cap, errnoErr(rc))
	}
	b.n = b.cap
	return nil
}

// Free returns m (all its segments) to its pool. One cgo call: for the slow
// path; bursts use Burst.FreeMbufs.
func (m *Mbuf) Free() { C.pg_pktmbuf_free((*C.struct_rte_mbuf)(unsafe.Pointer(m))) }
