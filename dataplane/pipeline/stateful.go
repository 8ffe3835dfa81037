package pipeline

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
	"github.com/peergate/peergate/nat"
)

// StatefulNAT is an optional replacement of the pipeline's own stateful NAT
// (tests, or a driver that owns a nat.Stateful itself). The pipeline
// collects every packet of a burst that needs it and calls Translate once
// per burst: one interface call per burst, never per packet.
type StatefulNAT interface {
	// Translate rewrites each request's IP packet in place (addresses, ports,
	// checksums) and sets Result. It must not keep the slices.
	Translate(now int64, reqs []NATRequest)
}

// NATRequest is one packet handed to the stateful NAT. It is nat.Request
// itself, so the pipeline's requests go to nat.Stateful.Translate without a
// copy: Packet (the IP packet, from its header to its end), SrcVPC, DstVPC,
// Pool (Tables.nat_pools' 1-based index), Reverse (true for replies through
// Action.reverse_pool) and Result.
type NATRequest = nat.Request

// NATResult is the outcome of a NATRequest: NATOK to go on, anything else
// drops the packet (counted under the nat.Reason's name, e.g.
// nat_unsolicited).
type NATResult = nat.Reason

// NAT results. NATDrop is a drop without a more precise reason (counted as
// stateful_nat).
const (
	NATOK   NATResult = nat.OK
	NATDrop NATResult = 255
)

// MaxNATReasons bounds the nat.Reason values counted by name; larger ones
// (NATDrop) count as DropStatefulNAT.
const MaxNATReasons = 32

// natPending is what the pipeline needs to finish a packet after the
// stateful NAT translated it.
type natPending struct {
	b      *Buf
	act    *fib.Action
	dvpc   int
	hash   uint32
	ttlDec uint8
}

// natState is the pipeline's own stateful NAT: built at the first snapshot
// that has pools (so pipelines without stateful NAT never allocate the
// session table), reconfigured when a worker first sees a newer snapshot.
type natState struct {
	// s is nil until a snapshot with pools arrives.
	s atomic.Pointer[nat.Stateful]
	// snap is the snapshot s is configured for (guarded by Pipeline.mu).
	snap *fib.Snapshot
	// err is the last configuration error (guarded by Pipeline.mu).
	err error
	// now is the latest clock a worker passed (for Sessions' expiry times).
	now atomic.Int64
}

// syncNAT configures the stateful NAT for snapshot s, once per snapshot,
// from the first worker that sees it. A worker still holding an older
// snapshot than the holder's leaves it to the one that loads the newer.
func (p *Pipeline) syncNAT(s *fib.Snapshot) {
	if p.cfg.StatefulNAT != nil || s == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nat.snap == s || p.fib.Load() != s {
		return
	}
	p.nat.snap = s
	pools := make([]nat.Pool, 0, len(s.NatPools))
	for i, np := range s.NatPools {
		pools = append(pools, nat.Pool{ID: uint32(i + 1), VPC: uint32(np.VPC), Prefixes: np.Prefixes})
	}
	if cur := p.nat.s.Load(); cur != nil {
		if err := cur.Reconfigure(pools, s.Generation); err != nil {
			p.nat.err = fmt.Errorf("generation %d: stateful NAT: %w", s.Generation, err)
			return
		}
		p.nat.err = nil
		return
	}
	if len(pools) == 0 {
		return
	}
	mss := p.cfg.NATMSS
	if mss == 0 {
		mss = clampMSS(s)
	}
	st, err := nat.NewStateful(nat.Config{Capacity: p.cfg.NATSessions, Timeouts: p.cfg.NATTimeouts, Pools: pools,
		Generation: s.Generation, MSS: mss, Seed: p.cfg.NATSeed})
	if err != nil {
		p.nat.err = fmt.Errorf("generation %d: stateful NAT: %w", s.Generation, err)
		return
	}
	p.nat.err = nil
	p.nat.s.Store(st)
}

// clampMSS is the MSS that fits every VPC's egress: the smallest MTU, less
// the VXLAN overhead on VXLAN attachments, less 40 bytes of IPv4 and TCP
// headers.
func clampMSS(s *fib.Snapshot) uint16 {
	m := 0
	for i := range s.VPCs {
		v := &s.VPCs[i]
		if v.Kind == fib.AttachNone || v.MTU <= 0 {
			continue
		}
		mtu := v.MTU
		if v.Kind == fib.AttachVXLAN {
			mtu -= packet.VXLANOverhead4
		}
		if m == 0 || mtu < m {
			m = mtu
		}
	}
	if m <= 40+536 {
		return 0
	}
	return uint16(m - 40)
}

// NAT returns the pipeline's own stateful NAT (nil before the first
// snapshot with pools, or when Config.StatefulNAT replaces it) and the last
// configuration error.
func (p *Pipeline) NAT() (*nat.Stateful, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nat.s.Load(), p.nat.err
}

// Sessions lists the stateful NAT's live sessions matching f (for `gwctl
// get flows`), with expiry times from the clock the workers last passed.
// Empty without stateful NAT. It allocates: not for the packet path.
func (p *Pipeline) Sessions(f nat.Filter) []nat.SessionInfo {
	s := p.nat.s.Load()
	if s == nil {
		return nil
	}
	return s.Sessions(p.nat.now.Load(), f)
}

// NATCounters returns the stateful NAT's counters (sessions, created,
// expired, drops by reason); ok is false without stateful NAT. The drops
// are also in Counters (DropsByName), counted by the workers.
func (p *Pipeline) NATCounters() (c nat.Counters, ok bool) {
	s := p.nat.s.Load()
	if s == nil {
		return nat.Counters{}, false
	}
	return s.Counters(), true
}

// stateful defers a packet of a stateful-NAT action to the end of the burst,
// when the NAT translates all of them in one call. b's Off/Len are moved to
// the IP packet.
func (w *Worker) stateful(p *pkt, ipLen int, act *fib.Action, dvpc int, hash uint32) {
	b := p.b
	if w.p.cfg.StatefulNAT == nil && w.nat == nil {
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

// natSweep is how many session slots a worker's burst with stateful
// packets sweeps (Tick sweeps natSweepIdle).
const (
	natSweep     = 64
	natSweepIdle = 4096
)

// finishStateful translates the burst's stateful packets in one call and
// finishes each: ingress filter, second lookup in the destination VPC, MTU,
// delivery.
func (w *Worker) finishStateful() {
	if h := w.p.cfg.StatefulNAT; h != nil {
		h.Translate(w.now, w.natReqs)
	} else {
		w.nat.Translate(w.now, w.natReqs)
		w.nat.Sweep(w.now, natSweep)
		w.p.nat.now.Store(w.now)
	}
	s := w.snap
	for i := range w.natReqs {
		r, c := &w.natReqs[i], &w.natCtx[i]
		b := c.b
		if r.Result != NATOK {
			w.dropNAT(b, r.Result)
			continue
		}
		d := b.Mem[b.Off : b.Off+b.Len]
		var proto uint8
		var l4 []byte
		var dst netip.Addr
		var k neighKey
		etype := uint16(packet.EtherTypeIPv4)
		df := false
		if len(d) >= packet.IPv4MinLen && d[0]>>4 == 4 {
			ip := packet.IPv4(d)
			proto = ip.Protocol()
			if ihl := ip.HeaderLen(); ihl <= len(d) && !ip.IsFragment() {
				l4 = d[ihl:]
			}
			dst = addrFrom4(ip.Dst())
			df = ip.DontFragment()
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
		mtu := dv.MTU
		if dv.Kind == fib.AttachVXLAN {
			mtu -= packet.VXLANOverhead4
		}
		if len(d) > mtu {
			// The packet is already translated: an ICMP error would quote
			// the public side. Dropped and counted; MSS clamping keeps TCP
			// below the MTU.
			if df {
				w.drop(b, DropTooBig)
			} else {
				w.drop(b, DropFragmentation)
			}
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
		w.countPeering(c.act.Peering, len(d))
		w.deliver(b, c.dvpc, k, c.hash, etype, false)
	}
	clear(w.natReqs)
	w.natReqs = w.natReqs[:0]
	w.natCtx = w.natCtx[:0]
}

// dropNAT drops a packet the stateful NAT refused, counted under the NAT's
// reason.
func (w *Worker) dropNAT(b *Buf, r NATResult) {
	if r >= MaxNATReasons {
		w.drop(b, DropStatefulNAT)
		return
	}
	b.Verdict = VerdictDrop
	w.C.NATDrops[r]++
	w.C.Verdicts[VerdictDrop]++
}
