package packet

import "encoding/binary"

// UDPLen is the UDP header length.
const UDPLen = 8

// UDP is a view of a UDP header.
type UDP []byte

func (u UDP) SrcPort() uint16      { return binary.BigEndian.Uint16(u) }
func (u UDP) DstPort() uint16      { return binary.BigEndian.Uint16(u[2:]) }
func (u UDP) Length() int          { return int(binary.BigEndian.Uint16(u[4:])) }
func (u UDP) Checksum() uint16     { return binary.BigEndian.Uint16(u[6:]) }
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[6:], c) }
func (u UDP) Encode(src, dst uint16, length int, csum uint16) {
	_ = u[7]
	binary.BigEndian.PutUint16(u, src)
	binary.BigEndian.PutUint16(u[2:], dst)
	binary.BigEndian.PutUint16(u[4:], uint16(length))
	binary.BigEndian.PutUint16(u[6:], csum)
}

// TCPMinLen is the TCP header length without options.
const TCPMinLen = 20

// TCP is a view of a TCP header.
type TCP []byte

func (t TCP) SrcPort() uint16      { return binary.BigEndian.Uint16(t) }
func (t TCP) DstPort() uint16      { return binary.BigEndian.Uint16(t[2:]) }
func (t TCP) Seq() uint32          { return binary.BigEndian.Uint32(t[4:]) }
func (t TCP) Ack() uint32          { return binary.BigEndian.Uint32(t[8:]) }
func (t TCP) DataOffset() int      { return int(t[12]>>4) * 4 }
func (t TCP) Flags() uint8         { return t[13] }
func (t TCP) Checksum() uint16     { return binary.BigEndian.Uint16(t[16:]) }
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[16:], c) }

// TCPChecksumOffset and UDPChecksumOffset locate the checksum field in the
// transport header.
const (
	TCPChecksumOffset = 16
	UDPChecksumOffset = 6
)

// ICMPLen is the fixed ICMP/ICMPv6 header length (type, code, checksum,
// 4 bytes of rest-of-header).
const ICMPLen = 8

// ICMPv4 types and codes the gateway uses.
const (
	ICMPEchoReply       = 0
	ICMPDestUnreachable = 3
	ICMPEchoRequest     = 8
	ICMPTimeExceeded    = 11
	ICMPParamProblem    = 12

	ICMPCodeNetUnreachable  = 0
	ICMPCodeHostUnreachable = 1
	ICMPCodeFragNeeded      = 4
	ICMPCodeAdminProhibited = 13
)

// ICMPv6 types the gateway uses.
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129
	ICMPv6RouterSolicit   = 133
	ICMPv6RouterAdvert    = 134
	ICMPv6NeighborSolicit = 135
	ICMPv6NeighborAdvert  = 136

	ICMPv6CodeNoRoute         = 0
	ICMPv6CodeAdminProhibited = 1
)

// ICMP is a view of an ICMPv4 or ICMPv6 header.
type ICMP []byte

func (i ICMP) Type() uint8          { return i[0] }
func (i ICMP) Code() uint8          { return i[1] }
func (i ICMP) Checksum() uint16     { return binary.BigEndian.Uint16(i[2:]) }
func (i ICMP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(i[2:], c) }
func (i ICMP) Ident() uint16        { return binary.BigEndian.Uint16(i[4:]) }
func (i ICMP) Seq() uint16          { return binary.BigEndian.Uint16(i[6:]) }
func (i ICMP) MTU() uint16          { return binary.BigEndian.Uint16(i[6:]) }

// IsICMPv4Error reports whether an ICMPv4 type carries an embedded datagram.
func IsICMPv4Error(t uint8) bool {
	return t == ICMPDestUnreachable || t == ICMPTimeExceeded || t == ICMPParamProblem || t == 4 || t == 5
}

// IsICMPv6Error reports whether an ICMPv6 type carries an embedded datagram.
func IsICMPv6Error(t uint8) bool { return t < 128 }

// VXLANLen is the VXLAN header length; VXLANPort its IANA UDP port.
const (
	VXLANLen  = 8
	VXLANPort = 4789
)

// VXLAN is a view of a VXLAN header (RFC 7348).
type VXLAN []byte

// ValidVNI reports whether the I flag is set.
func (v VXLAN) ValidVNI() bool { return v[0]&0x08 != 0 }
func (v VXLAN) VNI() uint32    { return binary.BigEndian.Uint32(v[4:]) >> 8 }
func (v VXLAN) Encode(vni uint32) {
	_ = v[7]
	binary.BigEndian.PutUint32(v, 0x08000000)
	binary.BigEndian.PutUint32(v[4:], vni<<8)
}

// VXLANOverhead4 is what VXLAN over IPv4 adds in front of an inner IP packet
// and counts against the egress MTU: outer IPv4, UDP, VXLAN, inner Ethernet.
const VXLANOverhead4 = IPv4MinLen + UDPLen + VXLANLen + EthernetMinLen
