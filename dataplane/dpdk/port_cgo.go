//go:build cgo && dpdk

package dpdk

/*
#include "pg_dpdk.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"unsafe"
)

// Probe attaches the device described by devargs ("net_af_packet0,iface=gw0",
// "net_tap0,iface=pg0", or a PCI address "0000:00:08.0[,opts]") and returns
// its ethdev port. A device already attached (given to the EAL with --vdev
// or -a) is found rather than probed twice.
func Probe(devargs string) (PortID, error) {
	name, _, _ := strings.Cut(devargs, ",")
	if p, err := PortByName(name); err == nil {
		return p, nil
	}
	c := C.CString(devargs)
	defer C.free(unsafe.Pointer(c))
	if rc := C.rte_dev_probe(c); rc != 0 && !errors.Is(errnoErr(rc), syscall.EEXIST) {
		return 0, fmt.Errorf("probe device %q: %w", devargs, errnoErr(rc))
	}
	p, err := PortByName(name)
	if err != nil {
		return 0, fmt.Errorf("probe device %q: %w", devargs, err)
	}
	return p, nil
}

// PortByName returns the port of an attached device by its name (the vdev
// name before the first comma, or the PCI address).
func PortByName(name string) (PortID, error) {
	c := C.CString(name)
	defer C.free(unsafe.Pointer(c))
	var id C.uint16_t
	if rc := C.rte_eth_dev_get_port_by_name(c, &id); rc != 0 {
		return 0, fmt.Errorf("no port named %q: %w", name, errnoErr(rc))
	}
	return PortID(id), nil
}

// Info returns the driver's limits and capabilities.
func (p PortID) Info() (PortInfo, error) {
	var pi C.struct_pg_port_info
	if rc := C.pg_port_info(C.uint16_t(p), &pi); rc != 0 {
		return PortInfo{}, fmt.Errorf("port %d: info: %w", p, errnoErr(rc))
	}
	return PortInfo{
		Name:        C.GoString(&pi.name[0]),
		Driver:      C.GoString(&pi.driver[0]),
		MaxRxQueues: int(pi.max_rx_queues),
		MaxTxQueues: int(pi.max_tx_queues),
		RSSOffloads: uint64(pi.rss_offloads),
		TxOffloads:  uint64(pi.tx_offload_capa),
		RxDescMin:   int(pi.rx_desc_min),
		RxDescMax:   int(pi.rx_desc_max),
		TxDescMin:   int(pi.tx_desc_min),
		TxDescMax:   int(pi.tx_desc_max),
		MaxRxPktLen: int(pi.max_rx_pktlen),
		MinMTU:      int(pi.min_mtu),
		MaxMTU:      int(pi.max_mtu),
		Socket:      int(pi.socket),
	}, nil
}

// Configure sets the queue counts; rssHF != 0 with more than one RX queue
// spreads flows over the queues by RSS on those hash types.
func (p PortID) Configure(nrxq, ntxq int, rssHF, txOffloads uint64) error {
	if rc := C.pg_port_configure(C.uint16_t(p), C.uint16_t(nrxq), C.uint16_t(ntxq), C.uint64_t(rssHF), C.uint64_t(txOffloads)); rc != 0 {
		return fmt.Errorf("port %d: configure %d rx / %d tx queues: %w", p, nrxq, ntxq, errnoErr(rc))
	}
	return nil
}

// AdjustDesc clamps descriptor counts to what the driver accepts.
func (p PortID) AdjustDesc(nrx, ntx int) (int, int, error) {
	r, t := C.uint16_t(nrx), C.uint16_t(ntx)
	if rc := C.rte_eth_dev_adjust_nb_rx_tx_desc(C.uint16_t(p), &r, &t); rc != 0 {
		return 0, 0, fmt.Errorf("port %d: adjust descriptors: %w", p, errnoErr(rc))
	}
	return int(r), int(t), nil
}

// SetupRxQueue sets up RX queue q with n descriptors filled from pool.
func (p PortID) SetupRxQueue(q, n int, socket int, pool *Mempool) error {
	if rc := C.rte_eth_rx_queue_setup(C.uint16_t(p), C.uint16_t(q), C.uint16_t(n), C.uint(socket), nil, pool.c()); rc != 0 {
		return fmt.Errorf("port %d: set up rx queue %d: %w", p, q, errnoErr(rc))
	}
	return nil
}

// SetupTxQueue sets up TX queue q with n descriptors.
func (p PortID) SetupTxQueue(q, n int, socket int) error {
	if rc := C.rte_eth_tx_queue_setup(C.uint16_t(p), C.uint16_t(q), C.uint16_t(n), C.uint(socket), nil); rc != 0 {
		return fmt.Errorf("port %d: set up tx queue %d: %w", p, q, errnoErr(rc))
	}
	return nil
}

// Start starts the port.
func (p PortID) Start() error {
	if rc := C.rte_eth_dev_start(C.uint16_t(p)); rc != 0 {
		return fmt.Errorf("port %d: start: %w", p, errnoErr(rc))
	}
	return nil
}

// Stop stops the port; its queues keep their configuration.
func (p PortID) Stop() error {
	if rc := C.rte_eth_dev_stop(C.uint16_t(p)); rc != 0 {
		return fmt.Errorf("port %d: stop: %w", p, errnoErr(rc))
	}
	return nil
}

// Close closes the port, releasing its queues (and the mbufs in them).
func (p PortID) Close() error {
	if rc := C.rte_eth_dev_close(C.uint16_t(p)); rc != 0 {
		return fmt.Errorf("port %d: close: %w", p, errnoErr(rc))
	}
	return nil
}

// Remove closes the port and detaches its device, so the same device string
// can be probed again later in this process.
func (p PortID) Remove() error {
	if rc := C.pg_port_remove(C.uint16_t(p)); rc != 0 {
		return fmt.Errorf("port %d: close and detach: %w", p, errnoErr(rc))
	}
	return nil
}

// SetPromiscuous turns promiscuous mode on or off.
func (p PortID) SetPromiscuous(on bool) error {
	var rc C.int
	if on {
		rc = C.rte_eth_promiscuous_enable(C.uint16_t(p))
	} else {
		rc = C.rte_eth_promiscuous_disable(C.uint16_t(p))
	}
	if rc != 0 {
		return fmt.Errorf("port %d: promiscuous %v: %w", p, on, errnoErr(rc))
	}
	return nil
}

// SetMTU sets the port's MTU.
func (p PortID) SetMTU(mtu int) error {
	if rc := C.rte_eth_dev_set_mtu(C.uint16_t(p), C.uint16_t(mtu)); rc != 0 {
		return fmt.Errorf("port %d: set mtu %d: %w", p, mtu, errnoErr(rc))
	}
	return nil
}

// MAC returns the port's MAC address.
func (p PortID) MAC() (net.HardwareAddr, error) {
	var b [6]byte
	if rc := C.pg_mac_get(C.uint16_t(p), (*C.uint8_t)(&b[0])); rc != 0 {
		return nil, fmt.Errorf("port %d: get mac: %w", p, errnoErr(rc))
	}
	return macString(b[:]), nil
}

// SetMAC sets the port's default MAC address.
func (p PortID) SetMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("port %d: set mac %v: not a 48-bit MAC", p, mac)
	}
	var b [6]byte
	copy(b[:], mac)
	if rc := C.pg_mac_set(C.uint16_t(p), (*C.uint8_t)(&b[0])); rc != 0 {
		return fmt.Errorf("port %d: set mac %v: %w", p, mac, errnoErr(rc))
	}
	return nil
}

// Link returns the link state without waiting.
func (p PortID) Link() (Link, error) {
	var speed C.uint32_t
	var up, full C.int
	if rc := C.pg_link(C.uint16_t(p), &speed, &up, &full); rc != 0 {
		return Link{}, fmt.Errorf("port %d: link: %w", p, errnoErr(rc))
	}
	return Link{Up: up != 0, SpeedMbps: uint32(speed), FullDuplex: full != 0}, nil
}

// Stats returns the port's counters with per-queue counters for the first
// nq queues (at most RTE_ETHDEV_QUEUE_STAT_CNTRS).
func (p PortID) Stats(nq int) (PortStats, error) {
	var s C.struct_rte_eth_stats
	if rc := C.rte_eth_stats_get(C.uint16_t(p), &s); rc != 0 {
		return PortStats{}, fmt.Errorf("port %d: stats: %w", p, errnoErr(rc))
	}
	nq = min(max(nq, 0), int(C.PG_MAX_QUEUE_STATS))
	st := PortStats{
		IPackets: uint64(s.ipackets), OPackets: uint64(s.opackets),
		IBytes: uint64(s.ibytes), OBytes: uint64(s.obytes),
		IMissed: uint64(s.imissed), IErrors: uint64(s.ierrors), OErrors: uint64(s.oerrors),
		RxNoMbuf:  uint64(s.rx_nombuf),
		QIPackets: make([]uint64, nq), QOPackets: make([]uint64, nq), QErrors: make([]uint64, nq),
	}
	for i := 0; i < nq; i++ {
		st.QIPackets[i] = uint64(s.q_ipackets[i])
		st.QOPackets[i] = uint64(s.q_opackets[i])
		st.QErrors[i] = uint64(s.q_errors[i])
	}
	return st, nil
}

// ResetStats zeroes the port's counters.
func (p PortID) ResetStats() error {
	if rc := C.rte_eth_stats_reset(C.uint16_t(p)); rc != 0 {
		return fmt.Errorf("port %d: reset stats: %w", p, errnoErr(rc))
	}
	return nil
}

// RxBurst receives up to b.Cap() packets from queue q into b (replacing its
// contents) and returns how many. One cgo call.
func (p PortID) RxBurst(q uint16, b *Burst) int {
	b.n = int(C.pg_rx_burst(C.uint16_t(p), C.uint16_t(q), b.u(), C.uint16_t(b.cap)))
	return b.n
}

// TxBurst sends b's packets on queue q, keeps the ones the queue did not take
// at the front of b, and returns how many were sent. One cgo call.
func (p PortID) TxBurst(q uint16, b *Burst) int {
	sent := int(C.pg_tx_burst(C.uint16_t(p), C.uint16_t(q), b.u(), C.uint16_t(b.n)))
	if sent > 0 && sent < b.n {
		arr := unsafe.Slice((*unsafe.Pointer)(b.arr), b.n)
		copy(arr, arr[sent:])
	}
	b.n -= sent
	return sent
}

// TxBurstFree sends b's packets on queue q, frees the ones the queue did not
// take, empties b and returns how many were sent. One cgo call.
func (p PortID) TxBurstFree(q uint16, b *Burst) int {
	if b.n == 0 {
		return 0
	}
	sent := int(C.pg_tx_burst_free(C.uint16_t(p), C.uint16_t(q), b.u(), C.uint16_t(b.n)))
	b.n = 0
	return sent
}
