package pipeline

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/peergate/peergate/dataplane/packet"
)

// TestNAT4TTLDelta checks the combined update (TTL decrement folded into
// nat4's delta) against checksums recomputed from scratch.
func TestNAT4TTLDelta(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		ip := make(packet.IPv4, 28)
		ip.Encode(uint8(r.Uint32()), 28, uint16(r.Uint32()), r.IntN(2) == 0, uint8(2+r.IntN(254)), packet.ProtoUDP, r.Uint32(), r.Uint32())
		u := packet.UDP(ip[20:])
		u.Encode(uint16(r.Uint32()), uint16(r.Uint32()), 8, 0)
		binary.BigEndian.PutUint16(u[6:], packet.Checksum(u, packet.PseudoHeaderSum4(ip[12:16], ip[16:20], packet.ProtoUDP, 8)))
		if binary.BigEndian.Uint16(u[6:]) == 0 {
			continue
		}
		dec := uint8(1 + r.IntN(2))
		src, dst := ip.Src(), ip.Dst()
		nsrc, ndst := r.Uint32(), r.Uint32()
		old := binary.BigEndian.Uint16(ip[8:])
		ip[8] -= dec
		l4 := l4info{csumOff: packet.UDPChecksumOffset}
		nat4(ip, 20, packet.ProtoUDP, &l4, src, nsrc, dst, ndst, uint32(^old)+uint32(old-uint16(dec)<<8))
		if !ip.HeaderChecksumOK() {
			t.Fatalf("case %d: bad IPv4 checksum %#04x, want %#04x", i, ip.Checksum(), ip.ComputeChecksum())
		}
		if s := packet.Fold(packet.Sum(u, packet.PseudoHeaderSum4(ip[12:16], ip[16:20], packet.ProtoUDP, 8))); s != 0xffff {
			t.Fatalf("case %d: bad UDP checksum (sum %#04x)", i, s)
		}
	}
}

// TestForwardMemoRewriteMatchesRewrite4 checks the forwarding memo's
// rewrite (deltas precomputed and folded once per memo) against rewrite4,
// byte for byte, over random headers, checksums (0 and 0xffff included),
// translations and TTL decrements. The memo's source translation is a
// segment (random length, /0 to /32) and its delta is that of another
// source of the segment, the memo's first packet: a memo serves every
// client of a segment with one delta.
func TestForwardMemoRewriteMatchesRewrite4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var w Worker
	for i := 0; i < 20000; i++ {
		proto, off := uint8(packet.ProtoUDP), int8(packet.UDPChecksumOffset)
		if r.IntN(2) == 0 {
			proto, off = packet.ProtoTCP, packet.TCPChecksumOffset
		}
		ip := make(packet.IPv4, 40)
		for j := range ip {
			ip[j] = byte(r.Uint32())
		}
		dec := uint8(r.IntN(3))
		ip[0], ip[8], ip[9] = 0x45, dec+1+uint8(r.IntN(int(255-dec))), proto
		switch r.IntN(4) {
		case 0:
			ip[10], ip[11] = 0, 0
		case 1:
			ip[10], ip[11] = 0xff, 0xff
		}
		if r.IntN(4) == 0 {
			binary.BigEndian.PutUint16(ip[20+int(off):], uint16(r.IntN(2))*0xffff)
		}
		src, dst := binary.BigEndian.Uint32(ip[12:]), binary.BigEndian.Uint32(ip[16:])
		mask := ^uint32(0) << (32 - r.IntN(33))
		snat := srcNAT{from: src & mask, mask: mask, to: r.Uint32() & mask}
		ndst := r.Uint32()
		switch r.IntN(3) {
		case 0:
			snat = srcNAT{}
		case 1:
			ndst = dst
		}
		nsrc := snat.translate(src)
		if nsrc == src && ndst == dst {
			continue
		}
		l4 := l4info{csumOff: off}
		if proto == packet.ProtoUDP && r.IntN(8) == 0 {
			l4.csumOff = -1 // no UDP checksum
		}
		first := snat.from | r.Uint32()&^snat.mask
		if !snat.has(src) || !snat.has(first) {
			t.Fatalf("case %d: %#x or %#x not in %+v", i, src, first, snat)
		}
		m := fwdMemo4{snat: snat, dst: dst, newDst: ndst, dec: dec, delta: natDelta4(first, snat.translate(first), dst, ndst)}
		m.prepare(DefaultAdjacencySlots - 1)
		if !m.natted {
			t.Fatalf("case %d: translation not seen", i)
		}
		if proto == packet.ProtoUDP && l4.csumOff >= 0 && r.IntN(4) == 0 {
			// A UDP checksum the update turns to 0 (sent as 0xffff).
			binary.BigEndian.PutUint16(ip[20+int(off):], ^uint16(0xffff-m.l4D))
		}
		a := append(packet.IPv4(nil), ip...)
		b := append(packet.IPv4(nil), ip...)
		ea := pend4{ip: a, ihl: 20, tot: 40, proto: proto, l4: l4, src: src, dst: dst}
		eb := ea
		eb.ip = b
		w.rewrite4(&ea, nsrc, ndst, natDelta4(src, nsrc, dst, ndst), dec, nil)
		m.rewrite(&eb)
		if string(a) != string(b) {
			t.Fatalf("case %d (proto %d dec %d): rewrite4 %x, memo %x", i, proto, dec, a[:24], b[:24])
		}
	}
}
