package compile

import (
	"net/netip"
	"slices"

	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// routes compiles the first-lookup table of x: what x's hosts reach.
func (b *builder) routes(x *validate.VPC) []*tablesv1.Route {
	n := len(b.local[x.Name])
	for _, p := range b.m.Peerings {
		for i, s := range p.Sides {
			if s.VPC == x.Name {
				n += len(b.local[p.Sides[1-i].VPC]) // an external peer's routes, at most
			}
		}
	}
	cs := make([]candidate, 0, n)
	// The VPC's own delivery routes, crossing the gateway as one router.
	// An external's static and learned routes describe the world behind
	// it, not where its own traffic should go: they are not copied (that
	// would hairpin everything back out of the external).
	for _, c := range b.local[x.Name] {
		if x.External && c.dist != distConnected {
			continue
		}
		a := cloneAction(c.act[0])
		if a.Kind == tablesv1.ActionKind_ACTION_DELIVER {
			a.TtlDecrement = 1
		}
		c.act = oneAction(a)
		cs = append(cs, c)
	}
	var srcRoutes []*tablesv1.Route
	cs, srcRoutes = b.kubeRoutes(x, cs)
	for _, p := range b.m.Peerings {
		for i, own := range p.Sides {
			if own.VPC == x.Name {
				cs = append(cs, b.peeringCandidates(p, own, p.Sides[1-i])...)
			}
		}
	}
	return append(resolve(cs), srcRoutes...)
}

// kubeRoutes adds x's Kube-OVN static routes: through the peering link to
// the remote VPC, two router hops. policySrc routes match the source and
// bypass the LPM resolution.
func (b *builder) kubeRoutes(x *validate.VPC, cs []candidate) ([]candidate, []*tablesv1.Route) {
	var src []*tablesv1.Route
	for _, l := range b.m.Links {
		remote, remoteIP := l.B, l.ConnectB.Addr()
		if l.B == x.Name {
			remote, remoteIP = l.A, l.ConnectA.Addr()
		} else if l.A != x.Name {
			continue
		}
		fwd := func(ttl uint32) *tablesv1.Action {
			return &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: b.vpcID[remote], TtlDecrement: ttl, Peering: l.Name()}
		}
		source := "kubeovn-peering:" + remote
		// The remote end of the link answers ping like a router next door.
		cs = append(cs, candidate{prefix: netip.PrefixFrom(remoteIP, remoteIP.BitLen()), dist: distStatic, source: source, act: oneAction(fwd(1))})
		for _, r := range x.KubeRoutes {
			if r.NextHop != remoteIP {
				continue
			}
			if r.MatchSource {
				src = append(src, &tablesv1.Route{Prefix: r.Prefix.String(), Source: source, MatchSource: true, Actions: []*tablesv1.Action{fwd(2)}})
				continue
			}
			cs = append(cs, candidate{prefix: r.Prefix, dist: distStatic, source: source, act: oneAction(fwd(2))})
		}
	}
	slices.SortStableFunc(src, func(a, b *tablesv1.Route) int {
		return validate.ComparePrefix(netip.MustParsePrefix(a.Prefix), netip.MustParsePrefix(b.Prefix))
	})
	return cs, src
}

// peeringCandidates are the routes side own's VPC gets from a Peering:
// the peer's exposure (at its `as` addresses under stateless NAT), or,
// when the peer is masqueraded (stateful), the way back to its pool.
func (b *builder) peeringCandidates(p *validate.Peering, own, peer *validate.Side) []candidate {
	peerVPC := b.m.ByName[peer.VPC]
	act := &tablesv1.Action{
		Kind:          tablesv1.ActionKind_ACTION_FORWARD,
		DstVpc:        b.vpcID[peer.VPC],
		TtlDecrement:  1,
		Peering:       p.Name,
		SrcNat:        b.natTbl[sideKey{p.Name, own.VPC}],
		SnatPool:      b.poolOf(own),
		IngressFilter: b.filter[sideKey{p.Name, peer.VPC}],
	}
	source := "peering:" + p.Name
	if peer.Stateful {
		a := cloneAction(act)
		a.ReversePool = b.poolOf(peer)
		back := oneAction(a)
		var cs []candidate
		for _, pr := range peer.As {
			cs = append(cs, candidate{prefix: pr, dist: distPeering, metric: peer.Metric, source: source, act: back})
		}
		return cs
	}
	fwd := oneAction(act) // shared by every candidate below, and their routes
	nat := len(peer.As) > 0
	segs := peer.Segments()
	n := len(peer.CIDRs)
	if peerVPC.External {
		n = len(b.local[peer.VPC])
	}
	cs := make([]candidate, 0, n)
	// piece adds the candidates of one reachable piece of the peer's
	// address space, per segment of its mapping.
	piece := func(pr netip.Prefix, metric uint32) {
		for _, seg := range segs {
			if !pr.Overlaps(seg.From) {
				continue
			}
			from := pr
			if seg.From.Bits() > from.Bits() {
				from = seg.From
			}
			c := candidate{prefix: validate.Translate(from, seg), dist: distPeering, metric: metric, source: source, act: fwd}
			if nat {
				c.nat = &candNAT{dstNat: from}
			}
			for _, n := range peer.Nots {
				if !n.Overlaps(from) {
					continue
				}
				x := n
				if from.Bits() > x.Bits() {
					x = from
				}
				if c.nat == nil {
					c.nat = &candNAT{}
				}
				c.nat.excl = append(c.nat.excl, validate.Translate(x, seg))
			}
			cs = append(cs, c)
		}
	}
	for _, c := range peer.CIDRs {
		if !peerVPC.External {
			piece(c, peer.Metric)
			continue
		}
		// An external exposes only what it can reach: its own subnets, its
		// static routes and the best routes its BGP neighbours advertised.
		for _, r := range b.local[peer.VPC] {
			if r.act[0].Kind != tablesv1.ActionKind_ACTION_DELIVER || !r.prefix.Overlaps(c) {
				continue
			}
			pr := r.prefix
			if c.Bits() > pr.Bits() {
				pr = c
			}
			piece(pr, r.metric+peer.Metric)
		}
	}
	return cs
}
