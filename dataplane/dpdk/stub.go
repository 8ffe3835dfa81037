//go:build !cgo || !dpdk

package dpdk

import (
	"fmt"
	"net"
)

// Without the binding no mbuf can exist; these are DPDK 22.11's x86_64
// offsets so the shared accessors compile.
const (
	offBufAddr = 0
	offDataOff = 16
	offNbSegs  = 20
	offPort    = 22
	offPktLen  = 36
	offDataLen = 40
	offHash    = 44
	offBufLen  = 54
)

// Headroom is RTE_PKTMBUF_HEADROOM.
const Headroom = 128

// DefaultDataRoom is RTE_MBUF_DEFAULT_BUF_SIZE.
const DefaultDataRoom = 2048 + Headroom

func notBuilt(what string) error { return fmt.Errorf("dpdk: %s: %w", what, ErrNotBuilt) }

// Available reports whether this binary has the binding.
func Available() bool { return false }

// Init fails: the binary was built without DPDK.
func Init(args []string) error { return notBuilt("eal init") }

// Initialized is false without the binding.
func Initialized() bool { return false }

// Cleanup fails: the binary was built without DPDK.
func Cleanup() error { return notBuilt("eal cleanup") }

// RegisterThread fails: the binary was built without DPDK.
func RegisterThread() (int, error) { return -1, notBuilt("register thread") }

// TSCHz is 0 without the binding.
func TSCHz() uint64 { return 0 }

// UnregisterThread does nothing.
func UnregisterThread() {}

// LcoreID is -1 without the binding.
func LcoreID() int { return -1 }

// NewBurst fails: the binary was built without DPDK.
func NewBurst(n int) (*Burst, error) { return nil, notBuilt("burst") }

// Close does nothing.
func (b *Burst) Close() {}

// FreeMbufs empties b.
func (b *Burst) FreeMbufs() { b.n = 0 }

// NewPktmbufPool fails: the binary was built without DPDK.
func NewPktmbufPool(name string, n, cache, dataRoom, socket int) (*Mempool, error) {
	return nil, notBuilt("mbuf pool " + name)
}

// Close does nothing.
func (p *Mempool) Close() {}

// InUse is 0.
func (p *Mempool) InUse() int { return 0 }

// Avail is 0.
func (p *Mempool) Avail() int { return 0 }

// Size is 0.
func (p *Mempool) Size() int { return 0 }

// Alloc returns nil.
func (p *Mempool) Alloc() *Mbuf { return nil }

// AllocBulk fails: the binary was built without DPDK.
func (p *Mempool) AllocBulk(b *Burst) error { return notBuilt("mbuf alloc") }

// Free does nothing.
func (m *Mbuf) Free() {}

// Probe fails: the binary was built without DPDK.
func Probe(devargs string) (PortID, error) { return 0, notBuilt("probe " + devargs) }

// PortByName fails: the binary was built without DPDK.
func PortByName(name string) (PortID, error) { return 0, notBuilt("port " + name) }

// Info fails: the binary was built without DPDK.
func (p PortID) Info() (PortInfo, error) { return PortInfo{}, notBuilt("port info") }

// Configure fails: the binary was built without DPDK.
func (p PortID) Configure(nrxq, ntxq int, rssHF, txOffloads uint64) error {
	return notBuilt("port configure")
}

// AdjustDesc fails: the binary was built without DPDK.
func (p PortID) AdjustDesc(nrx, ntx int) (int, int, error) { return 0, 0, notBuilt("port descriptors") }

// SetupRxQueue fails: the binary was built without DPDK.
func (p PortID) SetupRxQueue(q, n int, socket int, pool *Mempool) error {
	return notBuilt("rx queue")
}

// SetupTxQueue fails: the binary was built without DPDK.
func (p PortID) SetupTxQueue(q, n int, socket int) error { return notBuilt("tx queue") }

// Start fails: the binary was built without DPDK.
func (p PortID) Start() error { return notBuilt("port start") }

// Stop fails: the binary was built without DPDK.
func (p PortID) Stop() error { return notBuilt("port stop") }

// Close fails: the binary was built without DPDK.
func (p PortID) Close() error { return notBuilt("port close") }

// Remove fails: the binary was built without DPDK.
func (p PortID) Remove() error { return notBuilt("port remove") }

// SetPromiscuous fails: the binary was built without DPDK.
func (p PortID) SetPromiscuous(on bool) error { return notBuilt("promiscuous") }

// SetMTU fails: the binary was built without DPDK.
func (p PortID) SetMTU(mtu int) error { return notBuilt("mtu") }

// MAC fails: the binary was built without DPDK.
func (p PortID) MAC() (net.HardwareAddr, error) { return nil, notBuilt("mac") }

// SetMAC fails: the binary was built without DPDK.
func (p PortID) SetMAC(mac net.HardwareAddr) error { return notBuilt("mac") }

// Link fails: the binary was built without DPDK.
func (p PortID) Link() (Link, error) { return Link{}, notBuilt("link") }

// Stats fails: the binary was built without DPDK.
func (p PortID) Stats(nq int) (PortStats, error) { return PortStats{}, notBuilt("stats") }

// ResetStats fails: the binary was built without DPDK.
func (p PortID) ResetStats() error { return notBuilt("stats") }

// RxBurst receives nothing.
func (p PortID) RxBurst(q uint16, b *Burst) int { b.n = 0; return 0 }

// TxBurst sends nothing.
func (p PortID) TxBurst(q uint16, b *Burst) int { return 0 }

// TxBurstFree drops b.
func (p PortID) TxBurstFree(q uint16, b *Burst) int { b.n = 0; return 0 }
