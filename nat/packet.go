package nat

import "encoding/binary"

// IPv4 header and L4 field offsets used here.
const (
	ipv4MinLen  = 20
	ipProtoICMP = 1
	ipProtoTCP  = 6
	ipProtoUDP  = 17

	icmpEchoReply   = 0
	icmpUnreachable = 3
	icmpEchoRequest = 8
	icmpTimeExceed  = 11
	icmpParamProb   = 12
)

// sum adds b to a one's-complement running sum (RFC 1071).
func sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 { return ^fold(sum(b, 0)) }

// upd16 updates checksum hc for a 16-bit field going from o to n (RFC 1624
// eqn. 3).
func upd16(hc, o, n uint16) uint16 {
	return ^fold(uint32(^hc) + uint32(^o) + uint32(n))
}

// upd32 is upd16 for a 32-bit field.
func upd32(hc uint16, o, n uint32) uint16 {
	return ^fold(uint32(^hc) + uint32(^uint16(o>>16)) + uint32(^uint16(o)) + uint32(uint16(n>>16)) + uint32(uint16(n)))
}

func get16(b []byte, off int) uint16    { return binary.BigEndian.Uint16(b[off:]) }
func put16(b []byte, off int, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }
func get32(b []byte, off int) uint32    { return binary.BigEndian.Uint32(b[off:]) }
func put32(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }

// l4 locates the transport header of an IPv4 packet: its offset and protocol.
// ok is false for a malformed header; frag for any fragment (their ports are
// missing or belong to another packet's header).
func l4(p []byte) (off int, proto uint8, frag, ok bool) {
	if len(p) < ipv4MinLen || p[0]>>4 != 4 {
		return 0, 0, false, false
	}
	ihl := int(p[0]&0x0f) * 4
	tot := int(get16(p, 2))
	if ihl < ipv4MinLen || ihl > len(p) || tot < ihl || tot > len(p) {
		return 0, 0, false, false
	}
	return ihl, p[9], get16(p, 6)&0x3fff != 0, true
}

// l4Need is the header bytes the NAT reads and writes for each protocol.
func l4Need(proto uint8) int {
	switch proto {
	case ipProtoTCP:
		return 20
	case ipProtoUDP, ipProtoICMP:
		return 8
	}
	return 0
}

// setAddr rewrites the IPv4 address at off (12 source, 16 destination) and
// fixes the IP header checksum and the transport checksum's pseudo-header
// part. l4off and proto locate the transport header; l4len is how many of its
// bytes are present (an ICMP error's quote may be cut short).
func setAddr(p []byte, off int, v uint32, l4off int, proto uint8, l4len int) {
	o := get32(p, off)
	if o == v {
		return
	}
	put32(p, off, v)
	put16(p, 10, upd32(get16(p, 10), o, v))
	switch proto {
	case ipProtoTCP:
		if l4len >= 18 {
			put16(p, l4off+16, upd32(get16(p, l4off+16), o, v))
		}
	case ipProtoUDP:
		if l4len >= 8 {
			if c := get16(p, l4off+6); c != 0 {
				put16(p, l4off+6, udpSum(upd32(c, o, v)))
			}
		}
	}
}

// setPort rewrites a 16-bit transport field (a port, or the ICMP echo
// identifier at offset 4) at l4off+at and fixes the transport checksum.
func setPort(p []byte, l4off, at int, proto uint8, l4len int, v uint16) {
	if l4len < at+2 {
		return
	}
	o := get16(p, l4off+at)
	if o == v {
		return
	}
	put16(p, l4off+at, v)
	switch proto {
	case ipProtoTCP:
		if l4len >= 18 {
			put16(p, l4off+16, upd16(get16(p, l4off+16), o, v))
		}
	case ipProtoUDP:
		if c := get16(p, l4off+6); c != 0 {
			put16(p, l4off+6, udpSum(upd16(c, o, v)))
		}
	case ipProtoICMP:
		if l4len >= 4 {
			put16(p, l4off+2, upd16(get16(p, l4off+2), o, v))
		}
	}
}

// udpSum maps a computed UDP checksum of 0 to 0xffff: 0 means "none"
// (RFC 768).
func udpSum(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// ClampMSS lowers the MSS option of a TCP SYN in IPv4 packet p to mss when it
// is larger, fixing the TCP checksum, and reports whether it changed p. The
// gateway re-encapsulates in VXLAN, so hosts behind a 1500-byte MTU would
// otherwise open connections whose full segments do not fit.
func ClampMSS(p []byte, mss uint16) bool {
	off, proto, frag, ok := l4(p)
	if !ok || frag || proto != ipProtoTCP {
		return false
	}
	end := int(get16(p, 2))
	t := p[off:end]
	if len(t) < 20 || t[13]&0x02 == 0 {
		return false
	}
	doff := int(t[12]>>4) * 4
	if doff < 20 || doff > len(t) {
		return false
	}
	for i := 20; i < doff; {
		switch kind := t[i]; kind {
		case 0:
			return false
		case 1:
			i++
			continue
		case 2:
			if i+4 > doff || t[i+1] != 4 {
				return false
			}
			cur := get16(t, i+2)
			if cur <= mss {
				return false
			}
			put16(t, i+2, mss)
			// The option sits at an even offset only if i is even; the
			// incremental update must use the aligned 16-bit words.
			if i%2 == 0 {
				put16(t, 16, upd16(get16(t, 16), cur, mss))
			} else {
				put16(t, 16, 0)
				put16(t, 16, tcpChecksum(p[:end], off))
			}
			return true
		default:
			if i+1 >= doff || t[i+1] < 2 {
				return false
			}
			i += int(t[i+1])
		}
	}
	return false
}

// tcpChecksum computes the TCP (or UDP) checksum of IPv4 packet p with its
// transport header at off, from scratch.
func tcpChecksum(p []byte, off int) uint16 {
	s := sum(p[12:20], 0)
	s += uint32(p[9]) + uint32(len(p)-off)
	return ^fold(sum(p[off:], s))
}
