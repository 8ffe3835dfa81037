package packet

import "encoding/binary"

// EtherTypes the dataplane handles.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100
	EtherTypeQinQ = 0x88a8
	EtherTypeIPv6 = 0x86dd
)

// EthernetMinLen is the Ethernet II header length.
const EthernetMinLen = 14

// Ethernet is a view of an Ethernet II header.
type Ethernet []byte

func (e Ethernet) Dst() (m [6]byte) { copy(m[:], e[0:6]); return }
func (e Ethernet) Src() (m [6]byte) { copy(m[:], e[6:12]); return }
func (e Ethernet) Type() uint16     { return binary.BigEndian.Uint16(e[12:]) }
func (e Ethernet) SetDst(m [6]byte) { copy(e[0:6], m[:]) }
func (e Ethernet) SetSrc(m [6]byte) { copy(e[6:12], m[:]) }
func (e Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(e[12:], t) }
func (e Ethernet) Encode(dst, src [6]byte, t uint16) {
	_ = e[13]
	copy(e[0:6], dst[:])
	copy(e[6:12], src[:])
	binary.BigEndian.PutUint16(e[12:], t)
}

// VLANLen is the length of one 802.1Q tag (TCI + inner EtherType).
const VLANLen = 4

// VLAN is a view of an 802.1Q tag after the TPID: TCI then EtherType.
type VLAN []byte

func (v VLAN) ID() uint16   { return binary.BigEndian.Uint16(v) & 0x0fff }
func (v VLAN) Type() uint16 { return binary.BigEndian.Uint16(v[2:]) }
func (v VLAN) Encode(id uint16, t uint16) {
	_ = v[3]
	binary.BigEndian.PutUint16(v, id&0x0fff)
	binary.BigEndian.PutUint16(v[2:], t)
}

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
