package nat

import (
	"net/netip"
	"testing"
)

// FuzzTranslate feeds arbitrary bytes both ways: no panic, and every packet
// either translated or dropped with a named reason.
func FuzzTranslate(f *testing.F) {
	f.Add(udpPkt(f, "10.1.1.5", 5555, "8.8.4.4", 53), false)
	f.Add(tcpPkt(f, "10.1.1.5", 4000, "1.1.1.1", 443, true, false, false, false), false)
	f.Add(echoPkt(f, "10.1.1.5", "9.9.9.9", false, 7), false)
	f.Add(icmpError(f, "203.0.113.1", "192.168.1.1", 11, 0, udpPkt(f, "192.168.1.1", 3000, "8.8.8.8", 53)), true)
	f.Add(icmpError(f, "10.1.1.5", "8.8.8.8", 3, 3, udpPkt(f, "8.8.8.8", 53, "10.1.1.5", 3000)), false)
	f.Add([]byte{0x45}, true)
	s, err := NewStateful(Config{Capacity: 1000, Seed: 1, MSS: 1400, Pools: []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, reverse bool) {
		q := []Request{{Packet: pkt, SrcVPC: 1, DstVPC: 1, Pool: 1, Reverse: reverse}}
		s.Translate(sec, q)
		if q[0].Result >= numReasons {
			t.Fatalf("result %d", q[0].Result)
		}
		ClampMSS(pkt, 536)
	})
}
