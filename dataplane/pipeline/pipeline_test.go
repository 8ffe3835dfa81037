package pipeline

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/peergate/peergate/dataplane/fib"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// vlanTables: vpc v on VLAN 10 and vpc q on QinQ 20/30, both on port 1,
// routed to each other over IPv4 and IPv6 without NAT.
func vlanTables() *tablesv1.Tables {
	vpc := func(id uint32, name string, tag uint32, own, peer, own6, peer6, r4, r6 string) *tablesv1.Vpc {
		return &tablesv1.Vpc{Id: id, Name: name, RouterIps: []string{r4, r6},
			Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VLAN, PortId: 1, Vlan: tag},
			Routes: []*tablesv1.Route{
				{Prefix: own, Actions: deliver("", 1)}, {Prefix: own6, Actions: deliver("", 1)},
				{Prefix: peer, Actions: fwd(1-id, nil)}, {Prefix: peer6, Actions: fwd(1-id, nil)},
			},
			LocalRoutes: []*tablesv1.Route{{Prefix: own, Actions: deliver("", 0)}, {Prefix: own6, Actions: deliver("", 0)}},
		}
	}
	return &tablesv1.Tables{
		Ports: []*tablesv1.Port{{Id: 0, Name: "fabric"}, {Id: 1, Name: "access", Mtu: 1500}},
		Vpcs: []*tablesv1.Vpc{
			vpc(0, "v", 10, "10.3.0.0/16", "10.4.0.0/16", "fd00:3::/64", "fd00:4::/64", "10.3.0.1", "fd00:3::1"),
			vpc(1, "q", 20<<12|30, "10.4.0.0/16", "10.3.0.0/16", "fd00:4::/64", "fd00:3::/64", "10.4.0.1", "fd00:4::1"),
		},
	}
}

var (
	macV  = mustMAC("52:54:00:0a:00:05")
	macQ  = mustMAC("52:54:00:0b:00:07")
	gwMAC = fib.DefaultPortMAC(1)
	bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// tagged builds an Ethernet frame with one tag (outer 0) or two.
func tagged(t testing.TB, src, dst [6]byte, outer, inner uint16, ls ...gopacket.SerializableLayer) []byte {
	var et layers.EthernetType
	switch ls[0].(type) {
	case *layers.IPv4:
		et = layers.EthernetTypeIPv4
	case *layers.IPv6:
		et = layers.EthernetTypeIPv6
	case *layers.ARP:
		et = layers.EthernetTypeARP
	}
	hdr := []gopacket.SerializableLayer{}
	if outer != 0 {
		hdr = append(hdr, &layers.Ethernet{SrcMAC: src[:], DstMAC: dst[:], EthernetType: layers.EthernetTypeQinQ},
			&layers.Dot1Q{VLANIdentifier: outer, Type: layers.EthernetTypeDot1Q})
	} else {
		hdr = append(hdr, &layers.Ethernet{SrcMAC: src[:], DstMAC: dst[:], EthernetType: layers.EthernetTypeDot1Q})
	}
	hdr = append(hdr, &layers.Dot1Q{VLANIdentifier: inner, Type: et})
	return ser(t, append(hdr, ls...)...)
}

func arpLayer(op uint16, sha [6]byte, spa string, tha [6]byte, tpa string) *layers.ARP {
	return &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: op, SourceHwAddress: sha[:], SourceProtAddress: ip4(spa), DstHwAddress: tha[:], DstProtAddress: ip4(tpa)}
}

func icmp4Layers(src, dst string, ttl uint8) []gopacket.SerializableLayer {
	return []gopacket.SerializableLayer{&layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: 9, Protocol: layers.IPProtocolICMPv4, SrcIP: ip4(src), DstIP: ip4(dst)},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, gopacket.Payload("ping")}
}

func icmp6Layers(src, dst string, hop uint8, msg gopacket.SerializableLayer, typ uint8) []gopacket.SerializableLayer {
	h := &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	ic.SetNetworkLayerForChecksum(h)
	return []gopacket.SerializableLayer{h, ic, msg}
}

func decode(b *Buf) gopacket.Packet {
	return gopacket.NewPacket(b.Bytes(), layers.LayerTypeEthernet, gopacket.Default)
}

func tags(p gopacket.Packet) []uint16 {
	var out []uint16
	for _, l := range p.Layers() {
		if q, ok := l.(*layers.Dot1Q); ok {
			out = append(out, q.VLANIdentifier)
		}
	}
	return out
}

func TestIPv4FromAVLANReachesAQinQVPCWithBothTags(t *testing.T) {
	_, w, _ := newTestPipeline(t, vlanTables(), Config{})
	// q's host announces itself (gratuitous ARP, double tagged).
	g := bufOf(tagged(t, macQ, bcast, 20, 30, arpLayer(1, macQ, "10.4.0.7", [6]byte{}, "10.4.0.7")), 1)
	run(w, 1, g)
	if g.Verdict != VerdictDrop || w.C.Drops[DropConsumed] != 1 {
		t.Fatalf("gratuitous ARP: verdict %v drops %v", g.Verdict, w.C.DropsByName())
	}
	b := bufOf(tagged(t, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "10.4.0.7", 64)...), 1)
	run(w, 2, b)
	if b.Verdict != VerdictTx || b.OutPort != 1 {
		t.Fatalf("verdict %v port %d, drops %v", b.Verdict, b.OutPort, w.C.DropsByName())
	}
	p := decode(b)
	if got := tags(p); len(got) != 2 || got[0] != 20 || got[1] != 30 {
		t.Errorf("tags %v, want [20 30]", got)
	}
	e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if e.EthernetType != layers.EthernetTypeQinQ || [6]byte(e.DstMAC) != macQ || [6]byte(e.SrcMAC) != gwMAC {
		t.Errorf("ethernet %v -> %v type %v", e.SrcMAC, e.DstMAC, e.EthernetType)
	}
	if ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip.TTL != 63 {
		t.Errorf("ttl %d, want 63", ip.TTL)
	}
}

func TestARPForTheRouterIsAnsweredOnTheSameVLAN(t *testing.T) {
	_, w, _ := newTestPipeline(t, vlanTables(), Config{})
	b := bufOf(tagged(t, macV, bcast, 0, 10, arpLayer(1, macV, "10.3.0.5", [6]byte{}, "10.3.0.1")), 1)
	run(w, 1, b)
	if b.Verdict != VerdictTx || b.OutPort != 1 {
		t.Fatalf("verdict %v, drops %v", b.Verdict, w.C.DropsByName())
	}
	p := decode(b)
	a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if a == nil || a.Operation != 2 || [6]byte(a.SourceHwAddress) != gwMAC || net.IP(a.SourceProtAddress).String() != "10.3.0.1" || [6]byte(a.DstHwAddress) != macV {
		t.Fatalf("reply %v", p)
	}
	if got := tags(p); len(got) != 1 || got[0] != 10 {
		t.Errorf("tags %v, want [10]", got)
	}
	// A request for someone else is counted, not answered.
	o := bufOf(tagged(t, macV, bcast, 0, 10, arpLayer(1, macV, "10.3.0.5", [6]byte{}, "10.3.0.9")), 1)
	run(w, 2, o)
	if o.Verdict != VerdictDrop || w.C.Drops[DropARPNotForUs] != 1 {
		t.Errorf("foreign request: verdict %v drops %v", o.Verdict, w.C.DropsByName())
	}
}

func TestIPv6IsResolvedWithNeighbourDiscoveryAndForwarded(t *testing.T) {
	_, w, pool := newTestPipeline(t, vlanTables(), Config{})
	// v's host solicits its router: answered with an advertisement.
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.ParseIP("fd00:3::1"),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: macV[:]}}}
	b := bufOf(tagged(t, macV, bcast, 0, 10, icmp6Layers("fd00:3::5", "ff02::1:ff00:1", 255, ns, layers.ICMPv6TypeNeighborSolicitation)...), 1)
	run(w, 1, b)
	if b.Verdict != VerdictTx {
		t.Fatalf("NS: verdict %v drops %v", b.Verdict, w.C.DropsByName())
	}
	na, _ := decode(b).Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil || na.TargetAddress.String() != "fd00:3::1" || !na.Solicited() || len(na.Options) != 1 || [6]byte(na.Options[0].Data) != gwMAC {
		t.Fatalf("advertisement %v", decode(b))
	}
	// To q's unknown host: held, solicitation sent double tagged.
	x := bufOf(tagged(t, macV, gwMAC, 0, 10, icmp6Layers("fd00:3::5", "fd00:4::7", 64, gopacket.Payload("\x00\x01\x00\x01hello"), layers.ICMPv6TypeEchoRequest)...), 1)
	extra := run(w, 2, x)
	if x.Verdict != VerdictHeld || len(extra) != 1 || pool.allocs != 1 {
		t.Fatalf("held: verdict %v extra %d allocs %d drops %v", x.Verdict, len(extra), pool.allocs, w.C.DropsByName())
	}
	sol := decode(extra[0])
	if s, _ := sol.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation); s == nil || s.TargetAddress.String() != "fd00:4::7" {
		t.Fatalf("solicitation %v", sol)
	}
	if ip := sol.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ip.DstIP.String() != "ff02::1:ff00:7" || ip.SrcIP.String() != "fd00:4::1" {
		t.Errorf("solicitation %v -> %v", ip.SrcIP, ip.DstIP)
	}
	if got := tags(sol); len(got) != 2 {
		t.Errorf("solicitation tags %v", got)
	}
	// The advertisement releases it with hop limit 63.
	adv := &layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: net.ParseIP("fd00:4::7"),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: macQ[:]}}}
	a := bufOf(tagged(t, macQ, gwMAC, 20, 30, icmp6Layers("fd00:4::7", "fd00:4::1", 255, adv, layers.ICMPv6TypeNeighborAdvertisement)...), 1)
	extra = run(w, 3, a)
	if len(extra) != 1 || extra[0] != x || x.Verdict != VerdictTx {
		t.Fatalf("release: %d extra, verdict %v, drops %v", len(extra), x.Verdict, w.C.DropsByName())
	}
	p := decode(x)
	if ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ip.HopLimit != 63 {
		t.Errorf("hop limit %d, want 63", ip.HopLimit)
	}
	if e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); [6]byte(e.DstMAC) != macQ {
		t.Errorf("destination MAC %v", e.DstMAC)
	}
	if p.ErrorLayer() != nil {
		t.Errorf("decode error %v", p.ErrorLayer().Error())
	}
}

func TestIPv6EchoToTheRouterIsAnswered(t *testing.T) {
	_, w, _ := newTestPipeline(t, vlanTables(), Config{})
	b := bufOf(tagged(t, macV, gwMAC, 0, 10, icmp6Layers("fd00:3::5", "fd00:3::1", 64, gopacket.Payload("\x00\x01\x00\x01hi"), layers.ICMPv6TypeEchoRequest)...), 1)
	run(w, 1, b)
	if b.Verdict != VerdictTx {
		t.Fatalf("verdict %v drops %v", b.Verdict, w.C.DropsByName())
	}
	p := decode(b)
	ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	ic := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ip.SrcIP.String() != "fd00:3::1" || ip.DstIP.String() != "fd00:3::5" || ic.TypeCode.Type() != layers.ICMPv6TypeEchoReply {
		t.Errorf("reply %v", p)
	}
	// Recompute the checksum with the pseudo-header.
	want := ic.Checksum
	ic.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ic, gopacket.Payload(ic.Payload)); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(buf.Bytes()[2:]); got != want {
		t.Errorf("ICMPv6 checksum %#04x, want %#04x", want, got)
	}
}

func TestHeldPacketsTimeOutAndTheQueueIsBounded(t *testing.T) {
	_, w, pool := newTestPipeline(t, vlanTables(), Config{HoldQueue: 2})
	mk := func(dst string) *Buf {
		return bufOf(tagged(t, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", dst, 64)...), 1)
	}
	a, b, c := mk("10.4.0.7"), mk("10.4.0.8"), mk("10.4.0.9")
	extra := run(w, 1, a, b, c)
	if a.Verdict != VerdictHeld || b.Verdict != VerdictHeld || c.Verdict != VerdictDrop || w.C.Drops[DropHoldQueueFull] != 1 {
		t.Fatalf("verdicts %v %v %v drops %v", a.Verdict, b.Verdict, c.Verdict, w.C.DropsByName())
	}
	if len(extra) != 3 || w.C.Events[EvARPRequested] != 3 {
		t.Errorf("%d ARP requests out, want 3 (one per next hop)", len(extra))
	}
	// A second packet to the same next hop within a second asks no more.
	if extra := run(w, 2, mk("10.4.0.9")); len(extra) != 0 {
		t.Errorf("repeated request within the retry interval")
	}
	var out Output
	w.Tick(1+int64(4e9), &out)
	if len(out.Extra) != 0 || pool.frees != 2 || w.C.Drops[DropNeighbourUnresolved] != 2 {
		t.Errorf("after timeout: extra %d frees %d drops %v", len(out.Extra), pool.frees, w.C.DropsByName())
	}
}

func TestFramePaddingIsNotForwarded(t *testing.T) {
	_, w, _ := newTestPipeline(t, vlanTables(), Config{})
	run(w, 1, bufOf(tagged(t, macQ, bcast, 20, 30, arpLayer(1, macQ, "10.4.0.7", [6]byte{}, "10.4.0.7")), 1))
	f := tagged(t, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "10.4.0.7", 64)...)
	f = append(f, make([]byte, 20)...)
	b := bufOf(f, 1)
	run(w, 2, b)
	if b.Verdict != VerdictTx || b.Len != 22+20+8+4 {
		t.Errorf("verdict %v length %d, want %d", b.Verdict, b.Len, 22+20+8+4)
	}
}

func TestDropsAreCountedByReason(t *testing.T) {
	tb := vlanTables()
	cases := []struct {
		name   string
		frame  func() []byte
		port   uint16
		reason DropReason
	}{
		{"unknown VLAN", func() []byte { return tagged(t, macV, gwMAC, 0, 99, icmp4Layers("10.3.0.5", "10.4.0.7", 64)...) }, 1, DropUnknownVLAN},
		{"untagged on a port without untagged VPC", func() []byte { return udpFrame(t, macV, gwMAC, "10.3.0.5", "10.4.0.7", 1, 2, 64, 60) }, 1, DropUnknownPort},
		{"no route", func() []byte { return tagged(t, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "8.8.8.8", 64)...) }, 1, DropNoRoute},
		{"ttl 1 crossing a router", func() []byte { return tagged(t, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "10.4.0.7", 1)...) }, 1, DropTTLExpired},
		{"truncated", func() []byte { return []byte{1, 2, 3} }, 1, DropMalformed},
		{"unknown port", func() []byte { return udpFrame(t, macV, gwMAC, "10.3.0.5", "10.4.0.7", 1, 2, 64, 60) }, 7, DropUnknownPort},
	}
	for _, c := range cases {
		_, w, _ := newTestPipeline(t, tb, Config{})
		b := bufOf(c.frame(), c.port)
		run(w, 1, b)
		if w.C.Drops[c.reason] != 1 {
			t.Errorf("%s: drops %v, want %s", c.name, w.C.DropsByName(), c.reason)
		}
	}
}

func TestTheFlowHashIsSymmetric(t *testing.T) {
	if flowHash4(1, 2, 6, 10, 20) != flowHash4(2, 1, 6, 20, 10) {
		t.Error("flowHash4 differs between directions")
	}
	if flowHash4(1, 2, 6, 10, 20) == flowHash4(1, 2, 6, 10, 21) {
		t.Error("flowHash4 ignores ports")
	}
}

func TestANewSnapshotTakesEffectAtTheNextBurst(t *testing.T) {
	s1, _ := fib.Build(peeredTables(nil), fib.Options{})
	s2, _ := fib.Build(&tablesv1.Tables{Gateway: &tablesv1.Gateway{VtepIp: gwVTEP}, Ports: []*tablesv1.Port{{Name: "fabric"}}}, fib.Options{})
	var h fib.Holder
	h.Store(s1)
	p := New(&h, Config{})
	w := p.NewWorker(0, &testPool{})
	f := vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1, 53, 64, 64))
	run(w, 1, bufOf(f, 0))
	h.Store(s2)
	b := bufOf(f, 0)
	run(w, 2, b)
	if w.C.Drops[DropUnknownVNI] != 1 {
		t.Errorf("after swap: drops %v", w.C.DropsByName())
	}
	h.Store(nil)
	run(w, 3, bufOf(f, 0))
	if w.C.Drops[DropNoTables] != 1 {
		t.Errorf("without tables: drops %v", w.C.DropsByName())
	}
}

func TestFilteredPacketsGetAnUnreachableOnlyWhenConfigured(t *testing.T) {
	for _, on := range []bool{false, true} {
		_, w, _ := newTestPipeline(t, peeredTables(nil), Config{ICMPFiltered: on})
		// a's route to b gets filter 1 (udp/53 only).
		tb := peeredTables(nil)
		tb.Vpcs[0].Routes[1].Actions[0].IngressFilter = 1
		s, err := fib.Build(tb, fib.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.p.fib.Store(s)
		run(w, 1, bufOf(vxlanFrame(vtepA, 100, arpFrame(t, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1")), 0))
		b := bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1000, 80, 64, 64)), 0)
		run(w, 2, b)
		if w.C.Drops[DropFiltered] != 1 {
			t.Fatalf("icmp %v: drops %v", on, w.C.DropsByName())
		}
		if sent := b.Verdict == VerdictTx; sent != on {
			t.Errorf("icmp %v: unreachable sent = %v", on, sent)
			continue
		}
		if on {
			ic := decode(b).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ic.TypeCode.Type() != 3 || ic.TypeCode.Code() != 13 {
				t.Errorf("icmp %v", ic.TypeCode)
			}
		}
	}
}

func TestCountersAreReadableWhileAWorkerRuns(t *testing.T) {
	p, w, _ := newTestPipeline(t, vlanTables(), Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			run(w, int64(i), bufOf([]byte{1, 2, 3}, 1))
		}
		var out Output
		w.Tick(1000, &out)
	}()
	for i := 0; i < 50; i++ {
		_ = p.Counters()
	}
	<-done
	if c := p.Counters(); c.Drops[DropMalformed] != 200 {
		t.Errorf("published malformed drops %d, want 200", c.Drops[DropMalformed])
	}
}

func TestICMPErrorsAreRateLimited(t *testing.T) {
	_, w, _ := newTestPipeline(t, vlanTables(), Config{ICMPErrorRate: 10})
	mk := func() *Buf { return bufOf(tagged(t, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "10.4.0.7", 1)...), 1) }
	a, b := mk(), mk()
	run(w, 1, a, b)
	if a.Verdict != VerdictTx || b.Verdict != VerdictDrop {
		t.Errorf("verdicts %v %v, want tx (time exceeded) then drop", a.Verdict, b.Verdict)
	}
	if w.C.Drops[DropTTLExpired] != 2 || w.C.Events[EvICMPRateLimited] != 1 {
		t.Errorf("drops %v events %v", w.C.DropsByName(), w.C.EventsByName())
	}
	c := mk()
	run(w, 1+int64(2e8), c) // 0.2 s later: 2 tokens back
	if c.Verdict != VerdictTx {
		t.Errorf("after refill: verdict %v", c.Verdict)
	}
}
