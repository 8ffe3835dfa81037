package packet

import "encoding/binary"

// ARPLen is the length of an Ethernet/IPv4 ARP packet.
const ARPLen = 28

// ARP opcodes.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is a view of an Ethernet/IPv4 ARP packet.
type ARP []byte

// IsEthernetIPv4 reports whether the hardware and protocol types are
// Ethernet and IPv4 with the matching lengths.
func (a ARP) IsEthernetIPv4() bool {
	return binary.BigEndian.Uint16(a[0:]) == 1 && binary.BigEndian.Uint16(a[2:]) == EtherTypeIPv4 && a[4] == 6 && a[5] == 4
}
func (a ARP) Op() uint16             { return binary.BigEndian.Uint16(a[6:]) }
func (a ARP) SenderMAC() (m [6]byte) { copy(m[:], a[8:14]); return }
func (a ARP) SenderIP() uint32       { return binary.BigEndian.Uint32(a[14:]) }
func (a ARP) TargetMAC() (m [6]byte) { copy(m[:], a[18:24]); return }
func (a ARP) TargetIP() uint32       { return binary.BigEndian.Uint32(a[24:]) }

// Encode writes a whole Ethernet/IPv4 ARP packet.
func (a ARP) Encode(op uint16, sha [6]byte, spa uint32, tha [6]byte, tpa uint32) {
	_ = a[27]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], sha[:])
	binary.BigEndian.PutUint32(a[14:], spa)
	copy(a[18:24], tha[:])
	binary.BigEndian.PutUint32(a[24:], tpa)
}
