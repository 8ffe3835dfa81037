package pipeline

import (
	"encoding/binary"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
	"github.com/peergate/peergate/lpm"
)

// flowHash4 is symmetric: both directions of a flow hash alike, so ECMP and
// VXLAN source ports agree for a flow and its replies.
func flowHash4(src, dst uint32, proto uint8, sp, dp uint16) uint32 {
	x := uint64(src^dst)<<32 | uint64(src+dst)
	x ^= (uint64(sp)+uint64(dp))<<8 | uint64(proto) | uint64(sp^dp)<<40
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return uint32(x)
}

// pick returns the action of group g chosen by hash.
func pick(s *fib.Snapshot, g uint32, hash uint32) *fib.Action {
	grp := s.Groups[g]
	if grp.N == 1 {
		return &s.Actions[grp.First]
	}
	return &s.Actions[grp.First+hash%grp.N]
}

// l4info reads the transport ports (ICMP: the echo identifier, for hashing).
// It has at most four fields so the compiler keeps it in registers when it
// is returned and passed on: a struct it builds in memory byte by byte and
// then reloads as one word stalls the load on store forwarding.
type l4info struct {
	sport, dport uint16
	// csumOff is the offset of the L4 checksum in the IP payload, -1 none.
	csumOff int8
	// icmpType is the ICMP type of a first fragment, 0 (echo reply, not an
	// error) for a later fragment, which has no ICMP header.
	icmpType uint8
}

// parseL4 reads the transport header of a first fragment (first); a later
// fragment has none.
func parseL4(proto uint8, l4 []byte, first bool) (l4info, bool) {
	i := l4info{csumOff: -1}
	if !first {
		return i, true
	}
	switch proto {
	case packet.ProtoTCP:
		if len(l4) < packet.TCPMinLen {
			return i, false
		}
		i.sport, i.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		i.csumOff = packet.TCPChecksumOffset
	case packet.ProtoUDP:
		if len(l4) < packet.UDPLen {
			return i, false
		}
		i.sport, i.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		if binary.BigEndian.Uint16(l4[6:]) != 0 {
			i.csumOff = packet.UDPChecksumOffset
		}
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if len(l4) < packet.ICMPLen {
			return i, false
		}
		i.icmpType = l4[0]
		i.sport = binary.BigEndian.Uint16(l4[4:])
		i.dport = i.sport
		if proto == packet.ProtoICMPv6 {
			i.csumOff = 2
		}
	}
	return i, true
}

// forward4 routes an IPv4 packet that entered from VPC p.vpc.
func (w *Worker) forward4(p *pkt) {
	b, s := p.b, w.snap
	d := p.d[p.l3:]
	if len(d) < packet.IPv4MinLen {
		w.drop(b, DropMalformed)
		return
	}
	ip := packet.IPv4(d)
	ihl, tot := ip.HeaderLen(), ip.TotalLen()
	if ip.Version() != 4 || ihl < packet.IPv4MinLen || tot < ihl || tot > len(d) {
		w.drop(b, DropMalformed)
		return
	}
	ip = ip[:tot]
	proto := ip.Protocol()
	var l4 l4info
	if ihl == packet.IPv4MinLen && proto == packet.ProtoUDP && tot >= packet.IPv4MinLen+packet.UDPLen && binary.BigEndian.Uint16(ip[6:])&0x1fff == 0 {
		// The common case, inline: option-less header, first fragment
		// of UDP (VXLAN inner traffic, DNS): no calls.
		if !sum20OK(ip) {
			w.drop(b, DropIPv4Checksum)
			return
		}
		u := ip[packet.IPv4MinLen : packet.IPv4MinLen+packet.UDPLen]
		l4 = l4info{sport: binary.BigEndian.Uint16(u), dport: binary.BigEndian.Uint16(u[2:]), csumOff: -1}
		if u[6]|u[7] != 0 {
			l4.csumOff = packet.UDPChecksumOffset
		}
	} else {
		if !headerChecksumOK(ip, ihl) {
			w.drop(b, DropIPv4Checksum)
			return
		}
		var ok bool
		if l4, ok = parseL4(proto, ip[ihl:], ip.FragmentOffset() == 0); !ok {
			w.drop(b, DropMalformed)
			return
		}
	}
	vpc := &s.VPCs[p.vpc]
	src, dst := ip.Src(), ip.Dst()
	hash := flowHash4(src, dst, proto, l4.sport, l4.dport)

	// p is the next free slot of the pending array (processOne put it
	// there): the parsed fields join it, and route4 reads them from it.
	e := &w.pend[w.npend]
	if p != &e.p {
		e.p = *p
	}
	e.ip, e.ihl, e.tot, e.proto, e.l4, e.src, e.dst, e.hash = ip, ihl, tot, proto, l4, src, dst, hash
	if !vpc.HasSrcRoutes && w.batching {
		// The route lookup is done for the whole burst at once (flush4).
		w.npend++
		return
	}
	var g uint32
	found := false
	if vpc.HasSrcRoutes {
		g, found = vpc.SrcRoutes.Lookup4(src)
	}
	if !found {
		g, found = vpc.Routes.Lookup4(dst)
	}
	w.route4(e, g, found)
}

// snatMemo remembers the last stateless source translation; localMemo the
// last delivery lookup. gen is the worker's learnGen when they were made.
type snatMemo struct {
	gen   uint64
	table uint32
	srcNAT
}

// srcNAT is a stateless source translation as a forwarding decision keeps
// it: the sources s with s&mask == from become to | s&^mask. A whole
// segment of a NAT table has one, so the packets of many clients share a
// decision; its checksum delta is the same for all of them too (each
// 16-bit word changes by the same amount, the host bits being kept, so
// the RFC 1624 deltas ~m + m' are congruent mod 0xffff and fold alike).
// No translation is the segment 0/0 onto 0.
type srcNAT struct{ from, mask, to uint32 }

func (t srcNAT) has(src uint32) bool         { return src&t.mask == t.from }
func (t srcNAT) translate(src uint32) uint32 { return t.to | src&^t.mask }

// segmentNAT returns the translation of src by NAT table nt: its segment,
// or src alone when the table's segments may overlap (a more specific
// segment inside the one found would translate some of its sources
// otherwise).
func segmentNAT(nt *fib.NatTable, src uint32) (srcNAT, bool) {
	seg, ok := nt.Lookup4(src)
	if !ok {
		return srcNAT{}, false
	}
	if !nt.Small {
		return srcNAT{from: src, mask: ^uint32(0), to: seg.To4 | src&^seg.Mask4}, true
	}
	return srcNAT{from: seg.From4, mask: seg.Mask4, to: seg.To4}, true
}

type localMemo struct {
	gen uint64
	vpc int
	dst uint32
	g   uint32
}

// fwdMemo4 remembers the last stateless forwarding decision: for packets
// from VPC vpc with addresses src -> dst whose route lookup found group g
// (src: any source of the translation snat, see srcNAT),
// everything route4 derives from the tables alone (the action, both
// translations, the delivery next hop, TTL decrement and MTU). It is only
// made when neither group is ECMP (the flow hash plays no part), so a
// packet matching it on those four keys (or, for an anyDst memo, on vpc,
// src and g with the delivery group g2 in place of dst) gets the same
// decision; the checks
// that depend on the packet (ingress filter on protocol and ports, TTL,
// MTU) stay, and a packet failing one takes the full path, which drops it.
// gen is learnGen (a new snapshot changes it); 0 is never valid.
type fwdMemo4 struct {
	gen       uint64
	vpc, dvpc int
	g         uint32
	// anyDst: the decision holds for any destination of the packet
	// whose delivery lookup (resolve4) found group g2 in dvpc and whose
	// bits under the route's destination translation (dnatMask, 0 when
	// there is none) are dnatFrom: every such destination is translated
	// by the same rule (resolve4 did it: pend4.ndst), and the checksum
	// delta is the same number for all of them (an untranslated word
	// adds ~x + x = 0xffff, a translated one the same difference, the
	// host bits being kept). Two routes may share an action group with
	// the same translation target but different prefixes: dnatFrom
	// keeps them apart. The next hop is the delivery's via (nhFixed) or
	// the translated destination itself, whose adjacency is then looked
	// up per packet.
	anyDst             bool
	nhFixed            bool
	g2                 uint32
	dnatFrom, dnatMask uint32
	snat               srcNAT
	dst, newDst        uint32
	nh                 uint32
	mtu                int
	dec                uint8
	act                *fib.Action
	// delta is natDelta4 of the translation, computed once per memo.
	delta uint32
	// For a translation (natted): the IPv4 checksum's delta with the TTL
	// decrement's (^old + new of the TTL/protocol word is 0xffff - dec<<8
	// whatever the TTL, as the memo's packets have TTL > dec) and the
	// transport checksum's, both folded to 16 bits so that one folding
	// step finishes each update (results equal packet.Fold's: both sums
	// are positive and congruent mod 0xffff).
	natted   bool
	dnat     bool
	ipD, l4D uint32
	// The delivery's adjacency key and cache slot, whether the
	// destination is a VXLAN attachment (port) and the headroom its
	// headers take (hdrs, 0 for a VPC without attachment): a hit whose
	// adjacency is valid is finished in flush4, its counters summed per
	// run. key, adj, natted, ipD and l4D are set by prepare (ready) at
	// the memo's first hit.
	key   neighKey
	adj   uint32
	vxlan bool
	hdrs  int
	port  uint16
	ready bool
}

// l2Hdrs is what delivery into vpc writes in front of an IP packet (as
// pushL2 does), 0 when vpc has no attachment.
func l2Hdrs(vpc *fib.VPC) int {
	switch vpc.Kind {
	case fib.AttachVXLAN:
		return vxlanHdrs
	case fib.AttachVLAN:
		if vpc.OuterVLAN != 0 {
			return packet.EthernetMinLen + 2*packet.VLANLen
		}
		return packet.EthernetMinLen + packet.VLANLen
	case fib.AttachUntagged:
		return packet.EthernetMinLen
	}
	return 0
}

// pend4 is an IPv4 packet parsed and waiting for its burst's route lookups.
type pend4 struct {
	p        pkt
	ip       packet.IPv4
	ihl, tot int
	proto    uint8
	l4       l4info
	src, dst uint32
	hash     uint32
	// The delivery lookup resolve4 did ahead for this packet (valid while
	// w.resolved): group g2 (lpm.NoValue: no route) of address ndst in VPC
	// dvpc's delivery routes, dvpc -1 when it did none.
	dvpc int32
	ndst uint32
	g2   uint32
}

// flush4 looks up the routes of the burst's pending IPv4 packets, one
// batched walk (lpm Lookup4Batch: the cache misses of the burst overlap)
// per run of packets from the same VPC, and routes them.
func (w *Worker) flush4() {
	n := w.npend
	w.npend = 0
	pend := w.pend[:n]
	s := w.snap
	spread := false
	for i := 0; i < n; {
		// A run of packets from one VPC: its distinct consecutive
		// destinations (packets of a burst often share one: a flow's
		// train) are looked up in one batch and the results spread back.
		v := pend[i].p.vpc
		m := 0
		last := ^pend[i].dst
		j := i
		for ; j < n && pend[j].p.vpc == v; j++ {
			d := pend[j].dst
			if d != last {
				w.addrs[m] = d
				m++
				last = d
			}
			w.slot[j] = uint8(m - 1)
		}
		s.VPCs[v].Routes.Lookup4Batch(w.addrs[:m], w.uvals[:m])
		for k := i; k < j; k++ {
			w.vals[k] = w.uvals[w.slot[k]]
		}
		i = j
		spread = spread || m > 1
	}
	if spread {
		// A burst of many destinations (an Internet table's traffic):
		// the delivery lookups are batched too. A burst of one flow
		// leaves them to the memos, which answer them with no lookup.
		w.resolve4(pend)
	}
	m := &w.fwd4
	// Hits finished here since the last countHits (the memo stays the same
	// between two route4 or forwardNAT4 calls): packets, IPv4 bytes and
	// frame bytes.
	var hp, hb, hf int
	// memoAdj: the memo's adjacency (m.adj) was found valid by a hit
	// and only the hit path ran since.
	memoAdj := false
	for i := range pend {
		e := &pend[i]
		g := w.vals[i]
		// A packet the forwarding memo applies to skips route4 (m.g is a
		// group found, never NoValue).
		// fwdHit, written out: too big to inline. A memo for any
		// destination (anyDst) applies to a packet whose delivery lookup
		// resolve4 did and found the memo's group.
		if m.gen == w.learnGen && m.g == g && m.snat.has(e.src) && m.vpc == e.p.vpc && m.gen != 0 &&
			(m.dst == e.dst || m.anyDst && w.resolved && e.g2 == m.g2 && e.dvpc == int32(m.dvpc) && e.dst&m.dnatMask == m.dnatFrom) &&
			(m.dec == 0 || e.ip.TTL() > m.dec) && e.tot <= m.mtu && (m.act.Filter == 0 || w.allows(m.act.Filter, e.proto, &e.l4)) {
			// deliver's checks for a push onto a valid adjacency
			// (a VXLAN template, or Ethernet and VLAN tags): anything
			// else (an adjacency to resolve, too little headroom, no
			// attachment) takes it.
			b := e.p.b
			if !m.ready {
				// Prepared at the first hit: traffic whose memo never
				// hits (a burst of distinct destinations) does not pay.
				m.prepare(w.adjMask)
			}
			// The memo's own next hop's adjacency, once checked, stays
			// valid while only the hit path runs (it changes no
			// adjacency: memoAdj); a next hop per destination is checked
			// per packet.
			var a *adjacency
			ok := false
			if m.nhFixed || e.dst == m.dst {
				a, ok = &w.adj[m.adj], memoAdj
				if !ok {
					ok = m.hdrs != 0 && a.validFor(&m.key, w.learnGen, w.now) && a.hasTmpl == m.vxlan
					memoAdj = ok
				}
			} else {
				k := key4(scopeVPC|uint32(m.dvpc), e.ndst)
				a = &w.adj[neighHash(&k)&w.adjMask]
				ok = m.hdrs != 0 && a.validFor(&k, w.learnGen, w.now) && a.hasTmpl == m.vxlan
			}
			if ok && b.Off+e.p.l3 >= m.hdrs {
				if m.natted && (e.proto == packet.ProtoUDP || e.proto == packet.ProtoTCP) {
					m.rewrite(e)
				} else {
					w.rewrite4(e, m.snat.translate(e.src), m.dstOf(e), m.delta, m.dec, m.act)
				}
				b.Off += e.p.l3
				b.Len = e.tot
				if m.vxlan {
					w.pushTemplate(b, a, packet.EtherTypeIPv4, e.hash)
				} else {
					w.pushL2(b, &w.snap.VPCs[m.dvpc], a.mac, packet.EtherTypeIPv4, 0, [6]byte{}, e.hash)
				}
				b.Verdict = VerdictTx
				b.OutPort = m.port
				hp, hb, hf = hp+1, hb+e.tot, hf+b.Len
			} else {
				if hp > 0 {
					w.countHits(hp, hb, hf)
					hp, hb, hf = 0, 0, 0
				}
				memoAdj = false
				w.forwardNAT4(e, m.snat.translate(e.src), m.dstOf(e), m.delta, m.dec, m.act, m.dvpc, m.nhOf(e))
			}
		} else {
			if hp > 0 {
				w.countHits(hp, hb, hf)
				hp, hb, hf = 0, 0, 0
			}
			memoAdj = false
			// route4 makes a memo only if it can serve the next packet
			// of the burst (a burst of many flows would make one per
			// packet, never used).
			w.next = nil
			if i+1 < len(pend) {
				w.next = &pend[i+1]
			}
			w.route4(e, g, g != lpm.NoValue)
		}
		e.p.b, e.p.d, e.ip = nil, nil, nil
	}
	if hp > 0 {
		w.countHits(hp, hb, hf)
	}
	w.resolved, w.next = false, nil
}

// resolve4 does the delivery lookups of the pending packets whose route
// (w.vals) is a stateless forward to another VPC ahead of route4: one
// batched walk per run of packets toward the same VPC, so their cache
// misses overlap as the first lookups' do, instead of one dependent walk
// per packet in route4. The lookup's key (destination VPC and translated
// destination) depends on the route's action only, which route4 picks
// alike (same snapshot, group and hash); route4 still compares the key
// before using the result.
func (w *Worker) resolve4(pend []pend4) {
	s := w.snap
	k := 0
	for i := range pend {
		e := &pend[i]
		e.dvpc = -1
		g := w.vals[i]
		if g == lpm.NoValue {
			continue
		}
		act := pick(s, g, e.hash)
		if act.Kind != fib.ActForward || act.SnatPool != 0 || act.ReversePool != 0 {
			continue
		}
		nd := e.dst
		if act.HasDstNAT {
			nd = act.DstNAT4 | e.dst&^act.DstNATMask4
		}
		e.dvpc, e.ndst = int32(act.DstVPC), nd
		w.slot[k] = uint8(i)
		k++
	}
	idx := w.slot[:k]
	for i := 0; i < k; {
		v := pend[idx[i]].dvpc
		m := 0
		last := ^pend[idx[i]].ndst
		j := i
		for ; j < k && pend[idx[j]].dvpc == v; j++ {
			if d := pend[idx[j]].ndst; d != last {
				w.addrs[m] = d
				m++
				last = d
			}
			w.uslot[j] = uint8(m - 1)
		}
		s.VPCs[v].Local.Lookup4Batch(w.addrs[:m], w.uvals[:m])
		for x := i; x < j; x++ {
			pend[idx[x]].g2 = w.uvals[w.uslot[x]]
		}
		i = j
	}
	w.resolved = true
}

// prepare sets the adjacency key and slot, natted and the folded checksum
// deltas from the memo's decision.
func (m *fwdMemo4) prepare(mask uint32) {
	m.key = key4(scopeVPC|uint32(m.dvpc), m.nh)
	m.adj = neighHash(&m.key) & mask
	m.ready = true
	m.natted = m.snat.to != m.snat.from || m.newDst != m.dst
	m.dnat = m.newDst != m.dst
	ttlD := uint32(0)
	if m.dec > 0 {
		ttlD = 0xffff - uint32(m.dec)<<8
	}
	m.ipD, m.l4D = uint32(packet.Fold(m.delta+ttlD)), uint32(packet.Fold(m.delta))
}

// dstOf is the translated destination of e, a packet the memo applies to:
// the memo's own for its destination, resolve4's for another one (an
// anyDst memo applies to those only when the burst was resolved).
func (m *fwdMemo4) dstOf(e *pend4) uint32 {
	if e.dst == m.dst {
		return m.newDst
	}
	return e.ndst
}

// nhOf is the next hop of e, a packet the memo applies to.
func (m *fwdMemo4) nhOf(e *pend4) uint32 {
	if m.nhFixed || e.dst == m.dst {
		return m.nh
	}
	return e.ndst
}

// rewrite applies the memo's TTL decrement and translation to e's UDP or
// TCP packet (as rewrite4 does) with the precomputed checksum deltas.
func (m *fwdMemo4) rewrite(e *pend4) {
	ip := e.ip
	if m.dec > 0 {
		ip[8] -= m.dec
	}
	c := uint32(^ip.Checksum()) + m.ipD
	ip.SetChecksum(^uint16(c&0xffff + c>>16))
	binary.BigEndian.PutUint32(ip[12:], m.snat.translate(e.src))
	if m.dnat {
		binary.BigEndian.PutUint32(ip[16:], m.dstOf(e))
	}
	if off := e.l4.csumOff; off >= 0 {
		h := ip[e.ihl+int(off):]
		c := uint32(^binary.BigEndian.Uint16(h)) + m.l4D
		n := ^uint16(c&0xffff + c>>16)
		if n == 0 && e.proto == packet.ProtoUDP {
			n = 0xffff
		}
		binary.BigEndian.PutUint16(h, n)
	}
}

// countHits counts np packets (nb IPv4 bytes, nf frame bytes) flush4
// finished with the forwarding memo as forwardNAT4 and deliver would have.
func (w *Worker) countHits(np, nb, nf int) {
	m := &w.fwd4
	if m.snat.to != m.snat.from || m.newDst != m.dst {
		w.C.Events[EvStatelessNAT] += uint64(np)
	}
	if id := m.act.Peering; id != 0 && int(id) < len(w.traffic.peer) {
		t := &w.traffic.peer[id]
		t.Packets += uint64(np)
		t.Bytes += uint64(nb)
	}
	w.C.Verdicts[VerdictTx] += uint64(np)
	pc := &w.C.Ports[portSlot(m.port)]
	pc.TxPackets += uint64(np)
	pc.TxBytes += uint64(nf)
}

// fwdHit reports whether the forwarding memo applies to a packet from VPC
// vpc with addresses src -> dst whose route lookup found group g, and the
// packet passes the memo's TTL, MTU and filter checks.
func (w *Worker) fwdHit(vpc int, g, src, dst uint32, ip packet.IPv4, tot int, proto uint8, l4 *l4info) bool {
	m := &w.fwd4
	return m.gen == w.learnGen && m.g == g && m.snat.has(src) && m.dst == dst && m.vpc == vpc && m.gen != 0 &&
		(m.dec == 0 || ip.TTL() > m.dec) && tot <= m.mtu &&
		(m.act.Filter == 0 || w.allows(m.act.Filter, proto, l4))
}

// allows applies filter f (1-based) out of line: the memo checks stay
// short.
func (w *Worker) allows(f uint32, proto uint8, l4 *l4info) bool {
	return w.snap.Filters[f-1].Allows(proto, l4.sport, l4.dport)
}

// route4 applies the route found (group g) to a parsed IPv4 packet.
func (w *Worker) route4(e *pend4, g uint32, found bool) {
	p, ip, tot, proto, src, dst, hash := &e.p, e.ip, e.tot, e.proto, e.src, e.dst, e.hash
	b, s := p.b, w.snap
	vpc := &s.VPCs[p.vpc]
	l4 := e.l4
	if !found {
		w.dropICMP4(p, ip, vpc, DropNoRoute, packet.ICMPDestUnreachable, packet.ICMPCodeNetUnreachable, 0)
		return
	}
	if m := &w.fwd4; w.fwdHit(p.vpc, g, src, dst, ip, tot, proto, &l4) {
		w.forwardNAT4(e, m.snat.translate(src), m.newDst, m.delta, m.dec, m.act, m.dvpc, m.nh)
		return
	}
	act := pick(s, g, hash)
	dvpc := vpc
	dvpcID := p.vpc
	newSrc, newDst := src, dst
	dec := act.TTLDec
	nh := dst
	switch act.Kind {
	case fib.ActLocal:
		w.local4(p, vpc)
		return
	case fib.ActDeliver:
		if act.HasVia && act.Via.Is4() {
			nh = addr4(act.Via.As4())
		}
	case fib.ActForward:
		dvpcID = int(act.DstVPC)
		dvpc = &s.VPCs[dvpcID]
		if act.SnatPool != 0 || act.ReversePool != 0 {
			if act.TTLDec > 0 && ip.TTL() <= act.TTLDec {
				w.dropICMP4(p, ip, vpc, DropTTLExpired, packet.ICMPTimeExceeded, 0, 0)
				return
			}
			if act.TTLDec > 0 {
				ip.DecTTL(act.TTLDec)
			}
			w.stateful(p, tot, act, dvpcID, hash)
			return
		}
		var snat srcNAT // none: any source, untranslated
		if act.SrcNAT != 0 {
			// Packets of a burst often share a source or a segment:
			// remember the last translation (valid while learnGen, which
			// a new snapshot changes, is the same).
			if m := &w.snat4; m.gen == w.learnGen && m.table == act.SrcNAT && m.has(src) && m.gen != 0 {
				snat = m.srcNAT
			} else {
				var ok bool
				if snat, ok = segmentNAT(&s.NatTables[act.SrcNAT-1], src); !ok {
					w.drop(b, DropSrcNotExposed)
					return
				}
				*m = snatMemo{gen: w.learnGen, table: act.SrcNAT, srcNAT: snat}
			}
			newSrc = snat.translate(src)
		}
		if act.HasDstNAT {
			newDst = act.DstNAT4 | dst&^act.DstNATMask4
		}
		if act.Filter != 0 && !s.Filters[act.Filter-1].Allows(proto, l4.sport, l4.dport) {
			if w.p.cfg.ICMPFiltered {
				w.dropICMP4(p, ip, vpc, DropFiltered, packet.ICMPDestUnreachable, packet.ICMPCodeAdminProhibited, 0)
				return
			}
			w.drop(b, DropFiltered)
			return
		}
		// The same for the delivery lookup of the last destination.
		var g2 uint32
		if w.resolved && e.dvpc == int32(dvpcID) && e.ndst == newDst {
			// resolve4 looked it up with the burst's.
			if g2 = e.g2; g2 == lpm.NoValue {
				w.dropICMP4(p, ip, vpc, DropNoRoute, packet.ICMPDestUnreachable, packet.ICMPCodeNetUnreachable, 0)
				return
			}
		} else if m := &w.localMemo4; m.gen == w.learnGen && m.vpc == dvpcID && m.dst == newDst && m.gen != 0 {
			g2 = m.g
		} else {
			var ok bool
			if g2, ok = dvpc.Local.Lookup4(newDst); !ok {
				w.dropICMP4(p, ip, vpc, DropNoRoute, packet.ICMPDestUnreachable, packet.ICMPCodeNetUnreachable, 0)
				return
			}
			*m = localMemo{gen: w.learnGen, vpc: dvpcID, dst: newDst, g: g2}
		}
		act2 := pick(s, g2, hash)
		if act2.Kind == fib.ActLocal {
			// The peer VPC's own address (a Kube-OVN connect IP): answered
			// back toward the sender.
			w.local4(p, vpc)
			return
		}
		if act2.Kind != fib.ActDeliver {
			w.drop(b, DropRouteDrop)
			return
		}
		dec += act2.TTLDec
		nh = newDst
		if act2.HasVia && act2.Via.Is4() {
			nh = addr4(act2.Via.As4())
		}
		// The decision serves any destination whose delivery lookup
		// finds the same group (and, translated, by the same rule; see
		// fwdMemo4.anyDst): the traffic of an Internet table, or of a
		// server answering many clients, one destination per packet.
		anyDst := w.resolved && e.dvpc == int32(dvpcID) && e.ndst == newDst
		var dnatMask uint32
		if act.HasDstNAT {
			dnatMask = act.DstNATMask4
		}
		if n := w.next; (n == nil || snat.has(n.src) && (anyDst || n.dst == dst)) && s.Groups[g].N == 1 && s.Groups[g2].N == 1 {
			mtu := dvpc.MTU
			if dvpc.Kind == fib.AttachVXLAN {
				mtu -= packet.VXLANOverhead4
			}
			w.fwd4 = fwdMemo4{gen: w.learnGen, vpc: p.vpc, dvpc: dvpcID, g: g, g2: g2, anyDst: anyDst, snat: snat, dst: dst,
				nhFixed: act2.HasVia && act2.Via.Is4(), dnatFrom: dst & dnatMask, dnatMask: dnatMask,
				newDst: newDst, nh: nh, mtu: mtu, dec: dec, act: act,
				delta: natDelta4(src, newSrc, dst, newDst), vxlan: dvpc.Kind == fib.AttachVXLAN, hdrs: l2Hdrs(dvpc), port: dvpc.Port}
		}
	default:
		w.drop(b, DropRouteDrop)
		return
	}
	if dec > 0 && ip.TTL() <= dec {
		w.dropICMP4(p, ip, vpc, DropTTLExpired, packet.ICMPTimeExceeded, 0, 0)
		return
	}
	mtu := dvpc.MTU
	if dvpc.Kind == fib.AttachVXLAN {
		mtu -= packet.VXLANOverhead4
	}
	if tot > mtu {
		if ip.DontFragment() {
			w.dropICMP4(p, ip, vpc, DropTooBig, packet.ICMPDestUnreachable, packet.ICMPCodeFragNeeded, uint16(mtu))
		} else {
			w.drop(b, DropFragmentation)
		}
		return
	}
	w.forwardNAT4(e, newSrc, newDst, natDelta4(src, newSrc, dst, newDst), dec, act, dvpcID, nh)
}

// forwardNAT4 finishes a routed IPv4 packet whose TTL and MTU were checked:
// TTL decrement, stateless translation (one incremental checksum update for
// both), counters and delivery into VPC dvpcID toward next hop nh. delta is
// natDelta4 of the translation (the forwarding memo keeps it).
func (w *Worker) forwardNAT4(e *pend4, newSrc, newDst, delta uint32, dec uint8, act *fib.Action, dvpcID int, nh uint32) {
	if w.rewrite4(e, newSrc, newDst, delta, dec, act) {
		w.C.Events[EvStatelessNAT]++
	}
	b := e.p.b
	b.Off += e.p.l3
	b.Len = e.tot
	w.countPeering(act.Peering, e.tot)
	w.deliver(b, dvpcID, key4(scopeVPC|uint32(dvpcID), nh), e.hash, packet.EtherTypeIPv4, false)
}

// rewrite4 applies the TTL decrement and the stateless translation (one
// incremental checksum update for both) to e's IPv4 packet, counting
// nothing; it reports whether the addresses changed.
func (w *Worker) rewrite4(e *pend4, newSrc, newDst, delta uint32, dec uint8, act *fib.Action) bool {
	ip, ihl, proto, l4p, src, dst := e.ip, e.ihl, e.proto, &e.l4, e.src, e.dst
	natted := newSrc != src || newDst != dst
	var ttlDelta uint32
	if dec > 0 {
		if natted {
			// One checksum update for the TTL and the addresses: the
			// TTL/protocol word's RFC 1624 delta joins nat4's.
			old := binary.BigEndian.Uint16(ip[8:])
			ip[8] -= dec
			ttlDelta = uint32(^old) + uint32(old-uint16(dec)<<8)
		} else {
			ip.DecTTL(dec)
		}
	}
	if natted {
		nat4d(ip, ihl, proto, l4p, newSrc, newDst, delta, ttlDelta)
		if proto == packet.ProtoICMP && packet.IsICMPv4Error(l4p.icmpType) {
			w.translateEmbedded4(ip[ihl:], act)
		}
	}
	return natted
}

// natDelta4 is the RFC 1624 delta (~m + m' over the four address words) of
// translating src -> newSrc and dst -> newDst; one delta serves the IPv4 and
// the transport checksum.
func natDelta4(src, newSrc, dst, newDst uint32) uint32 {
	return uint32(^uint16(src>>16)) + uint32(^uint16(src)) + uint32(^uint16(dst>>16)) + uint32(^uint16(dst)) +
		newSrc>>16 + newSrc&0xffff + newDst>>16 + newDst&0xffff
}

// nat4 rewrites addresses and updates the IPv4 and transport checksums
// incrementally (RFC 1624). A UDP checksum of 0 (none) stays 0. ipDelta is
// an RFC 1624 delta (~m + m') of other header words already changed (the
// TTL), for the IPv4 checksum only.
func nat4(ip packet.IPv4, ihl int, proto uint8, l4 *l4info, src, newSrc, dst, newDst uint32, ipDelta uint32) {
	nat4d(ip, ihl, proto, l4, newSrc, newDst, natDelta4(src, newSrc, dst, newDst), ipDelta)
}

// nat4d is nat4 with the address delta (natDelta4) already computed.
func nat4d(ip packet.IPv4, ihl int, proto uint8, l4 *l4info, newSrc, newDst, delta uint32, ipDelta uint32) {
	ip.SetChecksum(^packet.Fold(uint32(^ip.Checksum()) + delta + ipDelta))
	binary.BigEndian.PutUint32(ip[12:], newSrc)
	binary.BigEndian.PutUint32(ip[16:], newDst)
	if l4.csumOff < 0 || proto == packet.ProtoICMP {
		return
	}
	c := ip[ihl+int(l4.csumOff):]
	n := ^packet.Fold(uint32(^binary.BigEndian.Uint16(c)) + delta)
	if proto == packet.ProtoUDP && n == 0 {
		n = 0xffff
	}
	binary.BigEndian.PutUint16(c, n)
}

// translateEmbedded4 applies the reverse mapping to the datagram embedded in
// an ICMP error that crosses a stateless NAT: its source is the translated
// packet's destination and the other way round.
func (w *Worker) translateEmbedded4(icmp []byte, act *fib.Action) {
	if len(icmp) < packet.ICMPLen+packet.IPv4MinLen {
		return
	}
	e := packet.IPv4(icmp[packet.ICMPLen:])
	eihl := e.HeaderLen()
	if e.Version() != 4 || eihl < packet.IPv4MinLen || len(e) < eihl {
		return
	}
	s := w.snap
	esrc, edst := e.Src(), e.Dst()
	nsrc, ndst := esrc, edst
	if act.HasDstNAT {
		nsrc = act.DstNAT4 | esrc&^act.DstNATMask4
	}
	if act.SrcNAT != 0 {
		if seg, ok := s.NatTables[act.SrcNAT-1].Lookup4(edst); ok {
			ndst = seg.To4 | edst&^seg.Mask4
		}
	}
	if nsrc == esrc && ndst == edst {
		return
	}
	el4 := l4info{csumOff: -1}
	if e.FragmentOffset() == 0 {
		switch e.Protocol() {
		case packet.ProtoTCP:
			if len(e) >= eihl+packet.TCPChecksumOffset+2 {
				el4.csumOff = packet.TCPChecksumOffset
			}
		case packet.ProtoUDP:
			if len(e) >= eihl+packet.UDPLen && binary.BigEndian.Uint16(e[eihl+6:]) != 0 {
				el4.csumOff = packet.UDPChecksumOffset
			}
		}
	}
	nat4(e[:len(e):len(e)], eihl, e.Protocol(), &el4, esrc, nsrc, edst, ndst, 0)
	// The ICMP checksum covers the embedded bytes: recompute it (errors are
	// rare and short).
	packet.ICMP(icmp).SetChecksum(0)
	packet.ICMP(icmp).SetChecksum(packet.Checksum(icmp, 0))
}

func addr4(a [4]byte) uint32 { return binary.BigEndian.Uint32(a[:]) }

// headerChecksumOK verifies an IPv4 header checksum; the option-less header
// is summed in five 32-bit loads.
func headerChecksumOK(ip []byte, ihl int) bool {
	if ihl != packet.IPv4MinLen {
		return packet.Fold(packet.Sum(ip[:ihl], 0)) == 0xffff
	}
	return sum20OK(ip)
}

// sum20OK verifies the checksum of an option-less IPv4 header (ip has at
// least 20 bytes), summed in five 32-bit loads; small enough to inline.
func sum20OK(ip []byte) bool {
	h := ip[:20]
	s := uint64(binary.BigEndian.Uint32(h[0:])) + uint64(binary.BigEndian.Uint32(h[4:])) + uint64(binary.BigEndian.Uint32(h[8:])) +
		uint64(binary.BigEndian.Uint32(h[12:])) + uint64(binary.BigEndian.Uint32(h[16:]))
	s = s&0xffffffff + s>>32
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return s == 0xffff
}
