package nat

import (
	"errors"
	"net/netip"
	"testing"
)

// FuzzTranslate feeds arbitrary bytes both ways, each input to a fresh
// session table (so that every input can create sessions, and a failing
// input replays alone) holding one primed UDP session, so that ICMP errors
// quoting it reach the quoted-header rewrite: no panic, every packet either
// translated or dropped with a named reason, a translated packet whose
// checksums were valid keeps them valid (quoted headers included), and the
// reply to a translated TCP or UDP packet or ICMP echo is translated back
// to the original source.
func FuzzTranslate(f *testing.F) {
	_, pub, port := fuzzTable(f)
	f.Add(udpPkt(f, "10.1.1.5", 5555, "8.8.4.4", 53), false)
	f.Add(tcpPkt(f, "10.1.1.5", 4000, "1.1.1.1", 443, true, false, false, false), false)
	f.Add(tcpPkt(f, "10.1.1.5", 4001, "1.1.1.1", 443, false, true, true, false), false)
	f.Add(echoPkt(f, "10.1.1.5", "9.9.9.9", false, 7), false)
	// Errors about the primed session: from outside toward its public
	// address (inbound), and from its inside host about a reply (outbound).
	f.Add(icmpError(f, "203.0.113.1", addr4(pub).String(), 11, 0, udpPkt(f, addr4(pub).String(), port, "8.8.8.8", 53)), true)
	f.Add(icmpError(f, "10.1.1.5", "8.8.8.8", 3, 3, udpPkt(f, "8.8.8.8", 53, "10.1.1.5", 3000)), false)
	f.Add([]byte{0x45}, true)
	f.Fuzz(func(t *testing.T, pkt []byte, reverse bool) {
		s, _, _ := fuzzTable(t)
		orig := append([]byte(nil), pkt...)
		valid := safeVerify(pkt) == nil
		q := []Request{{Packet: pkt, SrcVPC: 1, DstVPC: 1, Pool: 1, Reverse: reverse}}
		s.Translate(sec, q)
		if q[0].Result >= numReasons {
			t.Fatalf("result %d", q[0].Result)
		}
		if q[0].Result == OK && valid {
			if err := safeVerify(pkt); err != nil {
				t.Fatalf("translation broke a valid packet: %v\nin  % x\nout % x", err, orig, pkt)
			}
			if !reverse {
				replyComesBack(t, s, orig, pkt)
			}
		}
		ClampMSS(pkt, 536)
	})
}

// fuzzTable is a fresh session table with one session, UDP
// 10.1.1.5:3000 -> 8.8.8.8:53, and that session's public address and port
// (the same for every call: the table's seed is fixed).
func fuzzTable(t testing.TB) (*Stateful, uint32, uint16) {
	s, err := NewStateful(Config{Capacity: 64, Seed: 1, MSS: 1400, Pools: []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := udpPkt(t, "10.1.1.5", 3000, "8.8.8.8", 53)
	if r := s.TranslatePacket(sec, p, 1, 1, 1, false); r != OK {
		t.Fatalf("priming session: %v", r)
	}
	return s, get32(p, 12), get16(p, 20)
}

// replyComesBack sends the reply to the translated packet out (addresses
// and ports or echo type swapped) back through s, and checks it reaches
// orig's source address and port.
func replyComesBack(t *testing.T, s *Stateful, orig, out []byte) {
	ihl := int(out[0]&0xf) * 4
	if get16(out, 6)&0x3fff != 0 || int(get16(out, 2)) > len(out) {
		return // a fragment, or a datagram longer than its bytes
	}
	r := append([]byte(nil), out[:get16(out, 2)]...)
	copy(r[12:16], out[16:20])
	copy(r[16:20], out[12:16])
	l := r[ihl:]
	var inner uint16 // orig's port or echo identifier
	switch {
	case r[9] == ipProtoTCP && len(l) >= 20, r[9] == ipProtoUDP && len(l) >= 8:
		copy(l[0:2], out[ihl+2:ihl+4])
		copy(l[2:4], out[ihl:ihl+2])
		inner = get16(orig, ihl)
	case r[9] == ipProtoICMP && len(l) >= 8 && l[0] == 8:
		l[0] = 0
		inner = get16(orig, ihl+4)
	default:
		return
	}
	// Full checksums of the reply as the far end would send it.
	r[10], r[11] = 0, 0
	put16(r, 10, checksum(r[:ihl]))
	switch r[9] {
	case ipProtoTCP, ipProtoUDP:
		off := 16
		if r[9] == ipProtoUDP {
			off = 6
		}
		l[off], l[off+1] = 0, 0
		cs := ^fold(sum(l, sum(r[12:20], 0)+uint32(r[9])+uint32(len(l))))
		if r[9] == ipProtoUDP && cs == 0 {
			cs = 0xffff
		}
		put16(l, off, cs)
	case ipProtoICMP:
		l[2], l[3] = 0, 0
		put16(l, 2, checksum(l))
	}
	q := []Request{{Packet: r, SrcVPC: 1, DstVPC: 1, Pool: 1, Reverse: true}}
	s.Translate(sec, q)
	if q[0].Result != OK {
		t.Fatalf("the reply to a translated packet was dropped: %v\nout   % x\nreply % x", q[0].Result, out, r)
	}
	port := get16(r, ihl+2)
	if r[9] == ipProtoICMP {
		port = get16(r, ihl+4)
	}
	if get32(r, 16) != get32(orig, 12) || port != inner {
		t.Fatalf("the reply went to %v:%d, want the original source %v:%d", addr4(get32(r, 16)), port, addr4(get32(orig, 12)), inner)
	}
	if err := verify(r, true); err != nil {
		t.Fatalf("the translated reply: %v", err)
	}
}

// safeVerify is verify for arbitrary bytes: too short for what its headers
// claim is an error, not a panic.
func safeVerify(p []byte) (err error) {
	defer func() {
		if recover() != nil {
			err = errTooShort
		}
	}()
	if len(p) < 20 || p[0]>>4 != 4 || int(p[0]&0xf)*4 < 20 || int(p[0]&0xf)*4 > len(p) {
		return errTooShort
	}
	return verify(p, true)
}

var errTooShort = errors.New("too short for its headers")
