package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/peergate/peergate/dataplane/packet"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// tcpFrame is an Ethernet/IPv4/TCP frame (ACK, no options) of size bytes.
func tcpFrame(t testing.TB, src, dst [6]byte, sip, dip string, sp, dp uint16, ttl uint8, size int) []byte {
	h := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: 9, Protocol: layers.IPProtocolTCP, SrcIP: ip4(sip), DstIP: ip4(dip)}
	tc := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), ACK: true, Window: 1000}
	tc.SetNetworkLayerForChecksum(h)
	pl := make([]byte, max(0, size-54))
	return ser(t, &layers.Ethernet{SrcMAC: src[:], DstMAC: dst[:], EthernetType: layers.EthernetTypeIPv4}, h, tc, gopacket.Payload(pl))
}

// TestFastPathMatchesSlowPath runs the benchmark's VXLAN frame, and every
// one-byte mutation of its headers, through a worker with the VXLAN fast
// path and one without (noFast): verdicts, output bytes, generated packets
// and every counter must be identical, whichever path took each packet.
func TestFastPathMatchesSlowPath(t *testing.T) {
	tables := peeredTables(nil)
	_, fast, _ := newTestPipeline(t, tables, Config{})
	_, slow, _ := newTestPipeline(t, tables, Config{})
	slow.noFast = true
	good := vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 64))
	learn := vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1"))

	now := int64(1)
	step := func(name string, frames ...[]byte) {
		t.Helper()
		now++
		var outs [2]Output
		var bufs [2][]*Buf
		for k, w := range []*Worker{fast, slow} {
			for _, f := range frames {
				bufs[k] = append(bufs[k], bufOf(f, 0))
			}
			w.ProcessBurst(now, bufs[k], &outs[k])
		}
		for i := range bufs[0] {
			a, b := bufs[0][i], bufs[1][i]
			if a.Verdict != b.Verdict || a.OutPort != b.OutPort || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("%s: packet %d: fast %v port %d %x, slow %v port %d %x", name, i, a.Verdict, a.OutPort, a.Bytes(), b.Verdict, b.OutPort, b.Bytes())
			}
		}
		if len(outs[0].Extra) != len(outs[1].Extra) {
			t.Fatalf("%s: %d extra packets fast, %d slow", name, len(outs[0].Extra), len(outs[1].Extra))
		}
		for i := range outs[0].Extra {
			if a, b := outs[0].Extra[i], outs[1].Extra[i]; !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("%s: extra %d differs: fast %x, slow %x", name, i, a.Bytes(), b.Bytes())
			}
		}
		if fast.C != slow.C {
			t.Fatalf("%s: counters differ: fast drops %v events %v, slow drops %v events %v", name,
				fast.C.DropsByName(), fast.C.EventsByName(), slow.C.DropsByName(), slow.C.EventsByName())
		}
		for i := range fast.traffic.vpc {
			if fast.traffic.vpc[i] != slow.traffic.vpc[i] {
				t.Fatalf("%s: vpc %d traffic: fast %v, slow %v", name, i, fast.traffic.vpc[i], slow.traffic.vpc[i])
			}
		}
		for i := range fast.traffic.peer {
			if fast.traffic.peer[i] != slow.traffic.peer[i] {
				t.Fatalf("%s: peering %d traffic: fast %v, slow %v", name, i, fast.traffic.peer[i], slow.traffic.peer[i])
			}
		}
	}
	step("learn", learn)
	tx0 := fast.C.Verdicts[VerdictTx]
	step("warm", good, good)
	if fast.C.Verdicts[VerdictTx] != tx0+2 {
		t.Fatalf("warm-up not forwarded: %v", fast.C.DropsByName())
	}
	// Every header byte (outer and inner, through the inner UDP header and
	// its first payload byte), with a few values each, between good frames.
	for i := 0; i <= fastMin; i++ {
		for _, x := range []byte{0x01, 0x08, 0x10, 0x40, 0x80, 0xff} {
			m := append([]byte(nil), good...)
			m[i] ^= x
			step(fmt.Sprintf("byte %d ^ %#x", i, x), good, m, good)
		}
		for _, x := range []byte{0x00, 0xff} {
			m := append([]byte(nil), good...)
			m[i] = x
			step(fmt.Sprintf("byte %d = %#x", i, x), good, m, good)
		}
	}
	for n := 0; n <= len(good); n++ {
		step(fmt.Sprintf("truncated to %d", n), good, good[:n], good)
	}
	// TCP, whole and with the inner packet (and the outer one around it)
	// cut inside the TCP header.
	tcp := vxlanFrame(vtepA, 100, tcpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 64))
	step("tcp", good, tcp, good)
	for cut := 0; cut <= 20; cut += 4 {
		m := append([]byte(nil), tcp[:len(tcp)-10-cut]...)
		binary.BigEndian.PutUint16(m[16:], uint16(len(m)-14))
		binary.BigEndian.PutUint16(m[fastL3+2:], uint16(len(m)-fastL3))
		m[fastL3+10], m[fastL3+11] = 0, 0
		binary.BigEndian.PutUint16(m[fastL3+10:], ^packet.Fold(packet.Sum(m[fastL3:fastL3+20], 0)))
		step(fmt.Sprintf("tcp cut %d", cut), good, tcp, m, good)
	}
	// Other inner frames behind the same VTEP, VNI and MAC.
	for _, inner := range [][]byte{
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 1, 64),
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 1500),
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.1.0.1", 1024, 53, 64, 64),
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "203.0.113.9", 1024, 53, 64, 64),
		udpFrame(t, macA, gwMAC0, "10.9.0.5", "192.168.2.7", 1024, 53, 64, 64),
	} {
		step(fmt.Sprintf("inner %x", inner[26:34]), good, vxlanFrame(vtepA, 100, inner), good)
	}
	// Runs of fast packets from two VPCs in one burst, the classification
	// switching between them on the slow path: each run's reception is
	// counted toward its own port and VPC.
	fromB := vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "172.16.0.5", 1024, 53, 64, 64))
	step("two vpcs", good, good, fromB, fromB, fromB, good, good, fromB)
	if fast.traffic.vpc[1].Packets == 0 {
		t.Fatalf("VPC b's frames not counted: %v", fast.traffic.vpc)
	}
	if fast.C.Verdicts[VerdictTx] < 100 {
		t.Fatalf("only %d packets forwarded: the good frames were not", fast.C.Verdicts[VerdictTx])
	}
}

// TestForwardMemoKeepsPerPacketChecks sends packets of one flow, some of
// which must not be forwarded like the others (TTL expiring, too big,
// another destination), in one burst, where the later ones hit the
// forwarding memo the first one made, and checks each ends as it does when
// sent alone to a fresh worker.
func TestForwardMemoKeepsPerPacketChecks(t *testing.T) {
	tables := peeredTables(nil)
	tables.Vpcs[0].Routes[1].Actions[0].IngressFilter = 1 // UDP to port 53 only
	learn := vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1"))
	frames := [][]byte{
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1025, 53, 1, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1026, 53, 2, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1027, 53, 64, 9000)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.8", 1028, 53, 64, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.6", "192.168.2.7", 1029, 53, 64, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1030, 53, 64, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1031, 54, 64, 64)),
		vxlanFrame(vtepA, 100, tcpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1032, 53, 64, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1033, 53, 64, 64)),
	}
	want := burstMatchesAlone(t, tables, [][]byte{learn}, frames)
	if want[0].v != VerdictTx || want[1].drops["ttl_expired"] != 1 || want[3].v == VerdictTx || want[7].drops["filtered"] != 1 || want[8].drops["filtered"] != 1 {
		t.Errorf("the burst does not exercise the memo: alone %v", want)
	}
}

// TestBatchedDeliveryLookupsMatchPacketsAlone sends a burst of many
// destinations, from two VPCs, so that flush4 batches the delivery lookups
// (resolve4) of its stateless forwards, among them ones whose delivery
// lookup finds no route, ones without a destination translation, ones
// routed inside their own VPC or not at all, and checks each packet ends as
// it does when sent alone to a fresh worker.
func TestBatchedDeliveryLookupsMatchPacketsAlone(t *testing.T) {
	tables := peeredTables(nil)
	a := tables.Vpcs[0]
	a.Routes = append(a.Routes,
		// Translated to 10.3.0.0/24, which b does not deliver.
		&tablesv1.Route{Prefix: "192.168.3.0/24", Actions: fwd(1, func(x *tablesv1.Action) { x.DstNat = "10.3.0.0/24"; x.SrcNat = 1 })},
		// No destination translation.
		&tablesv1.Route{Prefix: "10.2.0.0/16", Actions: fwd(1, func(x *tablesv1.Action) { x.SrcNat = 1 })},
		// No translation at all.
		&tablesv1.Route{Prefix: "10.9.0.0/16", Actions: fwd(1, nil)},
		// The source translated only, delivered through next hops
		// (as toward an Internet table): one forwarding memo serves
		// every destination delivered alike.
		&tablesv1.Route{Prefix: "10.8.0.0/16", Actions: fwd(1, func(x *tablesv1.Action) { x.SrcNat = 1 })},
	)
	b := tables.Vpcs[1]
	b.LocalRoutes = append(b.LocalRoutes,
		&tablesv1.Route{Prefix: "10.9.0.0/16", Actions: deliver("10.2.0.7", 0)},
		&tablesv1.Route{Prefix: "10.8.0.0/16", Actions: deliver("10.2.0.7", 0)},
		&tablesv1.Route{Prefix: "10.8.9.0/24", Actions: deliver("10.2.0.9", 1)},
		&tablesv1.Route{Prefix: "10.8.10.0/24", Actions: deliver("10.2.0.7", 1)},
	)
	learn := [][]byte{
		vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")),
		vxlanFrame(vtepA, 100, arpFrame(t, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1")),
	}
	fromA := func(src, dst string, sp uint16, ttl uint8) []byte {
		return vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, src, dst, sp, 53, ttl, 64))
	}
	fromB := func(src, dst string, sp uint16) []byte {
		return vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, src, dst, sp, 53, 64, 64))
	}
	frames := [][]byte{
		fromA("10.1.0.5", "192.168.2.7", 1024, 64),
		fromA("10.1.0.5", "10.2.0.7", 1025, 64),
		fromA("10.1.0.5", "192.168.3.4", 1026, 64),
		fromA("10.1.0.5", "192.168.2.7", 1027, 1),
		fromA("10.1.0.5", "10.9.1.1", 1028, 64),
		fromA("10.1.0.5", "8.8.8.8", 1029, 64),
		fromA("10.1.0.6", "192.168.2.7", 1030, 64),
		fromA("10.1.0.5", "10.9.1.2", 1031, 64),
		fromA("10.1.0.5", "192.168.2.7", 1032, 64),
		fromB("10.2.0.7", "172.16.0.5", 2000),
		fromB("10.2.0.7", "172.16.0.6", 2001),
		fromB("10.2.0.7", "172.16.0.5", 2002),
		fromA("10.1.0.5", "10.2.0.7", 1033, 64),
		fromA("10.1.0.5", "192.168.3.5", 1034, 64),
		fromA("10.1.0.5", "10.8.1.1", 1035, 64),
		fromA("10.1.0.5", "10.8.1.2", 1036, 64),
		fromA("10.1.0.5", "10.8.1.3", 1037, 1),
		fromA("10.1.0.5", "10.8.9.1", 1038, 64),
		fromA("10.1.0.5", "10.8.1.4", 1039, 64),
		fromA("10.1.0.6", "10.8.1.5", 1040, 64),
		fromA("10.1.0.5", "10.8.1.6", 1041, 64),
		fromA("10.1.0.5", "10.8.10.1", 1042, 64),
		fromA("10.1.0.5", "10.8.1.7", 1043, 64),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.8.1.8", 1044, 53, 64, 9000)),
		vxlanFrame(vtepA, 100, tcpFrame(t, macA, gwMAC0, "10.1.0.5", "10.8.1.9", 1045, 53, 64, 64)),
		vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.8.1.10", 1046, 53, 2, 64)),
		fromA("10.1.0.5", "10.8.1.11", 1047, 64),
		// Delivered to the destination itself (no via): the memo of
		// the first serves only its destination.
		fromA("10.1.0.5", "10.2.0.7", 1048, 64),
		fromA("10.1.0.5", "10.2.0.8", 1049, 64),
	}
	want := burstMatchesAlone(t, tables, learn, frames)
	if want[0].v != VerdictTx || want[1].v != VerdictTx || want[2].drops["no_route"] != 1 || want[3].drops["ttl_expired"] != 1 ||
		want[4].v != VerdictTx || want[5].drops["no_route"] != 1 || want[9].v != VerdictTx ||
		want[14].v != VerdictTx || want[16].drops["ttl_expired"] != 1 || want[17].v == VerdictTx || want[23].v == VerdictTx || want[26].v != VerdictTx || want[28].v != VerdictHeld {
		t.Errorf("the burst does not exercise the batched lookups: alone %v", want)
	}
}

// burstResult is how a packet ended: verdict, the frame sent (hex; on the
// fabric with the outer IPv4 ID and checksum zeroed) and the drops it
// caused.
type burstResult struct {
	v     Verdict
	inner string
	drops map[string]uint64
}

// burstMatchesAlone sends frames in one burst to a worker that learned from
// the frames of learn, and each frame alone to a fresh such worker, and requires equal
// verdicts, bytes, counters and peering traffic; it returns the results of
// the frames sent alone.
func burstMatchesAlone(t *testing.T, tables *tablesv1.Tables, learn [][]byte, frames [][]byte) []burstResult {
	t.Helper()
	return burstMatchesAloneOn(t, tables, Config{}, learn, 0, frames)
}

// burstMatchesAloneOn is burstMatchesAlone with workers of configuration
// cfg and the frames of learn received on port learnPort. A frame sent out
// of a port other than 0 (the fabric, VXLAN) is compared whole, its
// Ethernet header and tags included.
func burstMatchesAloneOn(t *testing.T, tables *tablesv1.Tables, cfg Config, learn [][]byte, learnPort uint16, frames [][]byte) []burstResult {
	t.Helper()
	// The gateway's own addresses: the sources of the packets it generates.
	own := map[netip.Addr]bool{}
	for _, v := range tables.Vpcs {
		for _, a := range v.RouterIps {
			own[netip.MustParseAddr(a)] = true
		}
	}
	resultOf := func(w *Worker, b *Buf, drops0 map[string]uint64) burstResult {
		r := burstResult{v: b.Verdict, drops: map[string]uint64{}}
		if b.Verdict == VerdictTx && b.OutPort != 0 {
			r.inner = fmt.Sprintf("%x", b.Bytes())
		} else if b.Verdict == VerdictTx && b.Len > vxlanHdrs {
			// The IP ID (and so the checksum) of the outer header, and of
			// a packet the gateway generates (an ICMP error), count the
			// worker's packets; everything else is compared: the outer
			// addresses and ports, the inner Ethernet header, a forwarded
			// ICMP packet whole.
			in := append([]byte(nil), b.Bytes()...)
			in[18], in[19], in[24], in[25] = 0, 0, 0, 0
			if ip := in[vxlanHdrs:]; len(ip) >= 20 && ip[9] == 1 && own[netip.AddrFrom4([4]byte(ip[12:16]))] {
				ip[4], ip[5], ip[10], ip[11] = 0, 0, 0, 0
			}
			r.inner = fmt.Sprintf("%x", in)
		}
		for k, n := range w.C.DropsByName() {
			if d := n - drops0[k]; d != 0 {
				r.drops[k] = d
			}
		}
		return r
	}
	want := make([]burstResult, len(frames))
	// Every counter of the burst's worker must be those of a worker that
	// only learned (c0) plus what each packet added alone: with n packets,
	// burst + (n-1)*c0 == the sum of the lone workers' counters.
	var c0, sumAlone Counters
	var peer0, peerAlone []Traffic
	for i, f := range frames {
		_, w, _ := newTestPipeline(t, tables, cfg)
		for _, l := range learn {
			run(w, 1, bufOf(l, learnPort))
		}
		c0, peer0 = w.C, append([]Traffic(nil), w.traffic.peer...)
		b := bufOf(f, 0)
		run(w, 2, b)
		want[i] = resultOf(w, b, nil)
		sumAlone.Add(&w.C)
		peerAlone = addTraffic(peerAlone, w.traffic.peer)
	}
	_, w, _ := newTestPipeline(t, tables, cfg)
	for _, l := range learn {
		run(w, 1, bufOf(l, learnPort))
	}
	var bufs []*Buf
	for _, f := range frames {
		bufs = append(bufs, bufOf(f, 0))
	}
	run(w, 2, bufs...)
	total := map[string]uint64{}
	for i, b := range bufs {
		got := resultOf(w, b, nil)
		if got.v != want[i].v || got.inner != want[i].inner {
			t.Errorf("packet %d: %v %s, alone %v %s", i, got.v, got.inner, want[i].v, want[i].inner)
		}
		for k, n := range want[i].drops {
			total[k] += n
		}
	}
	if got := w.C.DropsByName(); fmt.Sprint(got) != fmt.Sprint(total) {
		t.Errorf("drops %v, sent alone %v", got, total)
	}
	burst, peerBurst := w.C, append([]Traffic(nil), w.traffic.peer...)
	for range len(frames) - 1 {
		burst.Add(&c0)
		peerBurst = addTraffic(peerBurst, peer0)
	}
	// Learning from the burst's first packet spares the others' (the
	// learning memo): those two events are not per packet.
	for _, e := range []Event{EvNeighbourLearned, EvVTEPLearned} {
		burst.Events[e], sumAlone.Events[e] = 0, 0
	}
	if burst != sumAlone {
		t.Errorf("counters differ from the packets' sent alone:\nburst %+v\nalone %+v", burst, sumAlone)
	}
	if fmt.Sprint(peerBurst) != fmt.Sprint(peerAlone) {
		t.Errorf("peering traffic %v, sent alone %v", peerBurst, peerAlone)
	}
	return want
}

// addTraffic adds b to a element-wise (growing a as needed).
func addTraffic(a, b []Traffic) []Traffic {
	for len(a) < len(b) {
		a = append(a, Traffic{})
	}
	for i, t := range b {
		a[i].Packets += t.Packets
		a[i].Bytes += t.Bytes
	}
	return a
}

// TestSegmentMemoMatchesPacketsAlone sends bursts of many clients of one
// NAT segment (each packet its own source, so one forwarding memo serves
// the segment) and compares them with the packets sent alone: sources
// outside every segment, TTL expiry and, in a table whose segments
// overlap, the sources of the more specific segment in between must each
// get their own verdict and translation.
func TestSegmentMemoMatchesPacketsAlone(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		t.Run(map[bool]string{false: "one segment", true: "overlapping segments"}[overlap], func(t *testing.T) {
			tables := peeredTables(nil)
			if overlap {
				nt := tables.NatTables[0]
				nt.Segments = append(nt.Segments, &tablesv1.NatSegment{From: "10.1.5.0/24", To: "172.17.5.0/24"})
			}
			learn := [][]byte{vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1"))}
			fromA := func(src string, sp uint16, ttl uint8) []byte {
				return vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, src, "192.168.2.7", sp, 53, ttl, 64))
			}
			frames := [][]byte{
				fromA("10.1.0.5", 1024, 64),
				fromA("10.1.0.6", 1025, 64),
				fromA("10.1.7.200", 1026, 64),
				fromA("10.1.5.9", 1027, 64),
				fromA("10.1.5.10", 1028, 64),
				fromA("10.1.0.7", 1029, 64),
				fromA("10.7.0.1", 1030, 64), // in no segment
				fromA("10.1.0.8", 1031, 64),
				fromA("10.1.0.9", 1032, 1),
				fromA("10.1.255.255", 1033, 64),
				fromA("10.1.5.11", 1034, 64),
				fromA("10.1.0.10", 1035, 64),
			}
			want := burstMatchesAlone(t, tables, learn, frames)
			for i, r := range want {
				switch {
				case i == 6:
					if r.drops["source_not_exposed"] != 1 {
						t.Errorf("packet %d from outside the segments: %+v", i, r)
					}
				case i == 8:
					if r.drops["ttl_expired"] != 1 {
						t.Errorf("packet %d with TTL 1: %+v", i, r)
					}
				case r.v != VerdictTx:
					t.Errorf("packet %d not forwarded: %+v", i, r)
				}
			}
			src := func(r burstResult) string { // the inner source, from the hex of the inner packet
				b, _ := hex.DecodeString(r.inner)
				return netip.AddrFrom4([4]byte(b[vxlanHdrs+12 : vxlanHdrs+16])).String()
			}
			wantSrc := map[int]string{0: "172.16.0.5", 2: "172.16.7.200", 3: "172.16.5.9", 9: "172.16.255.255"}
			if overlap {
				wantSrc[3], wantSrc[4], wantSrc[10] = "172.17.5.9", "172.17.5.10", "172.17.5.11"
			}
			for i, s := range wantSrc {
				if got := src(want[i]); got != s {
					t.Errorf("packet %d: translated source %s, want %s", i, got, s)
				}
			}
		})
	}
}

// TestL2MemoMatchesPacketsAlone: forwarding memos whose delivery is an
// untagged, VLAN or QinQ attachment finish their hits in the burst loop as
// VXLAN ones do (Ethernet header and tags pushed onto the adjacency's
// MAC); every packet must leave as it does alone, headers and counters
// included.
func TestL2MemoMatchesPacketsAlone(t *testing.T) {
	for _, c := range []struct {
		name         string
		vlan         uint32
		outer, inner uint16
	}{{"untagged", 0, 0, 0}, {"vlan", 20, 0, 20}, {"qinq", 20<<12 | 30, 20, 30}} {
		t.Run(c.name, func(t *testing.T) {
			tables := peeredTables(nil)
			att := &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_UNTAGGED, PortId: 1}
			arp := arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")
			if c.vlan != 0 {
				att = &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VLAN, PortId: 1, Vlan: c.vlan}
				arp = tagged(t, macB, bcast, c.outer, c.inner, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
					HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: macB[:], SourceProtAddress: ip4("10.2.0.7"),
					DstHwAddress: make([]byte, 6), DstProtAddress: ip4("10.2.0.1")})
			}
			tables.Vpcs[1].Attachment = att
			fromA := func(src, dst string, sp uint16, ttl uint8, size int) []byte {
				return vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, src, dst, sp, 53, ttl, size))
			}
			frames := [][]byte{
				fromA("10.1.0.5", "192.168.2.7", 1024, 64, 64),
				fromA("10.1.0.6", "192.168.2.7", 1025, 64, 64),
				fromA("10.1.0.7", "192.168.2.7", 1026, 64, 64),
				fromA("10.1.0.8", "192.168.2.7", 1027, 1, 64),
				fromA("10.1.0.9", "192.168.2.7", 1028, 64, 64),
				fromA("10.1.0.9", "192.168.2.7", 1029, 64, 9000),
				fromA("10.1.0.10", "192.168.2.7", 1030, 64, 64),
				fromA("10.1.0.10", "192.168.2.8", 1031, 64, 64),
				fromA("10.1.0.11", "192.168.2.7", 1032, 64, 64),
			}
			for _, slots := range adjacencySlotsUnderTest {
				want := burstMatchesAloneOn(t, tables, Config{AdjacencySlots: slots}, [][]byte{arp}, 1, frames)
				for _, i := range []int{0, 1, 2, 4, 6, 8} {
					if want[i].v != VerdictTx {
						t.Errorf("packet %d not forwarded alone: %+v", i, want[i])
					}
				}
				if want[3].drops["ttl_expired"] != 1 || want[5].v == VerdictTx || want[7].v == VerdictTx {
					t.Errorf("the burst does not exercise the per-packet checks: %+v", want)
				}
			}
		})
	}
}

// TestAnyDestinationMemoMatchesPacketsAlone sends a server's answers to
// many clients behind a destination translation (b's 10.2.0.7 to a's
// exposed 172.16.0.x, translated back to 10.1.0.x and delivered to each
// client itself), so one forwarding memo serves every destination with a
// next hop, and adjacency, per packet. A client never learned (held), TTL
// expiry, a packet too big, and a second route whose action (and so
// group) is the same but whose prefix differs (172.20.0.0/16, its own
// checksum delta) must each end as they do alone.
func TestAnyDestinationMemoMatchesPacketsAlone(t *testing.T) {
	tables := peeredTables(nil)
	b := tables.Vpcs[1]
	b.Routes = append(b.Routes, &tablesv1.Route{Prefix: "172.20.0.0/16", Actions: fwd(0, func(x *tablesv1.Action) { x.DstNat = "10.1.0.0/16"; x.SrcNat = 2 })})
	learn := [][]byte{vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1"))}
	for h := 5; h < 12; h++ {
		mac := macA
		mac[5] = byte(h)
		learn = append(learn, vxlanFrame(vtepA, 100, arpFrame(t, 1, mac, fmt.Sprintf("10.1.0.%d", h), [6]byte{}, "10.1.0.1")))
	}
	toClient := func(dst string, dp uint16, ttl uint8, size int) []byte {
		return vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", dst, 53, dp, ttl, size))
	}
	frames := [][]byte{
		toClient("172.16.0.5", 1024, 64, 64),
		toClient("172.16.0.6", 1025, 64, 64),
		toClient("172.16.0.7", 1026, 64, 64),
		toClient("172.16.0.40", 1027, 64, 64), // never learned: held
		toClient("172.16.0.8", 1028, 64, 64),
		toClient("172.20.0.9", 1029, 64, 64), // same group, another prefix
		toClient("172.20.0.10", 1030, 64, 64),
		toClient("172.16.0.9", 1031, 1, 64),
		toClient("172.16.0.10", 1032, 64, 9000),
		toClient("172.16.0.11", 1033, 64, 64),
		toClient("172.16.0.5", 1034, 64, 64),
		toClient("172.16.0.6", 1035, 64, 64),
		// Pings: forwarded ICMP, its header checksum through the memo's
		// delta (compared whole, IP ID included).
		vxlanFrame(vtepB, 200, ser(t, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macB[:], DstMAC: gwMAC0[:], EthernetType: layers.EthernetTypeIPv4}},
			icmp4Layers("10.2.0.7", "172.16.0.7", 64)...)...)),
		vxlanFrame(vtepB, 200, ser(t, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macB[:], DstMAC: gwMAC0[:], EthernetType: layers.EthernetTypeIPv4}},
			icmp4Layers("10.2.0.7", "172.20.0.8", 64)...)...)),
	}
	for _, slots := range adjacencySlotsUnderTest {
		checkAnyDestinationBurst(t, burstMatchesAloneOn(t, tables, Config{AdjacencySlots: slots}, learn, 0, frames))
	}
}

// adjacencySlotsUnderTest are the adjacency cache sizes the memo tests run
// with: the default, and caches so small that next hops keep evicting one
// another (the memo's adjacency among them) within a burst.
var adjacencySlotsUnderTest = []int{0, 1, 2}

func checkAnyDestinationBurst(t *testing.T, want []burstResult) {
	t.Helper()
	for i, r := range want {
		switch i {
		case 3:
			if r.v != VerdictHeld {
				t.Errorf("packet %d to a client never learned: %+v", i, r)
			}
		case 7:
			if r.drops["ttl_expired"] != 1 {
				t.Errorf("packet %d with TTL 1: %+v", i, r)
			}
		case 8:
			if r.v == VerdictTx {
				t.Errorf("packet %d too big was forwarded", i)
			}
		default:
			if r.v != VerdictTx {
				t.Errorf("packet %d not forwarded: %+v", i, r)
				continue
			}
			in, _ := hex.DecodeString(r.inner)
			if got, want := netip.AddrFrom4([4]byte(in[vxlanHdrs+16:vxlanHdrs+20])).String(), fmt.Sprintf("10.1.0.%d", []int{5, 6, 7, 0, 8, 9, 10, 0, 0, 11, 5, 6, 7, 8}[i]); got != want {
				t.Errorf("packet %d: translated destination %s, want %s", i, got, want)
			}
		}
	}
}

// TestMemoAdjacencyEvictedWithinABurst: with a one-slot adjacency cache,
// every next hop the slow path resolves evicts the memo's own adjacency;
// a hit on the memo's destination after that must check it again, both
// after a hit whose own adjacency was missing (resolved by the full path)
// and after a packet the memo does not serve (a TTL expiry, whose ICMP
// error resolves the sender).
func TestMemoAdjacencyEvictedWithinABurst(t *testing.T) {
	tables := peeredTables(nil)
	learn := [][]byte{vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1"))}
	for h := 5; h < 8; h++ {
		mac := macA
		mac[5] = byte(h)
		learn = append(learn, vxlanFrame(vtepA, 100, arpFrame(t, 1, mac, fmt.Sprintf("10.1.0.%d", h), [6]byte{}, "10.1.0.1")))
	}
	toClient := func(dst string, dp uint16, ttl uint8) []byte {
		return vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", dst, 53, dp, ttl, 64))
	}
	frames := [][]byte{
		toClient("172.16.0.5", 1024, 64),
		toClient("172.16.0.5", 1025, 64), // hit: the memo's adjacency checked
		toClient("172.16.0.6", 1026, 64), // its own adjacency missing: resolved, evicting .5's
		toClient("172.16.0.5", 1027, 64),
		toClient("172.16.0.5", 1028, 64),
		toClient("172.16.0.7", 1029, 1), // expired: the error to 10.2.0.7 evicts .5's
		toClient("172.16.0.5", 1030, 64),
	}
	want := burstMatchesAloneOn(t, tables, Config{AdjacencySlots: 1}, learn, 0, frames)
	for i, r := range want {
		if (i == 5) != (r.drops["ttl_expired"] == 1) || i != 5 && r.v != VerdictTx {
			t.Errorf("packet %d: %+v", i, r)
		}
	}
}

// TestManySendersAreLearnedAndFollowedWhenTheyMove: 40 clients of a, each
// its own inner MAC, half behind one VTEP and half behind another, send
// in bursts (the learning memo then answers for them); b's answers must go
// to the VTEP each client sits behind, and when a client's packets come
// from the other VTEP, the very next answer must follow it.
func TestManySendersAreLearnedAndFollowedWhenTheyMove(t *testing.T) {
	_, w, _ := newTestPipeline(t, peeredTables(nil), Config{})
	run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
	const vtepA2 = "192.0.2.11"
	vtepOf := func(h int) string { return []string{vtepA, vtepA2}[h%2] }
	macOf := func(h int) [6]byte { m := macA; m[5] = byte(h); return m }
	var arps, data []*Buf
	for h := 5; h < 45; h++ {
		arps = append(arps, bufOf(vxlanFrame(vtepOf(h), 100, arpFrame(t, 1, macOf(h), fmt.Sprintf("10.1.0.%d", h), [6]byte{}, "10.1.0.1")), 0))
		data = append(data, bufOf(vxlanFrame(vtepOf(h), 100, udpFrame(t, macOf(h), gwMAC0, fmt.Sprintf("10.1.0.%d", h), "192.168.2.7", 1024, 53, 64, 64)), 0))
	}
	run(w, 2, arps...)
	run(w, 3, data[:32]...)
	run(w, 3, data[32:]...)
	for i, b := range data {
		if b.Verdict != VerdictTx {
			t.Fatalf("client %d: verdict %v, drops %v", i+5, b.Verdict, w.C.DropsByName())
		}
	}
	answer := func(h int) *Buf {
		b := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", fmt.Sprintf("172.16.0.%d", h), 53, 1024, 64, 64)), 0)
		run(w, 4, b)
		return b
	}
	outerDst := func(b *Buf) string { return netip.AddrFrom4([4]byte(b.Bytes()[30:34])).String() }
	for h := 5; h < 45; h++ {
		if b := answer(h); b.Verdict != VerdictTx || outerDst(b) != vtepOf(h) {
			t.Fatalf("answer to client %d: verdict %v toward %s, want %s", h, b.Verdict, outerDst(b), vtepOf(h))
		}
	}
	// Client 6 (behind vtepA, the VPC's first VTEP) now sends from vtepA2,
	// right after a packet from where it was, in a burst of others that
	// are remembered.
	burst := []*Buf{
		bufOf(vxlanFrame(vtepOf(7), 100, udpFrame(t, macOf(7), gwMAC0, "10.1.0.7", "192.168.2.7", 1026, 53, 64, 64)), 0),
		bufOf(vxlanFrame(vtepOf(6), 100, udpFrame(t, macOf(6), gwMAC0, "10.1.0.6", "192.168.2.7", 1024, 53, 64, 64)), 0),
		bufOf(vxlanFrame(vtepA2, 100, udpFrame(t, macOf(6), gwMAC0, "10.1.0.6", "192.168.2.7", 1025, 53, 64, 64)), 0),
		bufOf(vxlanFrame(vtepOf(8), 100, udpFrame(t, macOf(8), gwMAC0, "10.1.0.8", "192.168.2.7", 1027, 53, 64, 64)), 0),
	}
	run(w, 5, burst...)
	if b := answer(6); b.Verdict != VerdictTx || outerDst(b) != vtepA2 {
		t.Fatalf("answer to the moved client: verdict %v toward %s, want %s", b.Verdict, outerDst(b), vtepA2)
	}
	if b := answer(7); outerDst(b) != vtepOf(7) {
		t.Fatalf("answer to client 7 toward %s, want %s", outerDst(b), vtepOf(7))
	}
}

// TestUnderlayMACChangeLearnedWithManySenders: two clients of a behind
// vtepA send alternately; then vtepA's packets arrive from a new outer
// source MAC (the underlay next hop changed). The next answer toward vtepA
// must use the new MAC: the learning memo, which remembers many senders,
// must not let them skip learning the VTEP's new underlay MAC (found in
// review: it did, for up to a second, before the outer MAC joined its key).
func TestUnderlayMACChangeLearnedWithManySenders(t *testing.T) {
	_, w, _ := newTestPipeline(t, peeredTables(nil), Config{})
	run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
	macOf := func(h int) [6]byte { m := macA; m[5] = byte(h); return m }
	newMAC := mustMAC("52:54:00:00:00:0b")
	data := func(h int, port uint16, outerMAC [6]byte) *Buf {
		f := vxlanFrame(vtepA, 100, udpFrame(t, macOf(h), gwMAC0, fmt.Sprintf("10.1.0.%d", h), "192.168.2.7", port, 53, 64, 64))
		copy(f[6:12], outerMAC[:])
		return bufOf(f, 0)
	}
	for h := 5; h < 7; h++ {
		run(w, 2, bufOf(vxlanFrame(vtepA, 100, arpFrame(t, 1, macOf(h), fmt.Sprintf("10.1.0.%d", h), [6]byte{}, "10.1.0.1")), 0))
	}
	run(w, 3, data(5, 1024, macVTEP), data(6, 1024, macVTEP))
	run(w, 4, data(5, 1025, newMAC), data(6, 1025, newMAC))
	b := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "172.16.0.6", 53, 1025, 64, 64)), 0)
	run(w, 5, b)
	if b.Verdict != VerdictTx {
		t.Fatalf("answer: verdict %v", b.Verdict)
	}
	if got := [6]byte(b.Bytes()[0:6]); got != newMAC {
		t.Fatalf("answer toward vtepA sent to outer MAC %x, want the new %x", got, newMAC)
	}
}

func TestAdjacencySlotsAreAPowerOfTwoWithinBounds(t *testing.T) {
	for _, c := range []struct{ give, want int }{
		{0, DefaultAdjacencySlots}, {-5, DefaultAdjacencySlots}, {1, 1}, {3, 4}, {4096, 4096}, {4097, 8192}, {1 << 40, maxAdjacencySlots},
	} {
		_, w, _ := newTestPipeline(t, peeredTables(nil), Config{AdjacencySlots: c.give})
		if len(w.adj) != c.want || int(w.adjMask) != c.want-1 {
			t.Errorf("AdjacencySlots %d: %d slots, mask %#x; want %d", c.give, len(w.adj), w.adjMask, c.want)
		}
	}
}
