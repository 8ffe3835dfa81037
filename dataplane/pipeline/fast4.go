package pipeline

import (
	"encoding/binary"

	"github.com/peergate/peergate/dataplane/packet"
)

// The VXLAN fast path: what most packets of a VXLAN attachment are, an
// option-less outer IPv4/UDP/VXLAN header around an untagged inner
// option-less IPv4 header of a first UDP or TCP fragment, from the VNI, VTEP and
// inner MAC the worker classified and learned last. fast4 parses such a
// packet with one bounds check (fixed offsets into the first fastMin
// bytes), no calls and no VLAN or port-local checks, and parks it in the
// burst's pending array exactly as processOne -> vxlanIn -> inVPC ->
// forward4 would. Anything else, including every packet those would drop
// or count differently, goes through processOne unchanged.
const (
	// fastL3 is the inner IPv4 header's offset in the frame.
	fastL3 = packet.EthernetMinLen + packet.IPv4MinLen + packet.UDPLen + packet.VXLANLen + packet.EthernetMinLen
	// fastMin is the shortest frame the fast path takes: through the inner
	// UDP header or the TCP ports (a TCP header's length is checked against
	// the inner packet's).
	fastMin = fastL3 + packet.IPv4MinLen + packet.UDPLen
)

// fast4 returns the inner IPv4 packet's length when it took b (parsed and
// pending), 0 to leave b and every counter untouched for processOne. The
// caller counts a taken packet's reception (countFast): its port is
// w.lastPort, its VPC w.lastVPC. w.snap is not nil and the worker is
// batching.
func (w *Worker) fast4(b *Buf) int {
	s := w.snap
	off, n := b.Off, b.Len
	if off < 0 || n < fastMin || off > len(b.Mem)-n {
		return 0
	}
	d := b.Mem[off : off+n]
	h := (*[fastMin]byte)(d)
	// Outer: IPv4 without options, not a fragment, UDP to our VTEP's VXLAN
	// port, VNI flag set, and the VNI of the last classification.
	if binary.BigEndian.Uint16(h[12:]) != packet.EtherTypeIPv4 || h[14] != 0x45 || h[23] != packet.ProtoUDP ||
		binary.BigEndian.Uint16(h[20:])&0x3fff != 0 || s.VTEP == 0 || binary.BigEndian.Uint32(h[30:]) != s.VTEP ||
		binary.BigEndian.Uint16(h[36:]) != packet.VXLANPort || h[42]&0x08 == 0 {
		return 0
	}
	// The inner frame ends where the outer IP packet does.
	end := packet.EthernetMinLen + int(binary.BigEndian.Uint16(h[16:]))
	if end < fastMin || end > n || int(b.InPort) >= len(s.Ports) {
		return 0
	}
	vni := binary.BigEndian.Uint32(h[46:]) >> 8
	if vni != w.lastVNI || b.InPort != w.lastPort || w.lastGen != w.learnGen {
		return 0
	}
	v := w.lastVPC
	outerSrc := binary.BigEndian.Uint32(h[26:])
	srcMAC := [6]byte(h[56:62])
	// recentlyLearned, written out: too big to inline.
	if binary.BigEndian.Uint16(h[62:]) != packet.EtherTypeIPv4 ||
		!w.lastLearned.holds(outerSrc, [6]byte(h[6:12]), srcMAC, v, w.learnGen, w.now) && !w.learnedLately(outerSrc, [6]byte(h[6:12]), srcMAC, v) {
		return 0
	}
	// Inner: option-less IPv4, first fragment of UDP or TCP, length within the
	// outer packet, checksum right.
	tot := int(binary.BigEndian.Uint16(h[fastL3+2:]))
	proto := h[fastL3+9]
	minTot := packet.IPv4MinLen + packet.UDPLen
	if proto == packet.ProtoTCP {
		minTot = packet.IPv4MinLen + packet.TCPMinLen
	} else if proto != packet.ProtoUDP {
		return 0
	}
	if h[fastL3] != 0x45 || binary.BigEndian.Uint16(h[fastL3+6:])&0x1fff != 0 ||
		tot < minTot || tot > end-fastL3 || !sum20OK(h[fastL3:]) {
		return 0
	}
	if s.VPCs[v].HasSrcRoutes {
		return 0
	}

	e := &w.pend[w.npend]
	p := &e.p
	p.b, p.d = b, d[:end]
	p.vxlan, p.local, p.outerSrc, p.vpc = true, false, outerSrc, v
	p.outerSrcMAC = [6]byte(h[6:12])
	p.srcMAC = srcMAC
	p.l3, p.etype = fastL3, packet.EtherTypeIPv4
	u := h[fastL3+packet.IPv4MinLen:]
	l4 := l4info{sport: binary.BigEndian.Uint16(u[0:]), dport: binary.BigEndian.Uint16(u[2:]), csumOff: -1}
	if proto == packet.ProtoTCP {
		l4.csumOff = packet.TCPChecksumOffset
	} else if u[6]|u[7] != 0 {
		l4.csumOff = packet.UDPChecksumOffset
	}
	src, dst := binary.BigEndian.Uint32(h[fastL3+12:]), binary.BigEndian.Uint32(h[fastL3+16:])
	e.ip, e.ihl, e.tot, e.proto, e.l4 = packet.IPv4(d[fastL3:fastL3+tot]), packet.IPv4MinLen, tot, proto, l4
	e.src, e.dst, e.hash = src, dst, flowHash4(src, dst, proto, l4.sport, l4.dport)
	w.npend++
	return end - fastL3
}

// countFast counts np packets (nb frame bytes, ni inner IPv4 bytes) fast4
// took since the last call: received on w.lastPort from VPC w.lastVPC,
// which only processOne changes.
func (w *Worker) countFast(np, nb, ni int) {
	pc := &w.C.Ports[portSlot(w.lastPort)]
	pc.RxPackets += uint64(np)
	pc.RxBytes += uint64(nb)
	if v := w.lastVPC; uint(v) < uint(len(w.traffic.vpc)) {
		t := &w.traffic.vpc[v]
		t.Packets += uint64(np)
		t.Bytes += uint64(ni)
	}
}
