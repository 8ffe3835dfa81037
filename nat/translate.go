package nat

import "github.com/peergate/peergate/flowtable"

// Request is one packet for Translate, laid out like the pipeline's
// NATRequest so an adapter is a field-by-field copy.
type Request struct {
	// Packet is the IP packet, from its header to its end; it is rewritten
	// in place.
	Packet []byte
	// SrcVPC is where the packet came from, DstVPC where it goes.
	SrcVPC, DstVPC uint16
	// Pool is the 1-based pool ID; Reverse is true for replies toward the
	// pool (Action.reverse_pool), false for masquerade (Action.snat_pool).
	Pool    uint32
	Reverse bool
	// Result is set by Translate.
	Result Reason
}

// burst is how many packets Translate hashes and prefetches together.
const burst = 32

const (
	kindDrop = iota
	kindQuery
	kindError
	kindCreate // lookup missed: create in a second pass
)

// parsed is what the first pass over a packet learns.
type parsed struct {
	f      flowtable.Flow
	r      flowtable.Reply
	h      uint64
	off    int // transport header offset
	l4len  int
	at     int // offset of the port to rewrite inside the transport header
	kind   uint8
	flags  uint8
	reason Reason
	qi     int  // the packet's query in Translate's burst lookup
	c      cand // kindCreate: the candidates prefetchCreate computed
}

// Translate rewrites every request's packet in place and sets its Result.
// It parses 32 packets at a time and looks their sessions up together
// (flowtable.LookupBurst: hashes, then buckets, then sessions, each pass
// prefetching for the next), so the memory misses of a burst overlap. Safe
// for concurrent use; no allocation.
func (s *Stateful) Translate(now int64, reqs []Request) {
	var ps [burst]parsed
	var qs [burst]flowtable.Query
	for len(reqs) > 0 {
		n := min(len(reqs), burst)
		chunk := reqs[:n]
		pools := s.pools.Load()
		nq := 0
		for i := range chunk {
			q := &chunk[i]
			p := &ps[i]
			s.parse(q.Packet, q.Reverse, q.SrcVPC, p)
			if p.kind != kindQuery {
				continue
			}
			if !q.Reverse {
				// Checked before the lookup so that a packet dropped
				// for its pool does not refresh a session.
				if r := outboundPool(pools, q); r != OK {
					p.kind, p.reason = kindDrop, r
					continue
				}
			}
			p.qi = nq
			qq := &qs[nq]
			qq.Reverse, qq.Touch, qq.TCPFlags = q.Reverse, true, p.flags
			if q.Reverse {
				copyReply(&qq.Reply, &p.r)
			} else {
				copyFlow(&qq.Flow, &p.f)
			}
			nq++
		}
		s.tab.LookupBurst(qs[:nq], now)
		// New outbound flows are set aside after their lookup missed, their
		// creation prefetched, and created together after the rest.
		pending := false
		for i := range chunk {
			var res *flowtable.Query
			if p := &ps[i]; p.kind == kindQuery {
				res = &qs[p.qi]
				p.h = res.Hash
			}
			chunk[i].Result = s.finish(now, &chunk[i], &ps[i], res, true)
			pending = pending || ps[i].kind == kindCreate
		}
		if pending {
			for i := range chunk {
				if p := &ps[i]; p.kind == kindCreate {
					p.c.pi = nil
					if pi := pools.pool(chunk[i].Pool); pi != nil {
						s.prefetchCreate(pi, &p.f, p.h, now, &p.c)
					}
				}
			}
			for i := range chunk {
				if ps[i].kind == kindCreate {
					chunk[i].Result = s.finish(now, &chunk[i], &ps[i], nil, false)
				}
			}
		}
		reqs = reqs[n:]
	}
}

// copyFlow and copyReply copy a key field by field: parse has just written
// the fields one by one, and a struct copy would read them back with wider
// loads than the stores, which cannot be forwarded (a stall per packet).
func copyFlow(dst, src *flowtable.Flow) {
	dst.Inner, dst.Remote, dst.InnerPort, dst.RemotePort = src.Inner, src.Remote, src.InnerPort, src.RemotePort
	dst.VPC, dst.Proto = src.VPC, src.Proto
}

func copyReply(dst, src *flowtable.Reply) {
	dst.Public, dst.Remote, dst.PublicPort, dst.RemotePort = src.Public, src.Remote, src.PublicPort, src.RemotePort
	dst.Proto = src.Proto
}

// outboundPool checks that an outbound request's pool exists and
// masquerades the VPC it comes from.
func outboundPool(pools *poolSet, q *Request) Reason {
	pi := pools.pool(q.Pool)
	if pi == nil {
		return DropNoPool
	}
	if pi.vpc != uint32(q.SrcVPC) {
		return DropPoolVPC
	}
	return OK
}

// TranslatePacket is Translate for one packet.
func (s *Stateful) TranslatePacket(now int64, pkt []byte, srcVPC, dstVPC uint16, pool uint32, reverse bool) Reason {
	q := Request{Packet: pkt, SrcVPC: srcVPC, DstVPC: dstVPC, Pool: pool, Reverse: reverse}
	var p parsed
	s.parse(pkt, reverse, srcVPC, &p)
	if p.kind == kindQuery {
		if reverse {
			p.h = s.tab.HashReply(&p.r)
		} else {
			p.h = s.tab.HashFlow(&p.f)
		}
	}
	return s.finish(now, &q, &p, nil, false)
}

// parse reads the session key of an IPv4 packet.
func (s *Stateful) parse(pkt []byte, reverse bool, vpc uint16, p *parsed) {
	p.kind = kindDrop
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		p.reason = DropIPv6
		return
	}
	off, proto, frag, ok := l4(pkt)
	if !ok {
		p.reason = DropMalformed
		return
	}
	if frag {
		p.reason = DropFragment
		return
	}
	l4len := int(get16(pkt, 2)) - off
	need := l4Need(proto)
	if need == 0 {
		p.reason = DropProtocol
		return
	}
	if l4len < need {
		p.reason = DropMalformed
		return
	}
	p.off, p.l4len, p.flags = off, l4len, 0
	t := pkt[off:]
	src, dst := get32(pkt, 12), get32(pkt, 16)
	var sport, dport uint16
	switch proto {
	case ipProtoTCP:
		sport, dport, p.flags = get16(t, 0), get16(t, 2), t[13]
		p.at = 0
		if reverse {
			p.at = 2
		}
	case ipProtoUDP:
		sport, dport = get16(t, 0), get16(t, 2)
		p.at = 0
		if reverse {
			p.at = 2
		}
	case ipProtoICMP:
		switch t[0] {
		case icmpEchoRequest:
			if reverse {
				p.reason = DropUnsolicited
				return
			}
			sport, p.at = get16(t, 4), 4
		case icmpEchoReply:
			if !reverse {
				p.reason = DropProtocol
				return
			}
			dport, p.at = get16(t, 4), 4
		case icmpUnreachable, icmpTimeExceed, icmpParamProb:
			p.kind = kindError
			return
		default:
			p.reason = DropProtocol
			return
		}
	}
	p.kind = kindQuery
	// Field by field, not a composite literal: the compiler builds a literal
	// in a temporary and copies it with wide loads of its narrow stores,
	// which stalls store forwarding.
	if reverse {
		r := &p.r
		r.Public, r.Remote, r.PublicPort, r.RemotePort, r.Proto = dst, src, dport, sport, proto
	} else {
		f := &p.f
		f.Inner, f.Remote, f.InnerPort, f.RemotePort, f.VPC, f.Proto = src, dst, sport, dport, vpc, proto
	}
}

// finish looks a parsed packet up (or takes res, its result from the burst
// lookup) and rewrites it. With deferCreate, an outbound packet without a
// session is marked kindCreate and left for a second call.
func (s *Stateful) finish(now int64, q *Request, p *parsed, res *flowtable.Query, deferCreate bool) Reason {
	pkt := q.Packet
	var c *cand
	switch p.kind {
	case kindDrop:
		return s.drop(p.reason, uint64(len(pkt)))
	case kindCreate:
		p.kind = kindQuery
		c = &p.c
	case kindError:
		if q.Reverse {
			return s.inboundError(now, q)
		}
		return s.outboundError(now, q)
	}
	proto := pkt[9]
	if q.Reverse {
		var vpc, addr uint32
		var port uint16
		var r Reason
		if res != nil {
			vpc, addr, port, r = s.inboundEntry(q.Pool, res.Found, &res.Entry, p.h)
		} else {
			vpc, addr, port, r = s.inbound(q.Pool, &p.r, p.h, p.flags, true, now)
		}
		if r != OK {
			return r
		}
		if vpc != uint32(q.DstVPC) {
			return s.drop(DropWrongVPC, p.h)
		}
		setAddr(pkt, 16, addr, p.off, proto, p.l4len)
		setPort(pkt, p.off, p.at, proto, p.l4len, port)
	} else {
		ps := s.pools.Load()
		pi := ps.pool(q.Pool)
		if pi == nil {
			return s.drop(DropNoPool, p.h)
		}
		if pi.vpc != uint32(q.SrcVPC) {
			return s.drop(DropPoolVPC, p.h)
		}
		var addr uint32
		var port uint16
		var found bool
		if res != nil {
			if found = res.Found && (res.Entry.Gen == ps.gen || s.revalidate(ps, &res.Entry)); found {
				addr, port = res.Entry.Public, res.Entry.PublicPort
			}
		} else if c == nil {
			addr, port, found = s.existing(ps, &p.f, p.h, p.flags, now)
		}
		// The second pass (c != nil) does not look the flow up again: its
		// burst lookup missed a moment ago, and Create looks it up under
		// the stripe lock anyway (a session created meanwhile, by another
		// worker or an earlier packet of the burst, comes back Found).
		if !found {
			if deferCreate {
				p.kind = kindCreate
				return DropFull // placeholder, replaced by the second pass
			}
			var r Reason
			if addr, port, r = s.create(ps, pi, q.Pool, &p.f, p.h, p.flags, now, c); r != OK {
				return r
			}
		}
		setAddr(pkt, 12, addr, p.off, proto, p.l4len)
		setPort(pkt, p.off, p.at, proto, p.l4len, port)
	}
	if s.mss != 0 && proto == ipProtoTCP && p.flags&flowtable.TCPSyn != 0 {
		ClampMSS(pkt, s.mss)
	}
	return OK
}

// quote locates the packet an ICMP error quotes: the ICMP header offset, the
// quoted IPv4 header, its transport offset (inside the quote) and protocol,
// and how many quoted transport bytes are present.
func quote(pkt []byte) (icmp []byte, emb []byte, eoff int, eproto uint8, elen int, ok bool) {
	off, proto, frag, good := l4(pkt)
	if !good || frag || proto != ipProtoICMP {
		return nil, nil, 0, 0, 0, false
	}
	icmp = pkt[off:get16(pkt, 2)]
	if len(icmp) < 8+ipv4MinLen {
		return nil, nil, 0, 0, 0, false
	}
	emb = icmp[8:]
	if emb[0]>>4 != 4 {
		return nil, nil, 0, 0, 0, false
	}
	eoff = int(emb[0]&0x0f) * 4
	if eoff < ipv4MinLen || eoff+4 > len(emb) {
		return nil, nil, 0, 0, 0, false
	}
	eproto = emb[9]
	elen = len(emb) - eoff
	switch eproto {
	case ipProtoTCP, ipProtoUDP:
	case ipProtoICMP:
		if elen < 8 || (emb[eoff] != icmpEchoRequest && emb[eoff] != icmpEchoReply) {
			return nil, nil, 0, 0, 0, false
		}
	default:
		return nil, nil, 0, 0, 0, false
	}
	return icmp, emb, eoff, eproto, elen, true
}

// quotedPorts returns the quoted packet's source and destination "ports":
// ports for TCP/UDP, the identifier on the requester's side for ICMP echo.
func quotedPorts(emb []byte, eoff int, eproto uint8) (sport, dport uint16, at int, atDst int) {
	t := emb[eoff:]
	if eproto == ipProtoICMP {
		if t[0] == icmpEchoRequest {
			return get16(t, 4), 0, 4, -1
		}
		return 0, get16(t, 4), -1, 4
	}
	return get16(t, 0), get16(t, 2), 0, 2
}

// inboundError translates an ICMP error arriving at a public address about a
// packet the NAT sent out (RFC 5508): the quoted source goes back to the
// inside host, and so does the outer destination. The session is not
// refreshed.
func (s *Stateful) inboundError(now int64, q *Request) Reason {
	pkt := q.Packet
	icmp, emb, eoff, eproto, elen, ok := quote(pkt)
	if !ok {
		return s.drop(DropMalformed, uint64(len(pkt)))
	}
	sport, dport, at, _ := quotedPorts(emb, eoff, eproto)
	if at < 0 {
		return s.drop(DropUnsolicited, uint64(sport))
	}
	rk := flowtable.Reply{Public: get32(emb, 12), Remote: get32(emb, 16), PublicPort: sport, RemotePort: dport, Proto: eproto}
	vpc, addr, port, r := s.inbound(q.Pool, &rk, s.tab.HashReply(&rk), 0, false, now)
	if r != OK {
		return r
	}
	if vpc != uint32(q.DstVPC) {
		return s.drop(DropWrongVPC, uint64(addr))
	}
	setAddr(emb, 12, addr, eoff, eproto, elen)
	setPort(emb, eoff, at, eproto, elen, port)
	setAddr(pkt, 16, addr, 0, ipProtoICMP, 0)
	put16(icmp, 2, 0)
	put16(icmp, 2, checksum(icmp))
	return OK
}

// outboundError translates an ICMP error an inside host sends about a reply
// it received: the quoted destination and the outer source become the
// session's public address and port.
func (s *Stateful) outboundError(now int64, q *Request) Reason {
	pkt := q.Packet
	icmp, emb, eoff, eproto, elen, ok := quote(pkt)
	if !ok {
		return s.drop(DropMalformed, uint64(len(pkt)))
	}
	sport, dport, _, atDst := quotedPorts(emb, eoff, eproto)
	if atDst < 0 {
		return s.drop(DropProtocol, uint64(sport))
	}
	ps := s.pools.Load()
	pi := ps.pool(q.Pool)
	if pi == nil {
		return s.drop(DropNoPool, uint64(sport))
	}
	if pi.vpc != uint32(q.SrcVPC) {
		return s.drop(DropPoolVPC, uint64(sport))
	}
	f := flowtable.Flow{Inner: get32(emb, 16), Remote: get32(emb, 12), InnerPort: dport, RemotePort: sport, VPC: q.SrcVPC, Proto: eproto}
	var e flowtable.Entry
	if !s.tab.LookupFlow(&f, s.tab.HashFlow(&f), 0, false, now, &e) || (e.Gen != ps.gen && !s.revalidate(ps, &e)) {
		// No session: the error is about nothing the NAT sent; there is no
		// public address to give it.
		return s.drop(DropUnsolicited, uint64(f.Inner))
	}
	setAddr(emb, 16, e.Public, eoff, eproto, elen)
	setPort(emb, eoff, atDst, eproto, elen, e.PublicPort)
	setAddr(pkt, 12, e.Public, 0, ipProtoICMP, 0)
	put16(icmp, 2, 0)
	put16(icmp, 2, checksum(icmp))
	return OK
}
