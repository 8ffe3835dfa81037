package packet

import "encoding/binary"

// IP protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IPv4 is a view of an IPv4 header (and what follows).
type IPv4 []byte

func (h IPv4) Version() uint8          { return h[0] >> 4 }
func (h IPv4) HeaderLen() int          { return int(h[0]&0x0f) * 4 }
func (h IPv4) TOS() uint8              { return h[1] }
func (h IPv4) TotalLen() int           { return int(binary.BigEndian.Uint16(h[2:])) }
func (h IPv4) ID() uint16              { return binary.BigEndian.Uint16(h[4:]) }
func (h IPv4) Flags() uint16           { return binary.BigEndian.Uint16(h[6:]) }
func (h IPv4) DontFragment() bool      { return h[6]&0x40 != 0 }
func (h IPv4) MoreFragments() bool     { return h[6]&0x20 != 0 }
func (h IPv4) FragmentOffset() int     { return int(binary.BigEndian.Uint16(h[6:])&0x1fff) * 8 }
func (h IPv4) IsFragment() bool        { return binary.BigEndian.Uint16(h[6:])&0x3fff != 0 }
func (h IPv4) TTL() uint8              { return h[8] }
func (h IPv4) Protocol() uint8         { return h[9] }
func (h IPv4) Checksum() uint16        { return binary.BigEndian.Uint16(h[10:]) }
func (h IPv4) Src() uint32             { return binary.BigEndian.Uint32(h[12:]) }
func (h IPv4) Dst() uint32             { return binary.BigEndian.Uint32(h[16:]) }
func (h IPv4) SetChecksum(c uint16)    { binary.BigEndian.PutUint16(h[10:], c) }
func (h IPv4) SetTotalLen(l int)       { binary.BigEndian.PutUint16(h[2:], uint16(l)) }
func (h IPv4) Payload() []byte         { return h[h.HeaderLen():h.TotalLen()] }
func (h IPv4) HeaderChecksumOK() bool  { return Fold(Sum(h[:h.HeaderLen()], 0)) == 0xffff }
func (h IPv4) ComputeChecksum() uint16 { return ^Fold(Sum(h[:10], Sum(h[12:h.HeaderLen()], 0))) }

// SetSrc rewrites the source address and updates the header checksum.
func (h IPv4) SetSrc(a uint32) {
	h.SetChecksum(Update32(h.Checksum(), h.Src(), a))
	binary.BigEndian.PutUint32(h[12:], a)
}

// SetDst rewrites the destination address and updates the header checksum.
func (h IPv4) SetDst(a uint32) {
	h.SetChecksum(Update32(h.Checksum(), h.Dst(), a))
	binary.BigEndian.PutUint32(h[16:], a)
}

// DecTTL lowers the TTL by n and updates the checksum (TTL is the high byte
// of the 16-bit word it shares with the protocol).
// The new word is computed from the old one rather than read back after the
// TTL store: a 16-bit load over a byte just stored cannot be forwarded from
// the store buffer and stalls.
func (h IPv4) DecTTL(n uint8) {
	old := binary.BigEndian.Uint16(h[8:])
	nw := old - uint16(n)<<8
	h[8] = byte(nw >> 8)
	h.SetChecksum(Update16(h.Checksum(), old, nw))
}

// Encode writes a 20-byte header without options and computes its checksum.
func (h IPv4) Encode(tos uint8, totalLen int, id uint16, df bool, ttl, proto uint8, src, dst uint32) {
	_ = h[19]
	h[0] = 0x45
	h[1] = tos
	binary.BigEndian.PutUint16(h[2:], uint16(totalLen))
	binary.BigEndian.PutUint16(h[4:], id)
	var fl uint16
	if df {
		fl = 0x4000
	}
	binary.BigEndian.PutUint16(h[6:], fl)
	h[8] = ttl
	h[9] = proto
	binary.BigEndian.PutUint16(h[10:], 0)
	binary.BigEndian.PutUint32(h[12:], src)
	binary.BigEndian.PutUint32(h[16:], dst)
	h.SetChecksum(^Fold(Sum(h[:20], 0)))
}

// IPv6MinLen is the fixed IPv6 header length.
const IPv6MinLen = 40

// IPv6 is a view of an IPv6 header (and what follows).
type IPv6 []byte

func (h IPv6) Version() uint8      { return h[0] >> 4 }
func (h IPv6) PayloadLen() int     { return int(binary.BigEndian.Uint16(h[4:])) }
func (h IPv6) NextHeader() uint8   { return h[6] }
func (h IPv6) HopLimit() uint8     { return h[7] }
func (h IPv6) SetHopLimit(v uint8) { h[7] = v }
func (h IPv6) Src() []byte         { return h[8:24] }
func (h IPv6) Dst() []byte         { return h[24:40] }
func (h IPv6) Src16() (a [16]byte) { copy(a[:], h[8:24]); return }
func (h IPv6) Dst16() (a [16]byte) { copy(a[:], h[24:40]); return }
func (h IPv6) Payload() []byte     { return h[IPv6MinLen : IPv6MinLen+h.PayloadLen()] }

// Encode writes the fixed header.
func (h IPv6) Encode(tc uint8, flow uint32, payloadLen int, next, hop uint8, src, dst [16]byte) {
	_ = h[39]
	binary.BigEndian.PutUint32(h, 6<<28|uint32(tc)<<20|flow&0xfffff)
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	h[6] = next
	h[7] = hop
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
}
