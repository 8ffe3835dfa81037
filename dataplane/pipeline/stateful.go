package pipeline

import (
	"net/netip"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
)

// natPending is what the pipeline needs to finish a packet after the
// stateful NAT hook translated it.
type natPending struct {
	b      *Buf
	act    *fib.Action
	dvpc   int
	hash   uint32
	ttlDec uint8
}

// stateful defers a packet of a stateful-NAT action to the end of the burst,
// when the hook translates all of them in one call. b's Off/Len are moved to
// the IP packet.
func (w *Worker) stateful(p *pkt, ipLen int, act *fib.Action, dvpc int, hash uint32) {
	b := p.b
	nat := w.p.cfg.StatefulNAT
	if nat == nil {
		w.drop(b, DropStatefulNATUnavailable)
		return
	}
	if len(w.natReqs) == cap(w.natReqs) {
		w.drop(b, DropStatefulNAT)
		return
	}
	b.Off += p.l3
	b.Len = ipLen
	pool, rev := act.SnatPool, false
	if act.ReversePool != 0 {
		pool, rev = act.ReversePool, true
	}
	w.natReqs = append(w.natReqs, NATRequest{Packet: b.Mem[b.Off : b.Off+b.Len], SrcVPC: uint16(p.vpc), DstVPC: uint16(dvpc), Pool: pool, Reverse: rev})
	w.natCtx = append(w.natCtx, natPending{b: b, act: act, dvpc: dvpc, hash: hash, ttlDec: act.TTLDec})
}

// finishStateful calls the hook once for the burst and finishes each packet:
// ingress filter, second lookup in the destination VPC, delivery.
func (w *Worker) finishStateful() {
	w.p.cfg.StatefulNAT.Translate(w.now, w.natReqs)
	s := w.snap
	for i := range w.natReqs {
		r, c := &w.natReqs[i], &w.natCtx[i]
		b := c.b
		if r.Result != NATOK {
			w.drop(b, DropStatefulNAT)
			continue
		}
		d := b.Mem[b.Off : b.Off+b.Len]
		var proto uint8
		var l4 []byte
		var dst netip.Addr
		var k neighKey
		etype := uint16(packet.EtherTypeIPv4)
		if len(d) >= packet.IPv4MinLen && d[0]>>4 == 4 {
			ip := packet.IPv4(d)
			proto = ip.Protocol()
			if ihl := ip.HeaderLen(); ihl <= len(d) && !ip.IsFragment() {
				l4 = d[ihl:]
			}
			dst = addrFrom4(ip.Dst())
		} else if len(d) >= packet.IPv6MinLen {
			ip := packet.IPv6(d)
			proto = ip.NextHeader()
			l4 = d[packet.IPv6MinLen:]
			dst = netip.AddrFrom16(ip.Dst16())
			etype = packet.EtherTypeIPv6
		} else {
			w.drop(b, DropMalformed)
			continue
		}
		l, ok := parseL4(proto, l4, l4 != nil)
		if !ok {
			w.drop(b, DropMalformed)
			continue
		}
		if c.act.Filter != 0 && !s.Filters[c.act.Filter-1].Allows(proto, l.sport, l.dport) {
			w.drop(b, DropFiltered)
			continue
		}
		dv := &s.VPCs[c.dvpc]
		g, found := dv.Local.Lookup(dst)
		if !found {
			w.drop(b, DropNoRoute)
			continue
		}
		a2 := pick(s, g, c.hash)
		if a2.Kind != fib.ActDeliver {
			w.drop(b, DropRouteDrop)
			continue
		}
		nh := dst
		if a2.HasVia {
			nh = a2.Via
		}
		if nh.Is4() {
			k = key4(scopeVPC|uint32(c.dvpc), addr4(nh.As4()))
		} else {
			k = key16(scopeVPC|uint32(c.dvpc), nh.As16())
		}
		w.deliver(b, c.dvpc, k, c.hash, etype, false)
	}
	clear(w.natReqs)
	w.natReqs = w.natReqs[:0]
	w.natCtx = w.natCtx[:0]
}
