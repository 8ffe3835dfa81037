package bgp

import (
	"encoding/binary"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/peergate/peergate/internal/intern"
)

// The learned-route store holds what every neighbour currently announces,
// so that a session that drops can withdraw exactly what it taught and
// Routes() can answer without asking gobgp to convert its RIB to API
// messages. It is kept small on purpose (a full table is ~1 M routes per
// neighbour): keys and values are plain integers, no pointers, so the
// garbage collector does not scan them, the next hop is interned per
// neighbour (a neighbour's routes share a handful), and the routes settle
// into sorted flat arrays once a transfer pauses (prefixMap): 20 bytes an
// IPv4 route, 36 an IPv6 one (in Go maps they were ~40 and ~60 with the
// load factor).

// key4 is an IPv4 prefix: address in the top 32 bits, length in the low 8.
type key4 uint64

// key6 is an IPv6 prefix.
type key6 struct {
	hi, lo uint64
	bits   uint8
}

// val is what the compiler needs of a path, as parsed.
type val struct {
	nh    [16]byte // IPv4 next hops are stored 4-in-6 with nh4 set
	med   uint32
	asLen uint16
	nh4   bool
}

func makeKey4(p netip.Prefix) key4 {
	a := p.Addr().As4()
	return key4(uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(p.Bits()))
}

func (k key4) prefix() netip.Prefix {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(k>>8))
	return netip.PrefixFrom(netip.AddrFrom4(a), int(k&0xff))
}

func makeKey6(p netip.Prefix) key6 {
	a := p.Addr().As16()
	return key6{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:]), bits: uint8(p.Bits())}
}

func (k key6) prefix() netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
}

func makeVal(nh netip.Addr, med uint32, asLen int) val {
	v := val{med: med, asLen: uint16(min(asLen, 0xffff))}
	if nh.Is4() || nh.Is4In6() {
		v.nh4 = true
		nh = nh.Unmap()
	}
	if nh.IsValid() {
		v.nh = nh.As16()
	}
	return v
}

func (v val) nextHop() netip.Addr {
	if v.nh4 {
		return netip.AddrFrom16(v.nh).Unmap()
	}
	if v.nh == ([16]byte{}) {
		return netip.Addr{}
	}
	return netip.AddrFrom16(v.nh)
}

// held is a val as the store keeps it: the next hop is an index into the
// neighbour's nextHops.
type held struct {
	nh    uint32
	med   uint32
	asLen uint16
	gone  bool // in prefixMap.recent: the route was withdrawn
}

// neighbor is one configured neighbour and what it taught.
type neighbor struct {
	cfg   Neighbor
	name  string // cfg.Address.String(), shared by all its Routes
	up    bool
	since time.Time
	state api.PeerState_SessionState // last state gobgp reported
	eor   uint8                      // End-of-RIB families since the session came up
	// eorWant is the families whose End-of-RIB ends the initial table: both
	// unicast families until the session's negotiated ones are known
	// (learnFamilies). tableDone: InitialTableDone was sent for the session.
	eorWant   uint8
	tableDone bool
	v4        prefixMap[key4]
	v6        prefixMap[key6]
	// nextHops numbers the next hops of held routes. Reset with the
	// routes when the session drops; until then it only grows (by the
	// distinct next hops the neighbour ever sent).
	nextHops intern.Table[netip.Addr]
	// looped holds the prefixes currently announced with our ASN in their
	// AS path (gobgp keeps them in its adj-rib-in, unused), so that
	// Sessions can report what the neighbour announces without asking
	// gobgp. Rare: nil until the first one.
	looped map[netip.Prefix]struct{}
}

func newNeighbor(cfg Neighbor) *neighbor {
	return &neighbor{cfg: cfg, name: cfg.Address.String()}
}

func (n *neighbor) route(p netip.Prefix, h held) Route {
	return Route{
		VPC:       n.cfg.VPC,
		Prefix:    p,
		NextHop:   n.nextHops.At(h.nh),
		MED:       h.med,
		Neighbor:  n.name,
		ASPathLen: int(h.asLen),
	}
}

// hold interns v's next hop.
func (n *neighbor) hold(v val) held {
	return held{nh: n.nextHops.Index(v.nextHop()), med: v.med, asLen: v.asLen}
}

// learn records p and returns it as held; it reports false when nothing
// changed (a re-announcement with the same attributes), so no event is
// sent for it.
func (n *neighbor) learn(p netip.Prefix, v val) (held, bool) {
	h := n.hold(v)
	if p.Addr().Is4() {
		return h, n.v4.put(makeKey4(p), h)
	}
	return h, n.v6.put(makeKey6(p), h)
}

// forget removes p and returns what it was, if it was held.
func (n *neighbor) forget(p netip.Prefix) (held, bool) {
	if p.Addr().Is4() {
		return n.v4.del(makeKey4(p))
	}
	return n.v6.del(makeKey6(p))
}

// setLooped records whether p's current announcement is looped.
func (n *neighbor) setLooped(p netip.Prefix, looped bool) {
	switch {
	case looped:
		if n.looped == nil {
			n.looped = make(map[netip.Prefix]struct{})
		}
		n.looped[p] = struct{}{}
	case len(n.looped) > 0:
		delete(n.looped, p)
	}
}

// forgetAll empties n and returns the withdrawals of what it held.
func (n *neighbor) forgetAll() []RouteUpdate {
	out := make([]RouteUpdate, 0, n.count())
	for k, v := range n.v4.all() {
		out = append(out, RouteUpdate{Route: n.route(k.prefix(), v), Withdraw: true})
	}
	for k, v := range n.v6.all() {
		out = append(out, RouteUpdate{Route: n.route(k.prefix(), v), Withdraw: true})
	}
	// Emptied, not cleared: a neighbour that taught a full table should
	// not pin its memory while down.
	n.v4, n.v6 = prefixMap[key4]{}, prefixMap[key6]{}
	n.nextHops = intern.Table[netip.Addr]{}
	n.looped = nil
	return out
}

func (n *neighbor) count() int { return n.v4.len() + n.v6.len() }

// pending is the number of changes not yet folded into the store's
// compact base (see prefixMap).
func (n *neighbor) pending() int { return n.v4.pending() + n.v6.pending() }

// shouldCompact reports whether the pending changes are many, against
// compactMin and the base's size (a full table held takes a quarter of
// its size in changes before it is copied again).
func (n *neighbor) shouldCompact() bool {
	p := n.pending()
	return p >= compactMin && p*4 >= n.count()
}

// compact folds the pending changes into the base.
func (n *neighbor) compact() {
	n.v4.compact()
	n.v6.compact()
}
