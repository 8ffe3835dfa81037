package compile

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// builder holds one compilation's state: the model, the shared tables
// (NAT tables, pools, filters) with their 1-based indexes.
type builder struct {
	m       *validate.Model
	learned Learned
	// ownLearned: learned was built for this builder (incremental
	// compiles) and may be sorted in place.
	ownLearned bool
	t          *tablesv1.Tables
	vpcID      map[string]uint32
	natTbl     map[sideKey]uint32
	filter     map[sideKey]uint32
	pool       map[string]uint32 // VPC name + prefixes -> pool index
	local      map[string][]candidate
}

type sideKey struct{ peering, vpc string }

// build compiles a model that validated without errors.
func build(m *validate.Model, learned Learned) (*tablesv1.Tables, error) {
	b, err := newBuilder(m, learned)
	if err != nil {
		return nil, err
	}
	return b.all(), nil
}

// newBuilder fills the header and the shared tables of m.
func newBuilder(m *validate.Model, learned Learned) (*builder, error) {
	b := &builder{
		m: m, learned: learned, t: &tablesv1.Tables{},
		vpcID: map[string]uint32{}, natTbl: map[sideKey]uint32{}, filter: map[sideKey]uint32{},
		pool: map[string]uint32{}, local: map[string][]candidate{},
	}
	if err := b.header(); err != nil {
		return nil, err
	}
	b.shared()
	return b, nil
}

// all compiles the route tables of every VPC into b.t.
func (b *builder) all() *tablesv1.Tables {
	for _, x := range b.m.VPCs {
		b.local[x.Name] = b.localCandidates(x)
	}
	for i, x := range b.m.VPCs {
		v := b.t.Vpcs[i]
		v.LocalRoutes = resolve(b.local[x.Name])
		v.Routes = b.routes(x)
	}
	return b.t
}

// header fills the gateway, ports and VPC records.
func (b *builder) header() error {
	portID := map[string]uint32{}
	if g := b.m.Gateway; g != nil {
		b.t.Gateway = &tablesv1.Gateway{Asn: g.ASN, RouterId: addrString(g.RouterID), VtepIp: addrString(g.VTEPIP)}
		for i, p := range g.Ports {
			portID[p.Name] = uint32(i)
			b.t.Ports = append(b.t.Ports, &tablesv1.Port{
				Id: uint32(i), Name: p.Name, Device: p.Device, Mac: p.MAC, Ips: prefixStrings(p.IPs), Mtu: uint32(p.MTU),
			})
		}
	}
	for i, x := range b.m.VPCs {
		b.vpcID[x.Name] = uint32(i)
		v := &tablesv1.Vpc{Id: uint32(i), Name: x.Name, Subnets: prefixStrings(x.Subnets), External: x.External}
		for _, a := range x.RouterIPs {
			v.RouterIps = append(v.RouterIps, a.String())
		}
		a := x.Attachment
		if a.Kind != validate.AttachNone {
			id, ok := portID[a.Port]
			if !ok {
				return fmt.Errorf("compile: VPC %s: unknown port %q", x.Name, a.Port)
			}
			v.Attachment = &tablesv1.Attachment{PortId: id}
			switch a.Kind {
			case validate.AttachVXLAN:
				v.Attachment.Kind, v.Attachment.Vni = tablesv1.Attachment_KIND_VXLAN, a.VNI
				for _, t := range a.VTEPs {
					v.Attachment.Vteps = append(v.Attachment.Vteps, t.String())
				}
			case validate.AttachVLAN:
				v.Attachment.Kind, v.Attachment.Vlan = tablesv1.Attachment_KIND_VLAN, uint32(a.VLAN)
			default:
				v.Attachment.Kind = tablesv1.Attachment_KIND_UNTAGGED
			}
		}
		b.t.Vpcs = append(b.t.Vpcs, v)
	}
	return nil
}

// shared builds the NAT tables, pools and filters of every peering side,
// in peering-name then side order, so indexes are stable.
func (b *builder) shared() {
	for _, p := range b.m.Peerings {
		for _, s := range p.Sides {
			k := sideKey{p.Name, s.VPC}
			tbl := &tablesv1.NatTable{}
			segs := s.ExposedSegments()
			slices.SortFunc(segs, func(a, b validate.Segment) int { return validate.ComparePrefix(a.From, b.From) })
			for _, seg := range segs {
				tbl.Segments = append(tbl.Segments, &tablesv1.NatSegment{From: seg.From.String(), To: seg.To.String()})
			}
			b.t.NatTables = append(b.t.NatTables, tbl)
			b.natTbl[k] = uint32(len(b.t.NatTables))
			if s.Stateful {
				pk := fmt.Sprint(s.VPC, s.As)
				if _, ok := b.pool[pk]; !ok {
					id := uint32(len(b.t.NatPools) + 1)
					b.t.NatPools = append(b.t.NatPools, &tablesv1.NatPool{Id: id, Vpc: b.vpcID[s.VPC], Prefixes: prefixStrings(s.As)})
					b.pool[pk] = id
				}
			}
			if len(s.Ingress) > 0 {
				f := &tablesv1.Filter{}
				for _, r := range s.Ingress {
					f.Rules = append(f.Rules, &tablesv1.FilterRule{
						Protocol: tablesv1.FilterRule_Protocol(r.Protocol), SrcPort: uint32(r.SrcPort), DstPort: uint32(r.DstPort), Stateless: r.Stateless,
					})
				}
				b.t.Filters = append(b.t.Filters, f)
				b.filter[k] = uint32(len(b.t.Filters))
			}
		}
	}
}

func (b *builder) poolOf(s *validate.Side) uint32 {
	if !s.Stateful {
		return 0
	}
	return b.pool[fmt.Sprint(s.VPC, s.As)]
}

// localCandidates are the delivery routes inside x: subnets, static
// routes, BGP-learned routes (externals), and the gateway's own addresses.
// Their actions carry ttl_decrement 0 (second-stage lookup).
func (b *builder) localCandidates(x *validate.VPC) []candidate {
	cs := make([]candidate, 0, len(x.Subnets)+len(x.Routes)+len(x.RouterIPs)+len(x.KubePeerings)+len(b.learned[x.Name]))
	deliver := func(via string) *tablesv1.Action {
		return &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_DELIVER, DstVpc: b.vpcID[x.Name], Via: via}
	}
	for _, s := range x.Subnets {
		cs = append(cs, candidate{prefix: s, dist: distConnected, source: "subnet", act: oneAction(deliver(""))})
	}
	for _, r := range x.Routes {
		cs = append(cs, candidate{prefix: r.Prefix, dist: distStatic, source: "static", act: oneAction(deliver(r.NextHop.String()))})
	}
	if x.External {
		// One action and one source string per next hop and neighbour,
		// shared by all their routes, not one per route.
		acts := map[netip.Addr]*[1]*tablesv1.Action{}
		sources := map[string]string{}
		nbrs := map[string]netip.Addr{}
		// Consecutive routes mostly share a neighbour and a next hop (a
		// million in a row with one neighbour): the last ones answer
		// without the three map lookups.
		var last struct {
			nbr, src string
			nh       netip.Addr
			act      *[1]*tablesv1.Action
			ok       bool
		}
		for _, r := range bestLearned(b.learned[x.Name], b.ownLearned) {
			if !last.ok || r.Neighbor != last.nbr || r.NextHop != last.nh {
				via := r.NextHop
				if !slices.ContainsFunc(x.Subnets, func(s netip.Prefix) bool { return s.Contains(r.NextHop) }) {
					a, ok := nbrs[r.Neighbor]
					if !ok {
						a, _ = netip.ParseAddr(r.Neighbor)
						nbrs[r.Neighbor] = a
					}
					if a.IsValid() {
						via = a
					}
				}
				act, ok := acts[via]
				if !ok {
					act = oneAction(deliver(addrString(via)))
					acts[via] = act
				}
				src, ok := sources[r.Neighbor]
				if !ok {
					src = "bgp:" + r.Neighbor
					sources[r.Neighbor] = src
				}
				last.nbr, last.nh, last.src, last.act, last.ok = r.Neighbor, r.NextHop, src, act, true
			}
			cs = append(cs, candidate{prefix: r.Prefix, dist: distBGP, metric: r.MED, source: last.src, act: last.act})
		}
	}
	local := oneAction(&tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_LOCAL, DstVpc: b.vpcID[x.Name]})
	for _, a := range x.RouterIPs {
		cs = append(cs, candidate{prefix: netip.PrefixFrom(a, a.BitLen()), dist: distConnected, source: "router", act: local})
	}
	for _, p := range x.KubePeerings {
		a := p.Connect.Addr()
		cs = append(cs, candidate{prefix: netip.PrefixFrom(a, a.BitLen()), dist: distConnected, source: "router", act: local})
	}
	return cs
}

// bestLearned keeps, per prefix, the routes with the lowest MED and then
// the shortest AS path; the survivors of one prefix are ECMP.
// It sorts rs in place when owned, else a copy.
func bestLearned(rs []LearnedRoute, owned bool) []LearnedRoute {
	if !owned {
		rs = slices.Clone(rs)
	}
	for i := range rs {
		rs[i].Prefix = rs[i].Prefix.Masked()
		rs[i].ASPathLen = clampASPathLen(rs[i].ASPathLen)
	}
	// Compared field by field, not with cmp.Or: it would evaluate every
	// comparison for each of a million routes. Routes read from the
	// compiler's trie come sorted: checked in one pass.
	byRoute := func(a, b LearnedRoute) int {
		if c := validate.ComparePrefix(a.Prefix, b.Prefix); c != 0 {
			return c
		}
		if a.MED != b.MED {
			return cmp.Compare(a.MED, b.MED)
		}
		if a.ASPathLen != b.ASPathLen {
			return cmp.Compare(a.ASPathLen, b.ASPathLen)
		}
		if a.Neighbor != b.Neighbor {
			return cmp.Compare(a.Neighbor, b.Neighbor)
		}
		return a.NextHop.Compare(b.NextHop)
	}
	if !slices.IsSortedFunc(rs, byRoute) {
		slices.SortFunc(rs, byRoute)
	}
	out := rs[:0] // compacted in place: out never overtakes the reader
	for _, r := range rs {
		if !r.Prefix.IsValid() || !r.NextHop.IsValid() {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Prefix == r.Prefix &&
			(out[n-1].MED != r.MED || out[n-1].ASPathLen != r.ASPathLen ||
				out[n-1].Neighbor == r.Neighbor && out[n-1].NextHop == r.NextHop) {
			continue // worse, or the same path again
		}
		out = append(out, r)
	}
	return out
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
