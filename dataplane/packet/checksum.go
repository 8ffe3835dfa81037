package packet

import "encoding/binary"

// Sum adds b to the one's-complement running sum initial (not folded, not
// inverted). Odd lengths are padded with a zero byte as RFC 1071 says.
func Sum(b []byte, initial uint32) uint32 {
	s := uint64(initial)
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v >> 32
		s += v & 0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>32 != 0 {
		s = (s & 0xffffffff) + (s >> 32)
	}
	return uint32(s)
}

// Fold folds a running sum to 16 bits (not inverted).
func Fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}

// Checksum returns the Internet checksum of b with initial running sum.
func Checksum(b []byte, initial uint32) uint16 { return ^Fold(Sum(b, initial)) }

// Update16 returns checksum hc updated for a 16-bit field changing from old to
// new, per RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
func Update16(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	return ^Fold(s)
}

// Update32 is Update16 for a 32-bit field (an IPv4 address).
func Update32(hc uint16, old, new uint32) uint16 {
	s := uint32(^hc) + uint32(^uint16(old>>16)) + uint32(^uint16(old)) + uint32(uint16(new>>16)) + uint32(uint16(new))
	return ^Fold(s)
}

// UpdateBytes is Update16 for an even-length field changing from old to new
// (an IPv6 address); old and new have the same length.
func UpdateBytes(hc uint16, old, new []byte) uint16 {
	s := uint32(^hc)
	for i := 0; i+1 < len(old) && i+1 < len(new); i += 2 {
		s += uint32(^binary.BigEndian.Uint16(old[i:]))
		s += uint32(binary.BigEndian.Uint16(new[i:]))
	}
	return ^Fold(s)
}

// PseudoHeaderSum4 is the running sum of the IPv4 pseudo-header.
func PseudoHeaderSum4(src, dst []byte, proto uint8, length int) uint32 {
	s := Sum(src, 0)
	s = Sum(dst, s)
	return s + uint32(proto) + uint32(length)
}

// PseudoHeaderSum6 is the running sum of the IPv6 pseudo-header.
func PseudoHeaderSum6(src, dst []byte, proto uint8, length int) uint32 {
	s := Sum(src, 0)
	s = Sum(dst, s)
	return s + uint32(proto) + uint32(length>>16) + uint32(length&0xffff)
}
