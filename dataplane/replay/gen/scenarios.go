package main

import (
	"net"

	"github.com/gopacket/gopacket/layers"
)

var (
	vtepMAC = mac("52:54:00:00:00:0a")
	h1      = mac("52:54:00:01:00:02")
	h3      = mac("52:54:00:01:00:03")
	h5      = mac("52:54:00:01:00:05")
	h2      = mac("52:54:00:02:00:02")
	h4      = mac("52:54:00:02:00:04")
	zero    = mac("00:00:00:00:00:00")
	gw0     = gwMAC(0)
	gw1     = gwMAC(1)
	gw2     = gwMAC(2)
)

const (
	gwVTEP = "192.0.2.1"
	vtep   = "192.0.2.10"
	vni    = 100
)

// fromVTEP wraps a frame the remote VTEP sends to the gateway.
func fromVTEP(id uint16, inner []byte) []byte {
	return vxlan(vtepMAC, gw0, vtep, gwVTEP, id, 50000, vni, inner)
}

// toVTEP is what the gateway must send to the remote VTEP.
func toVTEP(inner []byte) []byte { return vxlan(gw0, vtepMAC, gwVTEP, vtep, 0, 0, vni, inner) }

func arpFrame(src, dst net.HardwareAddr, a []byte) []byte {
	return eth(src, dst, layers.EthernetTypeARP, a)
}

// underlayARP: the remote VTEP resolves the gateway's VTEP address.
func underlayARP(b *builder) {
	b.rx(1, "fabric", arpFrame(vtepMAC, bcast, arp(1, vtepMAC, vtep, nil, gwVTEP)), "VTEP asks for the gateway's VTEP IP: answered")
	b.tx(1, "fabric", arpFrame(gw0, vtepMAC, arp(2, gw0, gwVTEP, vtepMAC, vtep)))
}

func kubeOVN() *builder {
	b := newBuilder("kube-ovn-vpc-peering", "testdata/manifests/kube-ovn-vpc-peering")
	underlayARP(b)
	b.rx(2, "fabric", fromVTEP(0x100, arpFrame(h1, bcast, arp(1, h1, "10.0.0.2", nil, "10.0.0.1"))), "vpc-1 pod asks for its router 10.0.0.1 over VXLAN: answered, pod learned")
	b.tx(2, "fabric", toVTEP(arpFrame(gw0, h1, arp(2, gw0, "10.0.0.1", h1, "10.0.0.2"))))
	b.rx(3, "vpc2", arpFrame(h2, bcast, arp(1, h2, "172.31.0.2", nil, "172.31.0.2")), "vpc-2 pod sends a gratuitous ARP: learned")
	b.drop("consumed")

	p := ipPkt("10.0.0.2", "172.31.0.2", 64, 0x1001, false, echo(true, 1, 1, 56)...)
	b.rx(4, "fabric", fromVTEP(0x101, eth4(h1, gw0, p)), "ping vpc-1 -> vpc-2: arrives with ttl 62")
	b.tx(4, "vpc2", eth4(gw1, h2, withTTL(p, 62)))
	p = ipPkt("172.31.0.2", "10.0.0.2", 64, 0x2001, false, echo(false, 1, 1, 56)...)
	b.rx(5, "vpc2", eth4(h2, gw1, p), "its reply: ttl 62 at vpc-1")
	b.tx(5, "fabric", toVTEP(eth4(gw0, h1, withTTL(p, 62))))
	p = ipPkt("172.31.0.2", "10.0.0.2", 64, 0x2002, false, echo(true, 2, 1, 56)...)
	b.rx(6, "vpc2", eth4(h2, gw1, p), "ping vpc-2 -> vpc-1: ttl 62")
	b.tx(6, "fabric", toVTEP(eth4(gw0, h1, withTTL(p, 62))))
	p = ipPkt("10.0.0.2", "172.31.0.2", 64, 0x1002, false, echo(false, 2, 1, 56)...)
	b.rx(7, "fabric", fromVTEP(0x102, eth4(h1, gw0, p)), "its reply: ttl 62")
	b.tx(7, "vpc2", eth4(gw1, h2, withTTL(p, 62)))

	p = ipPkt("10.0.0.2", "10.0.0.1", 64, 0x1003, false, echo(true, 3, 1, 56)...)
	b.rx(8, "fabric", fromVTEP(0x103, eth4(h1, gw0, p)), "ping the vpc-1 router: echo reply")
	b.tx(8, "fabric", toVTEP(eth4(gw0, h1, ipPkt("10.0.0.1", "10.0.0.2", 64, 0x1003, false, echo(false, 3, 1, 56)...))))

	p = ipPkt("10.0.0.2", "172.31.0.2", 2, 0x1004, false, echo(true, 4, 1, 56)...)
	b.rx(9, "fabric", fromVTEP(0x104, eth4(h1, gw0, p)), "ttl 2 across two routers: time exceeded quoting the packet")
	b.tx(9, "fabric", toVTEP(eth4(gw0, h1, icmpErr("10.0.0.1", "10.0.0.2", 11, 0, 0, p))))
	b.drop("ttl_expired")

	p = ipPkt("172.31.0.2", "10.0.0.2", 64, 0x2004, true, echo(true, 5, 1, 1472)...)
	b.rx(10, "vpc2", eth4(h2, gw1, p), "1500-byte DF packet into VXLAN (MTU 1500 - 50): fragmentation needed, MTU 1450")
	b.tx(10, "vpc2", eth4(gw1, h2, icmpErr("172.31.0.1", "172.31.0.2", 3, 4, 1450, p)))
	b.drop("too_big")

	p = ipPkt("172.31.0.2", "10.0.0.3", 64, 0x2005, false, echo(true, 6, 1, 56)...)
	b.rx(11, "vpc2", eth4(h2, gw1, p), "to an unresolved pod: held, ARP request over VXLAN")
	b.tx(11, "fabric", toVTEP(arpFrame(gw0, bcast, arp(1, gw0, "10.0.0.1", zero, "10.0.0.3"))))
	b.rx(12, "fabric", fromVTEP(0x105, arpFrame(h3, gw0, arp(2, h3, "10.0.0.3", gw0, "10.0.0.1"))), "ARP reply: learned, held packet released")
	b.tx(12, "fabric", toVTEP(eth4(gw0, h3, withTTL(p, 62))))
	b.drop("consumed")

	p = ipPkt("10.0.0.2", "8.8.8.8", 64, 0x1006, false, echo(true, 7, 1, 56)...)
	b.rx(13, "fabric", fromVTEP(0x106, eth4(h1, gw0, p)), "no route: network unreachable")
	b.tx(13, "fabric", toVTEP(eth4(gw0, h1, icmpErr("10.0.0.1", "10.0.0.2", 3, 0, 0, p))))
	b.drop("no_route")

	b.rx(14, "fabric", vxlan(vtepMAC, gw0, vtep, gwVTEP, 0x107, 50000, 999, eth4(h1, gw0, p)), "unknown VNI 999: dropped")
	b.drop("unknown_vni")
	return b
}

func staticNAT() *builder {
	b := newBuilder("peering-api-1-static-nat", "testdata/manifests/peering-api-1-static-nat")
	underlayARP(b)
	b.rx(2, "fabric", fromVTEP(0x100, arpFrame(h1, bcast, arp(1, h1, "10.1.1.5", nil, "10.1.1.1"))), "vpc1 host asks for its router: answered")
	b.tx(2, "fabric", toVTEP(arpFrame(gw0, h1, arp(2, gw0, "10.1.1.1", h1, "10.1.1.5"))))
	b.rx(3, "vpc2", arpFrame(h2, bcast, arp(1, h2, "10.2.1.1", nil, "10.2.1.254")), "vpc2 host asks for its router: answered")
	b.tx(3, "vpc2", arpFrame(gw1, h2, arp(2, gw1, "10.2.1.254", h2, "10.2.1.1")))

	// vpc2's ingress allows tcp srcPort 443, vpc1's tcp dstPort 443: a flow
	// from 10.2.1.1 to vpc1's https server at its public 192.168.1.5.
	syn := tcpSeg(40000, 443, true, false, 1000, 0)
	b.rx(4, "vpc2", eth4(h2, gw1, ipPkt("10.2.1.1", "192.168.1.5", 64, 0x2001, true, syn...)), "TCP SYN to 192.168.1.5:443: destination NAT to 10.1.1.5")
	b.tx(4, "fabric", toVTEP(eth4(gw0, h1, ipPkt("10.2.1.1", "10.1.1.5", 63, 0x2001, true, syn...))))
	synack := tcpSeg(443, 40000, true, true, 5000, 1001)
	b.rx(5, "fabric", fromVTEP(0x101, eth4(h1, gw0, ipPkt("10.1.1.5", "10.2.1.1", 64, 0x1001, true, synack...))), "SYN-ACK back: source NAT to 192.168.1.5")
	b.tx(5, "vpc2", eth4(gw1, h2, ipPkt("192.168.1.5", "10.2.1.1", 63, 0x1001, true, synack...)))
	ack := tcpSeg(40000, 443, false, true, 1001, 5001)
	b.rx(6, "vpc2", eth4(h2, gw1, ipPkt("10.2.1.1", "192.168.1.5", 64, 0x2002, true, ack...)), "ACK")
	b.tx(6, "fabric", toVTEP(eth4(gw0, h1, ipPkt("10.2.1.1", "10.1.1.5", 63, 0x2002, true, ack...))))

	b.rx(7, "vpc2", eth4(h2, gw1, ipPkt("10.2.1.1", "192.168.1.5", 64, 0x2003, true, tcpSeg(40001, 80, true, false, 1, 0)...)), "TCP to port 80: vpc1's ingress drops it")
	b.drop("filtered")
	b.rx(8, "fabric", fromVTEP(0x102, eth4(h1, gw0, ipPkt("10.1.1.5", "10.2.1.1", 64, 0x1002, true, tcpSeg(5555, 22, true, false, 1, 0)...))), "TCP from port 5555: vpc2's ingress drops it")
	b.drop("filtered")
	b.rx(9, "vpc2", eth4(h4, gw1, ipPkt("10.2.1.9", "192.168.1.5", 64, 0x2004, true, syn...)), "from 10.2.1.9, not exposed: dropped")
	b.drop("source_not_exposed")
	return b
}

func overlapping() *builder {
	b := newBuilder("peering-api-5-overlapping-subnets", "testdata/manifests/peering-api-5-overlapping-subnets")
	underlayARP(b)
	b.rx(2, "fabric", fromVTEP(0x100, arpFrame(h1, bcast, arp(1, h1, "10.1.1.5", nil, "10.1.1.1"))), "vpc-1 host asks for its router: answered")
	b.tx(2, "fabric", toVTEP(arpFrame(gw0, h1, arp(2, gw0, "10.1.1.1", h1, "10.1.1.5"))))
	b.rx(3, "vpc2", arpFrame(h2, bcast, arp(1, h2, "10.1.1.7", nil, "10.1.1.1")), "vpc-2 host (same subnet) asks for its router: answered")
	b.tx(3, "vpc2", arpFrame(gw1, h2, arp(2, gw1, "10.1.1.1", h2, "10.1.1.7")))

	q := udpDgram(5000, 53, "query")
	b.rx(4, "fabric", fromVTEP(0x101, eth4(h1, gw0, ipPkt("10.1.1.5", "192.168.2.7", 64, 0x1001, false, q...))), "10.1.1.5 -> 192.168.2.7: becomes 192.168.1.5 -> 10.1.1.7")
	b.tx(4, "vpc2", eth4(gw1, h2, ipPkt("192.168.1.5", "10.1.1.7", 63, 0x1001, false, q...)))
	a := udpDgram(53, 5000, "answer")
	b.rx(5, "vpc2", eth4(h2, gw1, ipPkt("10.1.1.7", "192.168.1.5", 64, 0x2001, false, a...)), "reply 10.1.1.7 -> 192.168.1.5: becomes 192.168.2.7 -> 10.1.1.5")
	b.tx(5, "fabric", toVTEP(eth4(gw0, h1, ipPkt("192.168.2.7", "10.1.1.5", 63, 0x2001, false, a...))))

	seen := ipPkt("192.168.1.5", "10.1.1.7", 63, 0x1001, false, q...)
	orig := ipPkt("10.1.1.5", "192.168.2.7", 63, 0x1001, false, q...)
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}
	b.rx(6, "vpc2", eth4(h2, gw1, ipPkt("10.1.1.7", "192.168.1.5", 64, 0x2002, false, ic, payload(seen))), "port unreachable from 10.1.1.7: outer and quoted headers translated back")
	ic2 := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}
	b.tx(6, "fabric", toVTEP(eth4(gw0, h1, ipPkt("192.168.2.7", "10.1.1.5", 63, 0x2002, false, ic2, payload(orig)))))

	b.rx(7, "vpc2", eth4(h2, gw1, ipPkt("10.1.1.7", "192.168.1.42", 64, 0x2003, false, a...)), "to 192.168.1.42 (vpc-1's excluded 10.1.1.42): dropped")
	b.drop("route_drop")
	b.rx(8, "fabric", fromVTEP(0x102, eth4(h5, gw0, ipPkt("10.1.1.42", "192.168.2.7", 64, 0x1002, false, q...))), "from excluded 10.1.1.42: dropped")
	b.drop("source_not_exposed")

	nocsum := ipPkt("10.1.1.5", "192.168.2.7", 64, 0x1003, false, q...)
	nocsum[26], nocsum[27] = 0, 0
	want := ipPkt("192.168.1.5", "10.1.1.7", 63, 0x1003, false, q...)
	want[26], want[27] = 0, 0
	b.rx(9, "fabric", fromVTEP(0x103, eth4(h1, gw0, nocsum)), "UDP without checksum: stays without")
	b.tx(9, "vpc2", eth4(gw1, h2, want))
	return b
}

func externals() *builder {
	r1, r2 := mac("52:54:00:0e:01:01"), mac("52:54:00:0e:02:01")
	b := newBuilder("peering-api-2-externals", "testdata/manifests/peering-api-2-externals")
	b.rx(1, "e1", arpFrame(r1, bcast, arp(1, r1, "203.0.113.1", nil, "203.0.113.1")), "e1's upstream router announces itself: learned")
	b.drop("consumed")
	p := ipPkt("8.8.8.8", "9.9.9.9", 60, 0x3001, false, echo(true, 1, 1, 56)...)
	b.rx(2, "e1", eth4(r1, gw1, p), "Internet traffic e1 -> e2 by e2's static default route: held, ARP for 198.51.100.1")
	b.tx(2, "e2", arpFrame(gw2, bcast, arp(1, gw2, "198.51.100.2", zero, "198.51.100.1")))
	b.rx(3, "e2", arpFrame(r2, gw2, arp(2, r2, "198.51.100.1", gw2, "198.51.100.2")), "ARP reply: held packet released")
	b.drop("consumed")
	b.tx(3, "e2", eth4(gw2, r2, withTTL(p, 59)))
	p = ipPkt("9.9.9.9", "8.8.8.8", 60, 0x4001, false, echo(false, 1, 1, 56)...)
	b.rx(4, "e2", eth4(r2, gw2, p), "reply e2 -> e1 by e1's static default route")
	b.tx(4, "e1", eth4(gw1, r1, withTTL(p, 59)))
	b.rx(5, "e1", eth4(r1, gw1, ipPkt("8.8.8.8", "10.1.2.3", 60, 0x3002, false, echo(true, 2, 1, 8)...)), "to 10.0.0.0/8, excluded by e2: dropped")
	b.drop("route_drop")
	b.rx(6, "e2", eth4(r2, gw2, ipPkt("10.0.0.5", "8.8.8.8", 60, 0x4002, false, echo(true, 3, 1, 8)...)), "from 10.0.0.0/8, excluded by e2: dropped")
	b.drop("source_not_exposed")
	b.rx(7, "e1", eth4(r1, gw1, ipPkt("8.8.8.8", "3.2.1.1", 60, 0x3003, false, echo(true, 4, 1, 8)...)), "to 3.2.1.0/30, excluded by e2: dropped")
	b.drop("route_drop")
	b.rx(8, "e1", eth4(r1, gw1, ipPkt("203.0.113.1", "203.0.113.2", 64, 0x3004, false, echo(true, 5, 1, 56)...)), "upstream router pings the gateway: echo reply")
	b.tx(8, "e1", eth4(gw1, r1, ipPkt("203.0.113.2", "203.0.113.1", 64, 0x3004, false, echo(false, 5, 1, 56)...)))
	return b
}
