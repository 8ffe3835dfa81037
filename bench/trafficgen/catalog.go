package trafficgen

import (
	"net"
	"net/netip"
)

// The af_packet scenario's addressing (bench/afpacket builds the topology
// with these): the sender plays vpc-e1's upstream router of the second use
// case of the Peering document (testdata/manifests/peering-api-2-externals),
// the receiver vpc-e2's. Internet sources behind e1 send to Internet
// destinations behind e2, which the gateway routes by e2's static default
// route to 198.51.100.1.
var (
	AFSenderMAC  = net.HardwareAddr{0x02, 0x70, 0x67, 0x5e, 0x00, 0x01}
	AFGatewayMAC = net.HardwareAddr{0x02, 0x70, 0x67, 0x00, 0x00, 0x02} // the gateway's e1 port
	AFSrc        = netip.MustParsePrefix("20.0.0.0/8")
	AFDst        = netip.MustParsePrefix("30.0.0.0/8")
)

var (
	fabricMAC = net.HardwareAddr{0x02, 0x70, 0x67, 0x00, 0x00, 0x01} // replay's default MAC of port id 0
	vtepMAC   = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	host1MAC  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}
	// the gateway's router MAC inside a VPC: the fabric port's
	routerMAC = fabricMAC
	vtep      = netip.MustParseAddr("192.0.2.10")
	gwVTEP    = netip.MustParseAddr("192.0.2.1")
)

// Catalog is every scenario's pcap. Names say what they hold.
func Catalog() []Spec {
	af := func(name, comment string, sizes []int, flows int, seed uint64) Spec {
		return Spec{Name: name, Comment: comment, Seed: seed, Packets: 100_000, Sizes: sizes, Encap: Untagged,
			SrcMAC: AFSenderMAC, DstMAC: AFGatewayMAC, Src: AFSrc, Dst: AFDst, Flows: flows}
	}
	vx := func(name, comment string, sizes []int, src, dst netip.Prefix, flows int, tcp bool, newFrac float64, seed uint64) Spec {
		return Spec{Name: name, Comment: comment, Seed: seed, Packets: 65_536, Sizes: sizes, Encap: VXLAN, VNI: 100,
			OuterSrc: vtep, OuterDst: gwVTEP, SrcMAC: vtepMAC, DstMAC: fabricMAC, InnerSrcMAC: host1MAC, InnerDstMAC: routerMAC,
			Src: src, Dst: dst, Flows: flows, TCP: tcp, NewFraction: newFrac}
	}
	vl := func(name, comment string, sizes []int, src, dst netip.Prefix, flows int, seed uint64) Spec {
		return Spec{Name: name, Comment: comment, Seed: seed, Packets: 65_536, Sizes: sizes, Encap: VLAN, VLAN: 100,
			SrcMAC: host1MAC, DstMAC: routerMAC, Src: src, Dst: dst, Flows: flows}
	}
	p := netip.MustParsePrefix
	return []Spec{
		af("afpacket-64-v4-16flows", "64-byte UDP, 16 flows, e1 -> e2 of peering-api-2 (af_packet scenario)", Small, 16, 1),
		af("afpacket-imix-v4-64kflows", "IMIX UDP, 65536 flows, e1 -> e2 of peering-api-2 (af_packet scenario)", IMIX, 65536, 2),
		// Seed scenarios' addressing: Kube-OVN peering (vpc-1 10.0.0.0/16 over VXLAN VNI 100 to vpc-2 172.31.0.0/16).
		vx("seed-kube-ovn-vxlan-64-v4-16flows", "Kube-OVN seed: vpc-1 -> vpc-2, 64-byte inner UDP, 16 flows", Small, p("10.0.0.0/16"), p("172.31.0.0/16"), 16, false, 0, 3),
		vx("seed-kube-ovn-vxlan-imix-v4-64kflows", "Kube-OVN seed: vpc-1 -> vpc-2, IMIX inner UDP, 65536 flows", IMIX, p("10.0.0.0/16"), p("172.31.0.0/16"), 65536, false, 0, 4),
		// Peering use case 1 (stateless NAT): vpc1 10.1.1.0/24 over VXLAN toward vpc2's exposed addresses.
		withSrcPort(443, vx("seed-static-nat-vxlan-64-v4-1kflows", "Peering use case 1: vpc1 -> vpc2's exposed 10.2.1.1 through stateless NAT, TCP from port 443 (vpc2's ingress filter), 64-byte inner frames, 1024 flows", Small, p("10.1.1.0/24"), p("10.2.1.1/32"), 1024, true, 0, 5)),
		// Peering use case 4 (stateful NAT to the Internet): vpc-1 10.1.1.0/24, new and established TCP sessions.
		vx("seed-internet-vxlan-tcp-new50", "Peering use case 4: vpc-1 -> Internet, TCP, half the packets open new sessions", Small, p("10.1.1.0/24"), p("0.0.0.0/0"), 65536, true, 0.5, 6),
		vx("seed-internet-vxlan-tcp-established", "Peering use case 4: vpc-1 -> Internet, TCP, established sessions only (65536)", Small, p("10.1.1.0/24"), p("0.0.0.0/0"), 65536, true, 0, 7),
		vx("seed-internet-vxlan-tcp-new1", "Peering use case 4: vpc-1 -> Internet, TCP, 1% new sessions", IMIX, p("10.1.1.0/24"), p("0.0.0.0/0"), 65536, true, 0.01, 8),
		vx("vxlan-64-v6-16flows", "IPv6 inside VXLAN, 64-byte inner frames (the minimum IPv6/UDP frame is 62 bytes), 16 flows", Small, p("fd00:1::/64"), p("fd00:2::/64"), 16, false, 0, 9),
		vl("vlan-64-v4-16flows", "802.1Q VLAN 100, 64-byte frames, 16 flows", Small, p("10.0.0.0/16"), p("172.31.0.0/16"), 16, 10),
		vl("vlan-imix-v6-64kflows", "802.1Q VLAN 100, IMIX, IPv6, 65536 flows", IMIX, p("fd00:1::/64"), p("fd00:2::/64"), 65536, 11),
	}
}

func withSrcPort(port uint16, s Spec) Spec {
	s.SrcPort = port
	return s
}
