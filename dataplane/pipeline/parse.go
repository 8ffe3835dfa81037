package pipeline

import (
	"encoding/binary"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
)

// pkt is what parsing learned about one received packet. It lives on the
// stack of processOne.
type pkt struct {
	b *Buf
	// d is the received frame (Mem[Off:Off+Len] at arrival).
	d []byte
	// l3 is the offset in d of the (inner) IP or ARP header; etype its type.
	l3    int
	etype uint16
	// srcMAC is the (inner) source MAC: where replies go.
	srcMAC [6]byte
	// VXLAN: outer source (remote VTEP) and its MAC.
	vxlan       bool
	outerSrc    uint32
	outerSrcMAC [6]byte
	vpc         int
	// local: addressed to the port itself (underlay), not to a VPC.
	local bool
}

// processOne parses and classifies one packet and hands it to its stage.
func (w *Worker) processOne(b *Buf) {
	pc := &w.C.Ports[portSlot(b.InPort)]
	pc.RxPackets++
	pc.RxBytes += uint64(b.Len)
	s := w.snap
	if s == nil {
		w.drop(b, DropNoTables)
		return
	}
	if b.Off < 0 || b.Len < 0 || b.Off+b.Len > len(b.Mem) || b.Len < packet.EthernetMinLen {
		w.drop(b, DropMalformed)
		return
	}
	// p lives in the next free slot of the burst's pending packets: an
	// IPv4 packet that waits for the batched route lookup stays there
	// without a copy; any other reuses the slot.
	// Its fields are set one by one rather than zeroed as a whole: l3,
	// etype and srcMAC are always written before they are read.
	p := &w.pend[w.npend].p
	d := b.Mem[b.Off : b.Off+b.Len]
	p.b, p.d = b, d
	p.vxlan, p.local, p.outerSrc, p.vpc = false, false, 0, 0
	p.outerSrcMAC = [6]byte{}
	et := binary.BigEndian.Uint16(d[12:])
	off := packet.EthernetMinLen
	var tags [2]uint16
	nt := 0
	for (et == packet.EtherTypeVLAN || et == packet.EtherTypeQinQ) && nt < 2 {
		if len(d) < off+packet.VLANLen {
			w.drop(b, DropMalformed)
			return
		}
		tags[nt] = binary.BigEndian.Uint16(d[off:]) & 0x0fff
		et = binary.BigEndian.Uint16(d[off+2:])
		off += packet.VLANLen
		nt++
	}
	if et == packet.EtherTypeVLAN || et == packet.EtherTypeQinQ {
		w.drop(b, DropUnknownVLAN)
		return
	}
	if port := int(b.InPort); port >= len(s.Ports) {
		w.drop(b, DropUnknownPort)
		return
	}
	switch nt {
	case 0:
		if et == packet.EtherTypeIPv4 && s.VTEP != 0 && len(d) >= off+packet.IPv4MinLen+packet.UDPLen+packet.VXLANLen+packet.EthernetMinLen &&
			d[off+9] == packet.ProtoUDP && binary.BigEndian.Uint32(d[off+16:]) == s.VTEP {
			ihl := int(d[off]&0x0f) * 4
			if d[off]>>4 == 4 && ihl >= packet.IPv4MinLen && len(d) >= off+ihl+packet.UDPLen &&
				binary.BigEndian.Uint16(d[off+ihl+2:]) == packet.VXLANPort {
				w.vxlanIn(p, off, ihl)
				return
			}
		}
		copy(p.srcMAC[:], d[6:12])
		if w.portLocal(p, off, et) {
			return
		}
		v, ok := s.ClassifyUntagged(b.InPort)
		if !ok {
			w.drop(b, DropUnknownPort)
			return
		}
		p.vpc = v
	case 1:
		copy(p.srcMAC[:], d[6:12])
		v, ok := s.ClassifyVLAN(b.InPort, 0, tags[0])
		if !ok {
			w.drop(b, DropUnknownVLAN)
			return
		}
		p.vpc = v
	default:
		copy(p.srcMAC[:], d[6:12])
		v, ok := s.ClassifyVLAN(b.InPort, tags[0], tags[1])
		if !ok {
			w.drop(b, DropUnknownVLAN)
			return
		}
		p.vpc = v
	}
	p.l3, p.etype = off, et
	w.inVPC(p)
}

// vxlanIn decapsulates a VXLAN packet addressed to the gateway's VTEP.
func (w *Worker) vxlanIn(p *pkt, off, ihl int) {
	d, b, s := p.d, p.b, w.snap
	outer := packet.IPv4(d[off:])
	tot := outer.TotalLen()
	if tot < ihl+packet.UDPLen+packet.VXLANLen+packet.EthernetMinLen || off+tot > len(d) || outer.IsFragment() {
		w.drop(b, DropMalformed)
		return
	}
	vx := packet.VXLAN(d[off+ihl+packet.UDPLen:])
	if !vx.ValidVNI() {
		w.drop(b, DropMalformed)
		return
	}
	// Bursts mostly come from one VNI: remember the last classification.
	vni := vx.VNI()
	v := w.lastVPC
	if vni != w.lastVNI || b.InPort != w.lastPort || w.lastGen != w.learnGen {
		var ok bool
		if v, ok = s.ClassifyVXLAN(b.InPort, vni); !ok {
			w.drop(b, DropUnknownVNI)
			return
		}
		w.lastVNI, w.lastPort, w.lastVPC, w.lastGen = vni, b.InPort, v, w.learnGen
	}
	p.vxlan, p.vpc = true, v
	p.outerSrc = outer.Src()
	copy(p.outerSrcMAC[:], d[6:12])
	in := off + ihl + packet.UDPLen + packet.VXLANLen
	// The inner frame ends where the outer IP packet does (Ethernet padding
	// of the outer frame is not part of it).
	p.d = d[:off+tot]
	d = p.d
	copy(p.srcMAC[:], d[in+6:in+12])
	et := binary.BigEndian.Uint16(d[in+12:])
	if et == packet.EtherTypeVLAN || et == packet.EtherTypeQinQ {
		w.drop(b, DropInnerVLAN)
		return
	}
	// Learn the underlay neighbour and which VTEP the inner MAC sits behind
	// (skipped while packets keep coming from what was learned lately).
	if !w.recentlyLearned(p.outerSrc, p.outerSrcMAC, p.srcMAC, v) {
		vpc := &s.VPCs[v]
		k := key4(scopePort|uint32(vpc.Port), p.outerSrc)
		if w.learn(&k, p.outerSrcMAC, 0) {
			w.C.Events[EvNeighbourLearned]++
			w.released(&k)
		}
		km := keyMAC(uint16(v), p.srcMAC)
		if w.learn(&km, p.srcMAC, p.outerSrc) {
			w.C.Events[EvVTEPLearned]++
		}
		w.rememberLearned(p.outerSrc, p.outerSrcMAC, p.srcMAC, v)
	}
	p.l3, p.etype = in+packet.EthernetMinLen, et
	w.inVPC(p)
}

// portLocal handles ARP and ICMP addressed to the port's own addresses (the
// underlay), reporting whether it took the packet.
func (w *Worker) portLocal(p *pkt, off int, et uint16) bool {
	port := &w.snap.Ports[p.b.InPort]
	if len(port.IP4) == 0 && w.snap.VTEP == 0 {
		return false
	}
	d := p.d
	switch et {
	case packet.EtherTypeARP:
		if len(d) < off+packet.ARPLen {
			return false
		}
		a := packet.ARP(d[off:])
		if !a.IsEthernetIPv4() || !w.isPortIP(port, a.TargetIP()) {
			return false
		}
		p.local, p.l3, p.etype = true, off, et
		w.arpIn(p, nil)
		return true
	case packet.EtherTypeIPv4:
		if len(d) < off+packet.IPv4MinLen || !w.isPortIP(port, binary.BigEndian.Uint32(d[off+16:])) {
			return false
		}
		p.local, p.l3, p.etype = true, off, et
		w.local4(p, nil)
		return true
	}
	return false
}

func (w *Worker) isPortIP(port *fib.Port, a uint32) bool {
	if a == w.snap.VTEP && a != 0 {
		return true
	}
	for _, x := range port.IP4 {
		if x == a {
			return true
		}
	}
	return false
}

// inVPC dispatches a classified packet.
func (w *Worker) inVPC(p *pkt) {
	w.countVPC(p.vpc, len(p.d)-p.l3)
	switch p.etype {
	case packet.EtherTypeIPv4:
		w.forward4(p)
	case packet.EtherTypeIPv6:
		w.forward6(p)
	case packet.EtherTypeARP:
		w.arpIn(p, &w.snap.VPCs[p.vpc])
	default:
		w.drop(p.b, DropUnknownEtherType)
	}
}
