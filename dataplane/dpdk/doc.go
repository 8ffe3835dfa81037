// Package dpdk is peergate's own thin cgo binding over DPDK 22.11 (Debian
// bookworm's libdpdk-dev, found with pkg-config): EAL init and cleanup,
// device probe, ethdev port setup and statistics, pktmbuf pools, and burst
// RX/TX over C arrays of mbuf pointers.
//
// Build tags: the binding is compiled with `-tags dpdk` (and cgo). Without
// the tag every function keeps its signature and returns an error wrapping
// ErrNotBuilt that says how to rebuild, so the rest of peergate builds on a
// machine without DPDK. The Makefile adds the tag when `pkg-config --exists
// libdpdk` succeeds.
//
// The hot path never makes one cgo call per packet: RxBurst and TxBurst are
// one call per burst, and packet bytes are read and written in place through
// Mbuf, whose accessors are plain Go loads and stores at offsets taken from
// the installed headers by the C compiler (offsetof), so a layout change in
// another DPDK build cannot go unnoticed.
//
// The EAL is process-wide by DPDK's design: Init can succeed once per
// process, and Cleanup ends DPDK for the process. Everything else here
// (ports, pools, bursts) is plain values owned by the caller. This package
// knows nothing of the pipeline or of peergate's configuration.
package dpdk
