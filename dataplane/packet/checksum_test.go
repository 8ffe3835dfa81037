package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func TestIncrementalUpdateMatchesFullRecomputation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		n := 20 + 2*r.IntN(40)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		hc := Checksum(b, 0)
		off := 2 * r.IntN(n/2-1)
		switch i % 3 {
		case 0:
			old := binary.BigEndian.Uint16(b[off:])
			nw := uint16(r.Uint32())
			binary.BigEndian.PutUint16(b[off:], nw)
			hc = Update16(hc, old, nw)
		case 1:
			old := binary.BigEndian.Uint32(b[off:])
			nw := r.Uint32()
			binary.BigEndian.PutUint32(b[off:], nw)
			hc = Update32(hc, old, nw)
		case 2:
			old := append([]byte(nil), b[off:off+2]...)
			nw := []byte{byte(r.Uint32()), byte(r.Uint32())}
			copy(b[off:], nw)
			hc = UpdateBytes(hc, old, nw)
		}
		// RFC 1624: both forms are valid encodings of the same sum.
		if full := Checksum(b, 0); full != hc && !(full == 0 && hc == 0xffff) && !(full == 0xffff && hc == 0) {
			t.Fatalf("case %d: incremental %#04x, full %#04x", i, hc, full)
		}
		if Fold(Sum(b, uint32(hc))) != 0xffff && hc != 0xffff {
			t.Fatalf("case %d: checksum %#04x does not verify", i, hc)
		}
	}
}

func TestIPv4HeaderRewritesKeepTheChecksumValid(t *testing.T) {
	h := make(IPv4, 20)
	h.Encode(0, 84, 0x1234, true, 64, ProtoICMP, 0x0a000002, 0xac1f0002)
	cases := []struct {
		name string
		do   func()
	}{
		{"encode", func() {}},
		{"decrement TTL by 2", func() { h.DecTTL(2) }},
		{"rewrite source", func() { h.SetSrc(0xc0a80105) }},
		{"rewrite destination", func() { h.SetDst(0x0a020101) }},
	}
	for _, c := range cases {
		c.do()
		if !h.HeaderChecksumOK() {
			t.Errorf("%s: header checksum %#04x invalid", c.name, h.Checksum())
		}
	}
	if h.TTL() != 62 || h.Src() != 0xc0a80105 || h.Dst() != 0x0a020101 || !h.DontFragment() {
		t.Errorf("fields after rewrites: ttl %d src %#x dst %#x df %v", h.TTL(), h.Src(), h.Dst(), h.DontFragment())
	}
}

func TestOddLengthSumPadsWithZero(t *testing.T) {
	if a, b := Sum([]byte{1, 2, 3}, 0), Sum([]byte{1, 2, 3, 0}, 0); a != b {
		t.Errorf("odd sum %#x, padded %#x", a, b)
	}
}

func TestViewsReadTheWireFormat(t *testing.T) {
	f := make([]byte, 14+VLANLen)
	Ethernet(f).Encode([6]byte{1, 2, 3, 4, 5, 6}, [6]byte{7, 8, 9, 10, 11, 12}, EtherTypeVLAN)
	VLAN(f[14:]).Encode(100, EtherTypeIPv4)
	if e := Ethernet(f); e.Dst() != [6]byte{1, 2, 3, 4, 5, 6} || e.Src() != [6]byte{7, 8, 9, 10, 11, 12} || e.Type() != EtherTypeVLAN {
		t.Errorf("ethernet view: %x", f[:14])
	}
	if v := VLAN(f[14:]); v.ID() != 100 || v.Type() != EtherTypeIPv4 {
		t.Errorf("vlan view: id %d type %#x", v.ID(), v.Type())
	}
	x := make(VXLAN, 8)
	x.Encode(0xabcdef)
	if !x.ValidVNI() || x.VNI() != 0xabcdef {
		t.Errorf("vxlan view: %x", []byte(x))
	}
	a := make(ARP, ARPLen)
	a.Encode(ARPReply, [6]byte{1}, 0x0a000001, [6]byte{2}, 0x0a000002)
	if !a.IsEthernetIPv4() || a.Op() != ARPReply || a.SenderIP() != 0x0a000001 || a.TargetIP() != 0x0a000002 || a.SenderMAC() != [6]byte{1} {
		t.Errorf("arp view: %x", []byte(a))
	}
}
