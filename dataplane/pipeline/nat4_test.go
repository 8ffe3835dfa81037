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
