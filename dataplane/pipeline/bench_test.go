package pipeline

import (
	"runtime"

	"golang.org/x/sys/unix"
	"net/netip"
	"testing"
)

const benchBurst = 32

// benchVXLAN measures packets/ns through VNI classification, LPM, stateless
// NAT and VXLAN re-encapsulation. Each iteration restores the received bytes
// (a ~114-byte copy per packet, as a NIC's DMA would have written them) and
// processes one burst; b.N counts packets, so ns/op and allocs/op are per
// packet.
func benchVXLAN(b *testing.B, internet []string) { benchVXLANTables(b, internet, false, 1) }

// benchVXLANTables is benchVXLAN; with stateful, a's route to b's
// 10.2.0.0/24 masquerades onto a pool instead (stateful NAT, 1024
// established sessions once the check burst has run). The packets come
// from sources hosts of a (10.1.0.5 and the next ones): with more than
// one, consecutive packets are different flows, as many clients of one
// server are, and no forwarding memo can serve them.
func benchVXLANTables(b *testing.B, internet []string, stateful bool, sources int) {
	tables := peeredTables(internet)
	if stateful {
		tables = masqTables()
	}
	_, w, _ := newTestPipeline(b, tables, Config{NATSessions: 1 << 16})
	// Learn the destinations: b's host and e's next hop announce themselves.
	run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(b, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
	if internet != nil {
		run(w, 1, bufOf(vxlanFrame(vtepE, 300, arpFrame(b, 1, macE, "100.64.0.1", [6]byte{}, "100.64.0.2")), 0))
	}

	var dsts []string
	if stateful {
		dsts = []string{"10.2.0.7"}
	} else if internet == nil {
		dsts = []string{"192.168.2.7"}
	} else {
		step := max(1, len(internet)/1024)
		for i := 0; i < len(internet); i += step {
			p := netip.MustParsePrefix(internet[i])
			dsts = append(dsts, p.Addr().Next().String())
		}
	}
	n := 1024
	pristine := make([][]byte, n)
	for i := range pristine {
		h := 5 + i%sources
		src := netip.AddrFrom4([4]byte{10, 1, byte(h >> 8), byte(h)})
		mac := macA // each client its own MAC
		if sources > 1 {
			mac[4], mac[5] = byte(h>>8), byte(h)
		}
		inner := udpFrame(b, mac, gwMAC0, src.String(), dsts[i%len(dsts)], uint16(1024+i), 53, 64, 64)
		pristine[i] = vxlanFrame(vtepA, 100, inner)
	}
	bufs := make([]*Buf, n)
	for i := range bufs {
		bufs[i] = bufOf(pristine[i], 0)
	}
	// Check the path once: every packet must be forwarded.
	var out Output
	check := bufs[:benchBurst]
	if stateful {
		check = bufs // every session created before the measurement
	}
	for i := 0; i < len(check); i += benchBurst {
		w.ProcessBurst(2, check[i:i+benchBurst], &out)
	}
	for i, x := range check {
		if x.Verdict != VerdictTx {
			b.Fatalf("packet %d: verdict %v, drops %v", i, x.Verdict, w.C.DropsByName())
		}
	}
	if internet == nil && !stateful {
		// Sanity: re-encapsulated to b's VTEP with NAT applied.
		d := bufs[0].Bytes()
		if got := netip.AddrFrom4([4]byte(d[30:34])); got.String() != vtepB {
			b.Fatalf("outer destination %v, want %s", got, vtepB)
		}
		if src, dst := netip.AddrFrom4([4]byte(d[64+12:64+16])), netip.AddrFrom4([4]byte(d[64+16:64+20])); src.String() != "172.16.0.5" || dst.String() != "10.2.0.7" {
			b.Fatalf("inner %v -> %v, want 172.16.0.5 -> 10.2.0.7", src, dst)
		}
	}
	measureBursts(b, w, bufs, pristine)
}

// benchBursts checks that every packet of pristine is forwarded, then
// measures them as measureBursts does.
func benchBursts(b *testing.B, w *Worker, pristine [][]byte) {
	bufs := make([]*Buf, len(pristine))
	for i := range bufs {
		bufs[i] = bufOf(pristine[i], 0)
	}
	var out Output
	for i := 0; i < len(bufs); i += benchBurst {
		w.ProcessBurst(2, bufs[i:i+benchBurst], &out)
	}
	for i, x := range bufs {
		if x.Verdict != VerdictTx {
			b.Fatalf("packet %d: verdict %v, drops %v", i, x.Verdict, w.C.DropsByName())
		}
	}
	measureBursts(b, w, bufs, pristine)
}

// measureBursts processes the packets of pristine (a power of two of
// them) in bursts of benchBurst, b.N packets in all, restoring each
// packet's received bytes first, and reports CPU ns and allocations per
// packet. No packet may be dropped.
func measureBursts(b *testing.B, w *Worker, bufs []*Buf, pristine [][]byte) {
	b.ReportAllocs()
	// On a shared machine wall time includes waiting for a core: report the
	// thread's own CPU time per packet too.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out Output
	n := len(pristine)
	cpu0 := threadCPU()
	b.ResetTimer()
	batch := make([]*Buf, benchBurst)
	now := int64(3)
	for done, j := 0, 0; done < b.N; done += benchBurst {
		for k := range batch {
			x := bufs[j]
			copy(x.Mem[Headroom:], pristine[j])
			x.Off, x.Len = Headroom, len(pristine[j])
			batch[k] = x
			j = (j + 1) & (n - 1)
		}
		out.Extra = out.Extra[:0]
		w.ProcessBurst(now, batch, &out)
	}
	b.StopTimer()
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/pkt")
	if d := w.C.Verdicts[VerdictDrop]; d != 0 {
		b.Fatalf("%d drops: %v", d, w.C.DropsByName())
	}
}

func BenchmarkPipelineVXLANNATSmallTable(b *testing.B) { benchVXLAN(b, nil) }

// BenchmarkPipelineVXLANStatefulNAT: the same path with the pipeline's own
// stateful NAT (1024 established sessions) instead of the stateless one.
func BenchmarkPipelineVXLANStatefulNAT(b *testing.B) { benchVXLANTables(b, nil, true, 1) }

// BenchmarkPipelineVXLANNATManySources: the small-table path with 1024
// sources in turn toward the one destination (every packet its own
// stateless source translation).
func BenchmarkPipelineVXLANNATManySources(b *testing.B) { benchVXLANTables(b, nil, false, 1024) }

func BenchmarkPipelineVXLANNATInternetTable(b *testing.B) {
	p := internetPrefixes(b)
	if p == nil {
		b.Skip("shared/data/internet-prefixes.txt.gz not found above the package directory")
	}
	benchVXLAN(b, p)
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkReferenceMACSwap is the yardstick measured beside the pipeline in
// the same run (the machine is shared, so absolute figures drift): the same
// harness (restore ~114 received bytes per packet, bursts of 32) with the
// least a forwarder can do, swapping the Ethernet addresses, like DPDK's
// l2fwd / testpmd macswap.
func BenchmarkReferenceMACSwap(b *testing.B) {
	n := 1024
	pristine := make([][]byte, n)
	bufs := make([]*Buf, n)
	for i := range pristine {
		pristine[i] = vxlanFrame(vtepA, 100, udpFrame(b, macA, gwMAC0, "10.1.0.5", "192.168.2.7", uint16(1024+i), 53, 64, 64))
		bufs[i] = bufOf(pristine[i], 0)
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ResetTimer()
	batch := make([]*Buf, benchBurst)
	for done, j := 0, 0; done < b.N; done += benchBurst {
		for k := range batch {
			x := bufs[j]
			copy(x.Mem[Headroom:], pristine[j])
			x.Off, x.Len = Headroom, len(pristine[j])
			batch[k] = x
			j = (j + 1) & (n - 1)
		}
		for _, x := range batch {
			d := x.Mem[x.Off : x.Off+x.Len]
			var t [6]byte
			copy(t[:], d[0:6])
			copy(d[0:6], d[6:12])
			copy(d[6:12], t[:])
			x.Verdict, x.OutPort = VerdictTx, x.InPort
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/pkt")
}

// BenchmarkPipelineVXLANNATManyClientsReturn is the way back of
// ManySources: b's server (10.2.0.7) answers 1024 clients of a, each
// packet toward another one of their exposed addresses (172.16.0.x,
// translated back to 10.1.0.x), each client a neighbour of its own.
func BenchmarkPipelineVXLANNATManyClientsReturn(b *testing.B) {
	_, w, _ := newTestPipeline(b, peeredTables(nil), Config{})
	const n = 1024
	client := func(i int) (a, exposed string) {
		h := 5 + i
		return netip.AddrFrom4([4]byte{10, 1, byte(h >> 8), byte(h)}).String(), netip.AddrFrom4([4]byte{172, 16, byte(h >> 8), byte(h)}).String()
	}
	for i := range n {
		a, _ := client(i)
		mac := macA
		mac[4], mac[5] = byte(i>>8), byte(i)
		run(w, 1, bufOf(vxlanFrame(vtepA, 100, arpFrame(b, 1, mac, a, [6]byte{}, "10.1.0.1")), 0))
	}
	pristine := make([][]byte, n)
	for i := range pristine {
		_, exposed := client(i)
		pristine[i] = vxlanFrame(vtepB, 200, udpFrame(b, macB, gwMAC0, "10.2.0.7", exposed, 53, uint16(1024+i), 64, 64))
	}
	benchBursts(b, w, pristine)
}
