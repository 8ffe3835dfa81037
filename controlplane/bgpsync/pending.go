package bgpsync

import (
	"net/netip"

	"github.com/peergate/peergate/controlplane/bgp"
	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/internal/intern"
)

// pendingRoutes are one VPC's route changes since its last compilation, in
// the order they came, held without pointers: a table transfer keeps a
// million of them for seconds, and as the speaker's events (112-byte
// bgp.RouteUpdate values with strings and addresses) they were ~120 MB
// that the collector scanned at every cycle of the transfer, which is when
// the controlplane is short of CPU. Here a change is 40 bytes the
// collector skips; neighbours and next hops are numbered.
type pendingRoutes struct {
	changes []pendingChange
	nbrs    intern.Table[string]
	hops    intern.Table[netip.Addr]
	// the last neighbour and next hop numbered: a batch is mostly one
	// neighbour's, with a handful of next hops
	lastNbr string
	lastHop netip.Addr
	nbr, nh uint32
}

// pendingChange is one route change; key's sequence number is set by
// final.
type pendingChange struct {
	key      changeKey
	nh       uint32
	med      uint32
	asLen    uint32
	withdraw bool
}

func (p *pendingRoutes) add(ups []bgp.RouteUpdate) {
	for i := range ups {
		u := &ups[i]
		if len(p.changes) == 0 || u.Route.Neighbor != p.lastNbr {
			p.lastNbr, p.nbr = u.Route.Neighbor, p.nbrs.Index(u.Route.Neighbor)
		}
		if len(p.changes) == 0 || u.Route.NextHop != p.lastHop {
			p.lastHop, p.nh = u.Route.NextHop, p.hops.Index(u.Route.NextHop)
		}
		p.changes = append(p.changes, pendingChange{
			key: makeChangeKey(u.Route.Prefix, uint64(p.nbr), 0),
			nh:  p.nh, med: u.Route.MED, asLen: uint32(min(max(u.Route.ASPathLen, 0), 0xffff)), // the speaker stores at most this; so does the compiler
			withdraw: u.Withdraw,
		})
	}
}

func (p *pendingRoutes) len() int { return len(p.changes) }

// final reduces the changes to the last one of each neighbour and prefix,
// as the compiler's announcements and withdrawals: by a sort of flat keys
// (a table transfer brings a million changes, nearly all distinct; a map
// filled as they arrived, or a comparison that followed pointers into the
// events, cost more).
func (p *pendingRoutes) final() (add, withdraw []compile.LearnedRoute) {
	keys := make([]changeKey, len(p.changes))
	for i := range p.changes {
		keys[i] = p.changes[i].key
		keys[i].meta |= uint64(i)
	}
	sortKeys(keys)
	for j, k := range keys {
		if j+1 < len(keys) && keys[j+1].sameRoute(k) {
			continue // a later change of the same route follows
		}
		c := &p.changes[uint32(k.meta)]
		r := compile.LearnedRoute{Prefix: k.prefix(), NextHop: p.hops.At(c.nh), MED: c.med,
			Neighbor: p.nbrs.At(uint32(k.meta>>40) & (1<<23 - 1)), ASPathLen: int(c.asLen)}
		if c.withdraw {
			withdraw = append(withdraw, r)
			continue
		}
		if add == nil {
			add = make([]compile.LearnedRoute, 0, len(keys)-j)
		}
		add = append(add, r)
	}
	return add, withdraw
}
