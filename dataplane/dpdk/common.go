package dpdk

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"unsafe"
)

// ErrNotBuilt is wrapped by every error of a binary built without the
// binding.
var ErrNotBuilt = errors.New("this binary was built without DPDK: install libdpdk-dev and pkg-config, then build with `go build -tags dpdk` (the Makefile does this when `pkg-config --exists libdpdk` succeeds)")

// ErrEAL is wrapped by the errors of Init when the EAL is not usable.
var ErrEAL = errors.New("dpdk eal")

// NoHugeArgs returns EAL arguments that work without hugepages and without
// PCI access, for tests, CI and vdev-only gateways: prefix must be unique
// per process (the EAL's runtime files are named after it). --in-memory is
// incompatible with --no-huge in 22.11, hence --no-shconf.
func NoHugeArgs(prefix string, memMB int) []string {
	return []string{"--no-huge", "-m", fmt.Sprint(memMB), "--no-pci", "--no-shconf",
		"--no-telemetry", "--file-prefix=" + prefix}
}

// RuntimeDir is the directory in which an EAL started with --file-prefix
// prefix keeps its runtime files, as DPDK 22.11's eal_create_runtime_dir
// names it: /var/run/dpdk/PREFIX for root, else under $XDG_RUNTIME_DIR (or
// /tmp).
func RuntimeDir(prefix string) string {
	base := "/var/run"
	if os.Geteuid() != 0 {
		base = os.Getenv("XDG_RUNTIME_DIR")
		if base == "" {
			base = "/tmp"
		}
	}
	return filepath.Join(base, "dpdk", prefix)
}

// RemoveRuntimeDir removes what an EAL process with this file prefix left
// in its runtime directory: rte_eal_cleanup in 22.11 leaves the directory
// (and, without --no-shconf, its config and fbarray files), so every test
// or benchmark run would leave one behind. Call it only for a prefix of a
// process you started and that has exited: a live primary's files are its
// multi-process state.
func RemoveRuntimeDir(prefix string) error {
	if prefix == "" || prefix != filepath.Base(prefix) || prefix == "." || prefix == ".." {
		return fmt.Errorf("dpdk: remove runtime dir: invalid file prefix %q", prefix)
	}
	if err := os.RemoveAll(RuntimeDir(prefix)); err != nil {
		return fmt.Errorf("dpdk: remove runtime dir: %w", err)
	}
	return nil
}

// PortID is an ethdev port number.
type PortID uint16

// PortInfo is what the driver reports about a port.
type PortInfo struct {
	Name, Driver             string
	MaxRxQueues, MaxTxQueues int
	RSSOffloads              uint64 // RTE_ETH_RSS_* the driver can hash on
	TxOffloads               uint64
	RxDescMin, RxDescMax     int
	TxDescMin, TxDescMax     int
	MaxRxPktLen              int
	MinMTU, MaxMTU           int
	Socket                   int
}

// Link is a port's link state.
type Link struct {
	Up         bool
	SpeedMbps  uint32
	FullDuplex bool
}

// PortStats mirrors struct rte_eth_stats, with per-queue counters cut to the
// queues in use.
type PortStats struct {
	IPackets, OPackets uint64
	IBytes, OBytes     uint64
	IMissed            uint64 // dropped by the hardware: RX ring full
	IErrors, OErrors   uint64
	RxNoMbuf           uint64
	QIPackets          []uint64
	QOPackets          []uint64
	QErrors            []uint64
}

// TxOffloadMbufFastFree is RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: valid when all
// mbufs sent on a queue come from one pool with refcount 1.
const TxOffloadMbufFastFree = 1 << 16

// RSS hash types (RTE_ETH_RSS_*) peergate asks for where the driver has them.
const (
	RSSIPv4           = 1 << 2
	RSSNonfragIPv4TCP = 1 << 4
	RSSNonfragIPv4UDP = 1 << 5
	RSSIPv6           = 1 << 8
	RSSNonfragIPv6TCP = 1 << 10
	RSSNonfragIPv6UDP = 1 << 11
	RSSIP             = RSSIPv4 | RSSIPv6
	RSSL4             = RSSNonfragIPv4TCP | RSSNonfragIPv4UDP | RSSNonfragIPv6TCP | RSSNonfragIPv6UDP
)

func macString(b []byte) net.HardwareAddr { return net.HardwareAddr(append([]byte(nil), b...)) }

// Mbuf is a struct rte_mbuf in DPDK memory. Its accessors are Go loads and
// stores at the C offsets (see offsets.go): no cgo call. Only single-segment
// mbufs are supported by the setters (peergate never enables RX scatter).
type Mbuf struct{ _ [0]byte }

func (m *Mbuf) at(off uintptr) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(m), off) }

// BufAddr is the start of the mbuf's data buffer (headroom included).
func (m *Mbuf) BufAddr() unsafe.Pointer { return *(*unsafe.Pointer)(m.at(offBufAddr)) }

// BufLen is the size of the data buffer.
func (m *Mbuf) BufLen() int { return int(*(*uint16)(m.at(offBufLen))) }

// DataOff is where the packet starts in the buffer.
func (m *Mbuf) DataOff() int { return int(*(*uint16)(m.at(offDataOff))) }

// DataLen is the length of this segment's data.
func (m *Mbuf) DataLen() int { return int(*(*uint16)(m.at(offDataLen))) }

// PktLen is the packet's length over all segments.
func (m *Mbuf) PktLen() int { return int(*(*uint32)(m.at(offPktLen))) }

// NbSegs is the number of segments.
func (m *Mbuf) NbSegs() int { return int(*(*uint16)(m.at(offNbSegs))) }

// Port is the input port set by the driver on RX.
func (m *Mbuf) Port() uint16 { return *(*uint16)(m.at(offPort)) }

// RSSHash is the hash the driver computed (valid when it offers RSS).
func (m *Mbuf) RSSHash() uint32 { return *(*uint32)(m.at(offHash)) }

// Buffer returns the whole data buffer, headroom included, in place.
func (m *Mbuf) Buffer() []byte { return unsafe.Slice((*byte)(m.BufAddr()), m.BufLen()) }

// Data returns the first segment's packet bytes, in place.
func (m *Mbuf) Data() []byte {
	off := m.DataOff()
	return unsafe.Slice((*byte)(unsafe.Add(m.BufAddr(), off)), m.DataLen())
}

// SetData sets a single-segment packet to Buffer()[off:off+n]: data_off,
// data_len and pkt_len. The caller keeps off+n within BufLen.
func (m *Mbuf) SetData(off, n int) {
	*(*uint16)(m.at(offDataOff)) = uint16(off)
	*(*uint16)(m.at(offDataLen)) = uint16(n)
	*(*uint32)(m.at(offPktLen)) = uint32(n)
}

// Prepend grows the packet by n bytes at the front (rte_pktmbuf_prepend)
// and returns the new start, or nil when the headroom is too small.
func (m *Mbuf) Prepend(n int) []byte {
	off := m.DataOff()
	if n > off {
		return nil
	}
	off -= n
	*(*uint16)(m.at(offDataOff)) = uint16(off)
	*(*uint16)(m.at(offDataLen)) += uint16(n)
	*(*uint32)(m.at(offPktLen)) += uint32(n)
	return unsafe.Slice((*byte)(unsafe.Add(m.BufAddr(), off)), n)
}

// Adj removes n bytes from the front of the packet (rte_pktmbuf_adj) and
// reports whether the segment was long enough.
func (m *Mbuf) Adj(n int) bool {
	if n > m.DataLen() {
		return false
	}
	*(*uint16)(m.at(offDataOff)) += uint16(n)
	*(*uint16)(m.at(offDataLen)) -= uint16(n)
	*(*uint32)(m.at(offPktLen)) -= uint32(n)
	return true
}

// Burst is a fixed-capacity C array of mbuf pointers, the unit of RxBurst
// and TxBurst. It lives in C memory so cgo passes it without checks; the
// owner (a worker's queue) reuses it for every burst.
type Burst struct {
	arr unsafe.Pointer // struct rte_mbuf *[cap]
	n   int
	cap int
}

func (b *Burst) slot(i int) *unsafe.Pointer {
	return (*unsafe.Pointer)(unsafe.Add(b.arr, uintptr(i)*unsafe.Sizeof(uintptr(0))))
}

// Len is the number of mbufs in the burst.
func (b *Burst) Len() int { return b.n }

// Cap is the burst's capacity.
func (b *Burst) Cap() int { return b.cap }

// At returns mbuf i; i must be below Len.
func (b *Burst) At(i int) *Mbuf { return (*Mbuf)(*b.slot(i)) }

// Push appends m and reports whether there was room.
func (b *Burst) Push(m *Mbuf) bool {
	if b.n == b.cap {
		return false
	}
	*b.slot(b.n) = unsafe.Pointer(m)
	b.n++
	return true
}

// Full reports whether Push would fail.
func (b *Burst) Full() bool { return b.n == b.cap }

// Reset forgets the burst's mbufs without freeing them.
func (b *Burst) Reset() { b.n = 0 }

// Mempool is a pktmbuf pool.
type Mempool struct {
	p    unsafe.Pointer // struct rte_mempool *
	name string
}

// Name is the pool's DPDK name.
func (p *Mempool) Name() string { return p.name }
