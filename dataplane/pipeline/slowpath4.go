package pipeline

import (
	"encoding/binary"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
)

// icmpErrMax is how much of the offending datagram an ICMPv4 error quotes:
// the error stays within 576 bytes (RFC 1812 4.3.2.3).
const icmpErrMax = 576 - packet.IPv4MinLen - packet.ICMPLen

// dropICMP4 counts a drop for reason r and, when allowed, turns the buffer
// into an ICMPv4 error back to the packet's source.
func (w *Worker) dropICMP4(p *pkt, ip packet.IPv4, vpc *fib.VPC, r DropReason, typ, code uint8, mtu uint16) {
	if w.icmpAllowed() && w.icmpError4(p, ip, vpc, typ, code, mtu) {
		w.C.Drops[r]++
		w.C.Events[EvICMPErrorSent]++
		w.C.Verdicts[VerdictTx]++
		return
	}
	w.drop(p.b, r)
}

// icmpError4 builds the error in place: the offending datagram stays where
// it is and becomes the quote; the new IP and ICMP headers and the reversed
// encapsulation go in front of it.
func (w *Worker) icmpError4(p *pkt, ip packet.IPv4, vpc *fib.VPC, typ, code uint8, mtu uint16) bool {
	src := ip.Src()
	if src == 0 || src>>28 == 0xe || src == 0xffffffff || ip.Dst()>>28 == 0xe || ip.Dst() == 0xffffffff || ip.FragmentOffset() != 0 {
		return false
	}
	if ip.Protocol() == packet.ProtoICMP {
		l4 := ip[ip.HeaderLen():]
		if len(l4) < 1 || packet.IsICMPv4Error(l4[0]) {
			return false
		}
	}
	from := w.sourceFor4(p, vpc)
	if from == 0 {
		return false
	}
	b := p.b
	q := len(ip)
	if q > icmpErrMax {
		q = icmpErrMax
	}
	ipAbs := b.Off + p.l3
	start := ipAbs - packet.IPv4MinLen - packet.ICMPLen
	if start < maxEncap {
		return false
	}
	m := b.Mem[start : ipAbs+q]
	w.ipID++
	packet.IPv4(m).Encode(0, len(m), w.ipID, false, w.p.cfg.DefaultTTL, packet.ProtoICMP, from, src)
	ic := m[packet.IPv4MinLen:]
	ic[0], ic[1] = typ, code
	binary.BigEndian.PutUint32(ic[4:], uint32(mtu))
	binary.BigEndian.PutUint16(ic[2:], 0)
	binary.BigEndian.PutUint16(ic[2:], packet.Checksum(ic, 0))
	b.Off, b.Len = start, len(m)
	return w.reflect(p, vpc, packet.EtherTypeIPv4)
}

// sourceFor4 is the address the gateway speaks from into vpc (nil: the port).
func (w *Worker) sourceFor4(p *pkt, vpc *fib.VPC) uint32 {
	if vpc != nil && vpc.RouterIP4 != 0 {
		return vpc.RouterIP4
	}
	if p.local || vpc == nil {
		port := &w.snap.Ports[p.b.InPort]
		if len(port.IP4) > 0 {
			return port.IP4[0]
		}
		return w.snap.VTEP
	}
	return 0
}

// local4 handles IPv4 addressed to the gateway: echo is answered, the rest
// punted.
func (w *Worker) local4(p *pkt, vpc *fib.VPC) {
	b := p.b
	d := p.d[p.l3:]
	if len(d) < packet.IPv4MinLen {
		w.drop(b, DropMalformed)
		return
	}
	ip := packet.IPv4(d)
	ihl, tot := ip.HeaderLen(), ip.TotalLen()
	if ip.Version() != 4 || ihl < packet.IPv4MinLen || tot < ihl+packet.ICMPLen && ip.Protocol() == packet.ProtoICMP || tot < ihl || tot > len(d) || !ip[:ihl].HeaderChecksumOK() {
		w.drop(b, DropMalformed)
		return
	}
	ip = ip[:tot]
	if ip.Protocol() != packet.ProtoICMP || ip.IsFragment() || ip[ihl] != packet.ICMPEchoRequest {
		b.Verdict = VerdictPunt
		w.C.Verdicts[VerdictPunt]++
		w.C.Events[EvPunted]++
		return
	}
	ic := packet.ICMP(ip[ihl:])
	if packet.Checksum(ic, 0) != 0 {
		w.drop(b, DropMalformed)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	binary.BigEndian.PutUint32(ip[12:], dst)
	binary.BigEndian.PutUint32(ip[16:], src)
	ip[8] = w.p.cfg.DefaultTTL
	ip.SetChecksum(0)
	ip.SetChecksum(ip[:ihl].ComputeChecksum())
	ic.SetChecksum(packet.Update16(ic.Checksum(), uint16(packet.ICMPEchoRequest)<<8|uint16(ic[1]), uint16(packet.ICMPEchoReply)<<8|uint16(ic[1])))
	ic[0] = packet.ICMPEchoReply
	b.Off += p.l3
	b.Len = tot
	if w.reflect(p, vpc, packet.EtherTypeIPv4) {
		w.C.Events[EvEchoReplied]++
		w.C.Verdicts[VerdictTx]++
		return
	}
	w.drop(b, DropNoHeadroom)
}

// arpIn learns the sender and answers requests for the gateway's addresses.
// vpc is nil for ARP on a port's underlay.
func (w *Worker) arpIn(p *pkt, vpc *fib.VPC) {
	b := p.b
	if len(p.d) < p.l3+packet.ARPLen {
		w.drop(b, DropMalformed)
		return
	}
	a := packet.ARP(p.d[p.l3:])
	if !a.IsEthernetIPv4() {
		w.drop(b, DropMalformed)
		return
	}
	var scope uint32
	var mine bool
	var mac [6]byte
	tip := a.TargetIP()
	if vpc == nil {
		scope = scopePort | uint32(b.InPort)
		mine = w.isPortIP(&w.snap.Ports[b.InPort], tip)
		mac = w.snap.Ports[b.InPort].MAC
	} else {
		scope = scopeVPC | uint32(p.vpc)
		mac = vpc.MAC
		for _, r := range vpc.RouterIPs {
			if r.Is4() && addr4(r.As4()) == tip {
				mine = true
				break
			}
		}
	}
	sip, sha := a.SenderIP(), a.SenderMAC()
	if sip != 0 && sha[0]&1 == 0 {
		k := key4(scope, sip)
		if w.learn(&k, sha, 0) {
			w.C.Events[EvNeighbourLearned]++
			w.released(&k)
		}
	}
	switch {
	case a.Op() == packet.ARPRequest && mine:
		a.Encode(packet.ARPReply, mac, tip, sha, sip)
		b.Off += p.l3
		b.Len = packet.ARPLen
		if w.reflect(p, vpc, packet.EtherTypeARP) {
			w.C.Events[EvARPReplied]++
			w.C.Verdicts[VerdictTx]++
			return
		}
		w.drop(b, DropNoHeadroom)
	case a.Op() == packet.ARPRequest && sip != tip:
		w.drop(b, DropARPNotForUs)
	default:
		w.drop(b, DropConsumed)
	}
}

// arpRequest sends a request for k (IPv4) into its scope.
func (w *Worker) arpRequest(k *neighKey) {
	s := w.snap
	target := uint32(k.lo)
	if k.scope&0xff000000 == scopePort {
		port := uint16(k.scope & 0xffff)
		if int(port) >= len(s.Ports) {
			return
		}
		pt := &s.Ports[port]
		from := s.VTEP
		for i, pfx := range pt.IPs {
			if pfx.Addr().Is4() && pfx.Contains(addrFrom4(target)) {
				from = pt.IP4[min(i, len(pt.IP4)-1)]
				break
			}
		}
		b := w.newBuf()
		if b == nil {
			return
		}
		arpEncode(b, pt.MAC, from, target)
		w.pushEth(b, pt.MAC, packet.Broadcast, packet.EtherTypeARP)
		w.C.Events[EvARPRequested]++
		w.emit(b, port)
		return
	}
	vid := int(k.scope & 0xffff)
	if vid >= len(s.VPCs) {
		return
	}
	vpc := &s.VPCs[vid]
	if vpc.Kind == fib.AttachVXLAN {
		// Head-end replication to every VTEP whose underlay MAC is known;
		// the others are resolved first.
		for _, vt := range vpc.VTEPs {
			ok := key4(scopePort|uint32(vpc.Port), vt)
			oe := w.lookupNeigh(&ok)
			if oe == nil {
				if w.shouldRequest(&ok) {
					w.arpRequest(&ok)
				}
				continue
			}
			b := w.newBuf()
			if b == nil {
				return
			}
			arpEncode(b, vpc.MAC, vpc.RouterIP4, target)
			if !w.pushL2(b, vpc, packet.Broadcast, packet.EtherTypeARP, vt, oe.mac, target) {
				w.alloc.Free(b)
				return
			}
			w.C.Events[EvARPRequested]++
			w.emit(b, vpc.Port)
		}
		return
	}
	if vpc.Kind == fib.AttachNone {
		return
	}
	b := w.newBuf()
	if b == nil {
		return
	}
	arpEncode(b, vpc.MAC, vpc.RouterIP4, target)
	if !w.pushL2(b, vpc, packet.Broadcast, packet.EtherTypeARP, 0, [6]byte{}, 0) {
		w.alloc.Free(b)
		return
	}
	w.C.Events[EvARPRequested]++
	w.emit(b, vpc.Port)
}

func arpEncode(b *Buf, mac [6]byte, from, target uint32) {
	b.Len = packet.ARPLen
	packet.ARP(b.Mem[b.Off:]).Encode(packet.ARPRequest, mac, from, [6]byte{}, target)
}

// newBuf allocates a slow-path buffer and checks it has the promised room.
func (w *Worker) newBuf() *Buf {
	if w.alloc == nil {
		w.C.Drops[DropAllocFailed]++
		return nil
	}
	b := w.alloc.Alloc()
	if b == nil {
		w.C.Drops[DropAllocFailed]++
		return nil
	}
	if b.Off < maxEncap || len(b.Mem)-b.Off < 1500 {
		w.alloc.Free(b)
		w.C.Drops[DropAllocFailed]++
		return nil
	}
	b.Len = 0
	return b
}
