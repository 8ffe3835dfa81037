package pipeline

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// nat6Tables adds a stateless IPv6 peering to vlanTables: v's fd00:3::/64
// appears in q as fd00:33::/64 and q's fd00:4::/64 in v as fd00:44::/64.
func nat6Tables() *tablesv1.Tables {
	t := vlanTables()
	t.NatTables = []*tablesv1.NatTable{
		{Segments: []*tablesv1.NatSegment{{From: "fd00:3::/64", To: "fd00:33::/64"}}},
		{Segments: []*tablesv1.NatSegment{{From: "fd00:4::/64", To: "fd00:44::/64"}}},
	}
	t.Vpcs[0].Routes = append(t.Vpcs[0].Routes, &tablesv1.Route{Prefix: "fd00:44::/64",
		Actions: fwd(1, func(a *tablesv1.Action) { a.DstNat = "fd00:4::/64"; a.SrcNat = 1 })})
	t.Vpcs[1].Routes = append(t.Vpcs[1].Routes, &tablesv1.Route{Prefix: "fd00:33::/64",
		Actions: fwd(0, func(a *tablesv1.Action) { a.DstNat = "fd00:3::/64"; a.SrcNat = 2 })})
	return t
}

// sum6 checks a transport checksum over the IPv6 pseudo-header, written
// apart from the package's own checksum code.
func sum6ok(ip []byte) bool {
	plen := int(binary.BigEndian.Uint16(ip[4:]))
	var s uint64
	for i := 8; i < 40; i += 2 {
		s += uint64(binary.BigEndian.Uint16(ip[i:]))
	}
	s += uint64(plen) + uint64(ip[6])
	p := ip[40 : 40+plen]
	for i := 0; i+1 < len(p); i += 2 {
		s += uint64(binary.BigEndian.Uint16(p[i:]))
	}
	if len(p)%2 == 1 {
		s += uint64(p[len(p)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s == 0xffff
}

func TestIPv6StatelessNATTranslatesPacketsAndQuotedHeaders(t *testing.T) {
	_, w, _ := newTestPipeline(t, nat6Tables(), Config{})
	na := func(mac [6]byte, addr string, outer, inner uint16) *Buf {
		adv := &layers.ICMPv6NeighborAdvertisement{Flags: 0x20, TargetAddress: net.ParseIP(addr),
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: mac[:]}}}
		return bufOf(tagged(t, mac, gwMAC, outer, inner, icmp6Layers(addr, "ff02::1", 255, adv, layers.ICMPv6TypeNeighborAdvertisement)...), 1)
	}
	run(w, 1, na(macV, "fd00:3::5", 0, 10), na(macQ, "fd00:4::7", 20, 30))

	h := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00:3::5"), DstIP: net.ParseIP("fd00:44::7")}
	u := &layers.UDP{SrcPort: 5000, DstPort: 53}
	u.SetNetworkLayerForChecksum(h)
	b := bufOf(tagged(t, macV, gwMAC, 0, 10, h, u, gopacket.Payload("query")), 1)
	run(w, 2, b)
	if b.Verdict != VerdictTx {
		t.Fatalf("verdict %v drops %v", b.Verdict, w.C.DropsByName())
	}
	ip := b.Bytes()[22:]
	if s, d := net.IP(ip[8:24]).String(), net.IP(ip[24:40]).String(); s != "fd00:33::5" || d != "fd00:4::7" || ip[7] != 63 || !sum6ok(ip) {
		t.Fatalf("forwarded %s -> %s hop %d checksum ok %v", s, d, ip[7], sum6ok(ip))
	}
	seen := append([]byte(nil), ip...)

	// q's host answers with a port unreachable quoting what it received.
	h2 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP("fd00:4::7"), DstIP: net.ParseIP("fd00:33::5")}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}
	ic.SetNetworkLayerForChecksum(h2)
	e := bufOf(tagged(t, macQ, gwMAC, 20, 30, h2, ic, gopacket.Payload(append(make([]byte, 4), seen...))), 1)
	run(w, 3, e)
	if e.Verdict != VerdictTx {
		t.Fatalf("error: verdict %v drops %v", e.Verdict, w.C.DropsByName())
	}
	out := e.Bytes()[18:]
	if s, d := net.IP(out[8:24]).String(), net.IP(out[24:40]).String(); s != "fd00:44::7" || d != "fd00:3::5" || !sum6ok(out) {
		t.Errorf("error %s -> %s checksum ok %v", s, d, sum6ok(out))
	}
	q := out[48:]
	if s, d := net.IP(q[8:24]).String(), net.IP(q[24:40]).String(); s != "fd00:3::5" || d != "fd00:44::7" || !sum6ok(q) {
		t.Errorf("quoted %s -> %s checksum ok %v", s, d, sum6ok(q))
	}
}
