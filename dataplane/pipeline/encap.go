package pipeline

import (
	"encoding/binary"
	"net/netip"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
)

// maxEncap is the most the pipeline writes in front of an IP packet: VXLAN
// (outer Ethernet, IPv4, UDP, VXLAN, inner Ethernet) plus two VLAN tags.
const maxEncap = packet.EthernetMinLen + packet.VXLANOverhead4 + 2*packet.VLANLen

// vxlanHdrs is what VXLAN over untagged IPv4 puts in front of the inner IP
// packet.
const vxlanHdrs = packet.EthernetMinLen + packet.VXLANOverhead4

func addrFrom4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

// deliver sends the IP packet b (Off/Len on the IP header) into VPC vid
// toward next hop k, resolving MACs (and the remote VTEP's MAC) first; a
// packet whose neighbour is unknown is held. held says b came out of the
// hold queue (it is not one of the current burst's buffers).
func (w *Worker) deliver(b *Buf, vid int, k neighKey, hash uint32, etype uint16, held bool) {
	s := w.snap
	vpc := &s.VPCs[vid]
	if vpc.Kind == fib.AttachNone {
		w.fail(b, DropNoRoute, held)
		return
	}
	a := &w.adj[neighHash(&k)&w.adjMask]
	if !a.validFor(&k, w.learnGen, w.now) {
		if !w.resolve(a, b, vid, vpc, k, hash, etype, held) {
			return
		}
	}
	var ok bool
	if a.hasTmpl {
		ok = w.pushTemplate(b, a, etype, hash)
	} else {
		ok = w.pushL2(b, vpc, a.mac, etype, a.vtep, a.vtepMAC, hash)
	}
	if !ok {
		w.fail(b, DropNoHeadroom, held)
		return
	}
	if held {
		w.C.Events[EvReleased]++
		w.emit(b, vpc.Port)
		return
	}
	w.tx(b, vpc.Port)
}

// resolve fills adjacency a for next hop k in vpc from the neighbour table,
// or holds b (and reports false) while something is unresolved.
func (w *Worker) resolve(a *adjacency, b *Buf, vid int, vpc *fib.VPC, k neighKey, hash uint32, etype uint16, held bool) bool {
	e := w.lookupNeigh(&k)
	if e == nil {
		w.holdFor(b, vid, k, k, hash, etype, held)
		return false
	}
	until := e.updated + neighLifetime
	var vtep uint32
	var vtepMAC [6]byte
	if vpc.Kind == fib.AttachVXLAN {
		vtep = vpc.VTEPs[0]
		km := keyMAC(uint16(vid), e.mac)
		if le := w.lookupNeigh(&km); le != nil {
			vtep = le.vtep
			until = min(until, le.updated+neighLifetime)
		}
		ok := key4(scopePort|uint32(vpc.Port), vtep)
		oe := w.lookupNeigh(&ok)
		if oe == nil {
			w.holdFor(b, vid, k, ok, hash, etype, held)
			return false
		}
		vtepMAC = oe.mac
		until = min(until, oe.updated+neighLifetime)
	}
	*a = adjacency{key: k, gen: w.learnGen, until: until, mac: e.mac, vtep: vtep, vtepMAC: vtepMAC}
	if vpc.Kind == fib.AttachVXLAN {
		a.buildTemplate(vpc, w.p.cfg.DefaultTTL, w.snap.VTEP)
	}
	return true
}

// buildTemplate precomputes a VXLAN adjacency's headers (valid as long as
// the adjacency: the snapshot's VTEP, VNI and MACs change only with
// learnGen).
func (a *adjacency) buildTemplate(vpc *fib.VPC, ttl uint8, src uint32) {
	m := a.tmpl[:]
	packet.Ethernet(m).Encode(a.vtepMAC, vpc.MAC, packet.EtherTypeIPv4)
	encodeOuter4(m[14:34], 0, 0, ttl, src, a.vtep)
	packet.UDP(m[34:]).Encode(0, packet.VXLANPort, 0, 0)
	packet.VXLAN(m[42:]).Encode(vpc.VNI)
	packet.Ethernet(m[50:]).Encode(a.mac, vpc.MAC, 0)
	w2 := uint32(ttl)<<8 | packet.ProtoUDP
	a.tsum = 0x4500 + w2 + src>>16 + src&0xffff + a.vtep>>16 + a.vtep&0xffff
	a.hasTmpl = true
}

// pushTemplate writes a VXLAN adjacency's headers in front of b's packet:
// one copy of the template, then the per-packet fields.
func (w *Worker) pushTemplate(b *Buf, a *adjacency, etype uint16, hash uint32) bool {
	start := b.Off - vxlanHdrs
	if start < 0 {
		return false
	}
	m := b.Mem[start : b.Off+b.Len]
	// An array assignment: inline vector moves, no memmove call.
	*(*[vxlanHdrs]byte)(m) = a.tmpl
	ipl := len(m) - packet.EthernetMinLen
	w.ipID++
	id := uint32(w.ipID)
	s := a.tsum + uint32(ipl) + id
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	binary.BigEndian.PutUint16(m[16:], uint16(ipl))
	binary.BigEndian.PutUint16(m[18:], uint16(id))
	binary.BigEndian.PutUint16(m[24:], ^uint16(s))
	binary.BigEndian.PutUint16(m[34:], uint16(49152|hash&0x3fff))
	binary.BigEndian.PutUint16(m[38:], uint16(ipl-packet.IPv4MinLen))
	binary.BigEndian.PutUint16(m[62:], etype)
	b.Off, b.Len = start, len(m)
	return true
}

// fail drops b: a burst buffer gets VerdictDrop, a held one goes back to the
// allocator.
func (w *Worker) fail(b *Buf, r DropReason, held bool) {
	if held {
		w.C.Drops[r]++
		if w.alloc != nil {
			w.alloc.Free(b)
		}
		return
	}
	w.drop(b, r)
}

// pushL2 writes the attachment's headers in front of b's packet: Ethernet
// (with 802.1Q tags) or VXLAN toward vtep. It reports false when the
// headroom is too short.
func (w *Worker) pushL2(b *Buf, vpc *fib.VPC, dst [6]byte, etype uint16, vtep uint32, vtepMAC [6]byte, hash uint32) bool {
	switch vpc.Kind {
	case fib.AttachVXLAN:
		start := b.Off - vxlanHdrs
		if start < 0 {
			return false
		}
		m := b.Mem[start : b.Off+b.Len]
		_ = m[vxlanHdrs-1]
		packet.Ethernet(m).Encode(vtepMAC, vpc.MAC, packet.EtherTypeIPv4)
		ipl := len(m) - packet.EthernetMinLen
		w.ipID++
		encodeOuter4(m[14:34], ipl, w.ipID, w.p.cfg.DefaultTTL, w.snap.VTEP, vtep)
		packet.UDP(m[34:]).Encode(uint16(49152|hash&0x3fff), packet.VXLANPort, ipl-packet.IPv4MinLen, 0)
		packet.VXLAN(m[42:]).Encode(vpc.VNI)
		packet.Ethernet(m[50:]).Encode(dst, vpc.MAC, etype)
		b.Off, b.Len = start, len(m)
		return true
	case fib.AttachVLAN:
		n := packet.EthernetMinLen + packet.VLANLen
		if vpc.OuterVLAN != 0 {
			n += packet.VLANLen
		}
		start := b.Off - n
		if start < 0 {
			return false
		}
		m := b.Mem[start:b.Off]
		if vpc.OuterVLAN != 0 {
			packet.Ethernet(m).Encode(dst, vpc.MAC, packet.EtherTypeQinQ)
			packet.VLAN(m[14:]).Encode(vpc.OuterVLAN, packet.EtherTypeVLAN)
			packet.VLAN(m[18:]).Encode(vpc.VLAN, etype)
		} else {
			packet.Ethernet(m).Encode(dst, vpc.MAC, packet.EtherTypeVLAN)
			packet.VLAN(m[14:]).Encode(vpc.VLAN, etype)
		}
		b.Off, b.Len = start, b.Len+n
		return true
	default:
		return w.pushEth(b, vpc.MAC, dst, etype)
	}
}

// pushEth writes an untagged Ethernet header in front of b's packet.
func (w *Worker) pushEth(b *Buf, src, dst [6]byte, etype uint16) bool {
	start := b.Off - packet.EthernetMinLen
	if start < 0 {
		return false
	}
	packet.Ethernet(b.Mem[start:]).Encode(dst, src, etype)
	b.Off, b.Len = start, b.Len+packet.EthernetMinLen
	return true
}

// reflect sends a reply (b's packet, already built at Off/Len) back the way
// p came: to its source MAC, through the same VTEP, VLAN or port.
func (w *Worker) reflect(p *pkt, vpc *fib.VPC, etype uint16) bool {
	b := p.b
	var ok bool
	if vpc == nil || p.local {
		ok = w.pushEth(b, w.snap.Ports[b.InPort].MAC, p.srcMAC, etype)
	} else {
		ok = w.pushL2(b, vpc, p.srcMAC, etype, p.outerSrc, p.outerSrcMAC, w.replyHash(b))
	}
	if !ok {
		return false
	}
	b.OutPort = b.InPort
	b.Verdict = VerdictTx
	pc := &w.C.Ports[portSlot(b.InPort)]
	pc.TxPackets++
	pc.TxBytes += uint64(b.Len)
	return true
}

func (w *Worker) replyHash(b *Buf) uint32 {
	d := b.Mem[b.Off : b.Off+b.Len]
	if len(d) >= packet.IPv4MinLen && d[0]>>4 == 4 {
		return flowHash4(binary.BigEndian.Uint32(d[12:]), binary.BigEndian.Uint32(d[16:]), d[9], 0, 0)
	}
	return 0
}

// encodeOuter4 writes the outer IPv4 header of a VXLAN packet (no options,
// DF clear, UDP) with its checksum summed in registers.
func encodeOuter4(h []byte, totalLen int, id uint16, ttl uint8, src, dst uint32) {
	_ = h[19]
	binary.BigEndian.PutUint32(h[0:], 0x45000000|uint32(totalLen))
	binary.BigEndian.PutUint32(h[4:], uint32(id)<<16)
	w2 := uint32(ttl)<<8 | packet.ProtoUDP
	binary.BigEndian.PutUint32(h[12:], src)
	binary.BigEndian.PutUint32(h[16:], dst)
	s := 0x4500 + uint32(totalLen) + uint32(id) + w2 + src>>16 + src&0xffff + dst>>16 + dst&0xffff
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	binary.BigEndian.PutUint32(h[8:], w2<<16|uint32(^uint16(s)))
}
