package nat

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func ip4(s string) uint32 {
	a := netip.MustParseAddr(s).As4()
	return binary.BigEndian.Uint32(a[:])
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ipLayer(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(), Id: 7}
}

func udpPkt(t testing.TB, src string, sport uint16, dst string, dport uint16) []byte {
	ip := ipLayer(src, dst, layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, u, gopacket.Payload("hello udp"))
}

func tcpPkt(t testing.TB, src string, sport uint16, dst string, dport uint16, syn, ack, fin, rst bool) []byte {
	ip := ipLayer(src, dst, layers.IPProtocolTCP)
	tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: syn, ACK: ack, FIN: fin, RST: rst, Window: 1000, Seq: 1}
	if syn {
		tc.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
	}
	tc.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tc, gopacket.Payload("data"))
}

func echoPkt(t testing.TB, src, dst string, reply bool, id uint16) []byte {
	typ := uint8(layers.ICMPv4TypeEchoRequest)
	if reply {
		typ = layers.ICMPv4TypeEchoReply
	}
	return serialize(t, ipLayer(src, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: 1}, gopacket.Payload("ping"))
}

// icmpError wraps the first bytes of quoted in an ICMP error from src to dst.
func icmpError(t testing.TB, src, dst string, typ, code uint8, quoted []byte) []byte {
	q := quoted
	if len(q) > 28+8 {
		q = q[:28+8]
	}
	return serialize(t, ipLayer(src, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, gopacket.Payload(append([]byte(nil), q...)))
}

// checkSums verifies every checksum of an IPv4 packet from scratch, quoted
// packets of ICMP errors included (their transport checksum only when the
// quote is whole).
func checkSums(t testing.TB, p []byte) {
	t.Helper()
	if err := verify(p, true); err != nil {
		t.Fatalf("%v in % x", err, p)
	}
}

func verify(p []byte, outer bool) error {
	ihl := int(p[0]&0xf) * 4
	if checksum(p[:ihl]) != 0 {
		return fmt.Errorf("bad IPv4 header checksum")
	}
	tot := int(get16(p, 2))
	if tot > len(p) {
		if outer {
			return fmt.Errorf("truncated")
		}
		tot = len(p)
	}
	whole := int(get16(p, 2)) <= len(p)
	l := p[ihl:tot]
	switch p[9] {
	case ipProtoTCP, ipProtoUDP:
		if !whole {
			return nil
		}
		if p[9] == ipProtoUDP && get16(l, 6) == 0 {
			return nil
		}
		s := sum(p[12:20], 0) + uint32(p[9]) + uint32(len(l))
		if ^fold(sum(l, s)) != 0 {
			return fmt.Errorf("bad %d checksum", p[9])
		}
	case ipProtoICMP:
		if whole && checksum(l) != 0 {
			return fmt.Errorf("bad ICMP checksum")
		}
		if outer && (l[0] == 3 || l[0] == 11 || l[0] == 12) {
			return verify(l[8:], false)
		}
	}
	return nil
}
