package validate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"

	"github.com/peergate/peergate/controlplane/manifest"
)

// peering resolves and checks one Peering API object.
func (v *validator) peering(o *manifest.Object, kubePairs map[[2]string]*manifest.Object) {
	spec := o.Peering
	if len(spec.Sides) != 2 {
		names := make([]string, len(spec.Sides))
		for i, s := range spec.Sides {
			names[i] = s.VPC
		}
		v.errorf(o, "spec", "a Peering names exactly two VPCs, got %d (%s)", len(spec.Sides), strings.Join(names, ", "))
		return
	}
	p := &Peering{Name: o.Key.Name}
	ok := true
	for i, s := range spec.Sides {
		side, good := v.side(o, s, spec.Sides[1-i])
		p.Sides[i] = side
		ok = ok && good
	}
	a, b := p.Sides[0].VPC, p.Sides[1].VPC
	if a == b {
		v.errorf(o, "spec", "a Peering names two different VPCs, got %s twice", a)
		return
	}
	pair := [2]string{min(a, b), max(a, b)}
	if k, dup := kubePairs[pair]; dup {
		v.errorf(o, "spec", "a second peering between %s and %s (the first is %s, %s:doc %d): two VPCs have at most one peering", pair[0], pair[1], k.Key, k.Source.File, k.Source.Index)
		return
	}
	kubePairs[pair] = o
	if !ok {
		return
	}
	for i, s := range p.Sides {
		other := p.Sides[1-i]
		field := "spec." + s.VPC
		if s.Stateful && other.Stateful {
			if i == 1 {
				v.errorf(o, field+".natType", "stateful NAT on both sides of one peering: neither side could ever open a session; keep natType: stateful on the side whose hosts initiate")
			}
		}
		v.overlapWithSubnets(o, v.m.ByName[other.VPC], s, p)
	}
	v.m.Peerings = append(v.m.Peerings, p)
}

// side resolves one side; ok is false when it has errors.
func (v *validator) side(o *manifest.Object, s, other manifest.PeeringSide) (*Side, bool) {
	nerr := len(v.errs)
	f := "spec." + s.VPC
	side := &Side{VPC: s.VPC, Metric: s.Metric}
	x, known := v.m.ByName[s.VPC]
	if !known {
		v.errorf(o, f, "unknown VPC %q: declare it with a peergate.io/v1alpha1 VPC (external: true for an external) or a kubeovn.io/v1 Vpc", s.VPC)
	}
	for i, ip := range s.IPs {
		fi := fmt.Sprintf("%s.ips[%d]", f, i)
		n := 0
		for _, set := range []bool{ip.CIDR != "", ip.Not != "", ip.FromVPCSubnet != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.errorf(o, fi, "exactly one of cidr, not or fromVPCSubnet is required, got %d", n)
			continue
		}
		switch {
		case ip.CIDR != "":
			if p, ok := v.prefix(o, fi+".cidr", ip.CIDR); ok {
				side.CIDRs = append(side.CIDRs, p)
				if known && !x.External && !slices.ContainsFunc(x.Subnets, func(s netip.Prefix) bool { return s.Overlaps(p) && s.Bits() <= p.Bits() }) {
					v.errorf(o, fi+".cidr", "%s is outside the subnets of %s (%s)", p, s.VPC, prefixList(x.Subnets))
				}
			}
		case ip.Not != "":
			if p, ok := v.prefix(o, fi+".not", ip.Not); ok {
				side.Nots = append(side.Nots, p)
			}
		default:
			if !known {
				continue
			}
			p, ok := x.SubnetName[ip.FromVPCSubnet]
			if !ok {
				v.errorf(o, fi+".fromVPCSubnet", "VPC %s has no subnet %q (its Kube-OVN Subnets: %s)", s.VPC, ip.FromVPCSubnet, subnetNames(x))
				continue
			}
			side.CIDRs = append(side.CIDRs, p)
		}
	}
	for i, a := range s.As {
		if p, ok := v.prefix(o, fmt.Sprintf("%s.as[%d]", f, i), a); ok {
			side.As = append(side.As, p)
		}
	}
	switch s.NatType {
	case "", manifest.NatStateless:
	case manifest.NatStateful:
		side.Stateful = true
		if len(s.As) == 0 {
			v.errorf(o, f+".natType", "stateful NAT needs a pool: give the public addresses in as")
		}
	default:
		v.errorf(o, f+".natType", "unknown natType %q: want stateless or stateful", s.NatType)
	}
	for i, r := range s.Ingress {
		fr := fmt.Sprintf("%s.ingress[%d].allow", f, i)
		if r.Allow == nil {
			v.errorf(o, fr, "an ingress rule needs allow")
			continue
		}
		stateless := r.Allow.Stateless == nil || *r.Allow.Stateless
		add := func(proto int, pm *manifest.PortMatch, name string) {
			v.port(o, fr+"."+name+".srcPort", pm.SrcPort, true)
			v.port(o, fr+"."+name+".dstPort", pm.DstPort, true)
			side.Ingress = append(side.Ingress, Rule{Protocol: proto, SrcPort: pm.SrcPort, DstPort: pm.DstPort, Stateless: stateless})
		}
		if r.Allow.TCP != nil {
			add(6, r.Allow.TCP, "tcp")
		}
		if r.Allow.UDP != nil {
			add(17, r.Allow.UDP, "udp")
		}
		if r.Allow.TCP == nil && r.Allow.UDP == nil {
			side.Ingress = append(side.Ingress, Rule{Stateless: stateless})
		}
	}
	if len(v.errs) > nerr {
		return side, false
	}
	// Family: one side is all IPv4 or all IPv6.
	var all []netip.Prefix
	all = append(append(append(all, side.CIDRs...), side.Nots...), side.As...)
	for _, p := range all[min(1, len(all)):] {
		if p.Addr().Is4() != all[0].Addr().Is4() {
			v.errorf(o, f, "IPv4 and IPv6 mixed on one side (%s and %s): a side is one address family", all[0], p)
			return side, false
		}
	}
	if len(side.CIDRs) == 0 {
		v.warnf(o, f+".ips", "%s exposes nothing: no cidr or fromVPCSubnet", s.VPC)
	}
	for i, p := range side.CIDRs {
		for _, q := range side.CIDRs[i+1:] {
			if p.Overlaps(q) {
				v.errorf(o, f+".ips", "cidrs %s and %s overlap", p, q)
			}
		}
	}
	for i, n := range side.Nots {
		if !slices.ContainsFunc(side.CIDRs, n.Overlaps) {
			v.warnf(o, fmt.Sprintf("%s.ips", f), "not %s (exclusion %d) excludes nothing: it is outside every cidr", n, i)
		}
	}
	for i, p := range side.As {
		for _, q := range side.As[i+1:] {
			if p.Overlaps(q) {
				v.errorf(o, f+".as", "as CIDRs %s and %s overlap: each public address maps to one private address", p, q)
			}
		}
	}
	if len(side.As) > 0 && !side.Stateful && len(side.CIDRs) > 0 {
		ni, na := sizeOf(side.CIDRs), sizeOf(side.As)
		if ni.Cmp(na) != 0 {
			if known && x.External {
				v.errorf(o, f+".as", "stateless NAT maps the i-th address of ips onto the i-th address of as, "+
					"but %s minus its not exclusions cannot be mapped 1:1 onto the %s addresses of %s (ips hold %s addresses before exclusions). "+
					"To let %s reach %s from these addresses, masquerade %s instead: move as to the %s side with natType: stateful, "+
					"as in the fourth use case of the Peering document: `%s: {ips: [%s], as: [%s], natType: stateful}`",
					prefixList(side.CIDRs), na, prefixList(side.As), ni, other.VPC, s.VPC, other.VPC, other.VPC, other.VPC, ipsFlow(other), strings.Join(s.As, ", "))
			} else {
				v.errorf(o, f+".as", "stateless NAT needs as many addresses in as as in ips (counted before not): ips %s hold %s, as %s hold %s",
					prefixList(side.CIDRs), ni, prefixList(side.As), na)
			}
			return side, false
		}
	}
	return side, len(v.errs) == nerr
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func subnetNames(x *VPC) string {
	var n []string
	for k := range x.SubnetName {
		n = append(n, k)
	}
	slices.Sort(n)
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

// overlapWithSubnets checks what side s exposes toward VPC x against x's
// own subnets: an exposed prefix inside (or equal to) a subnet of x is
// unreachable and ambiguous, an error; a larger one merely loses the
// subnet's part to the more specific subnet route, a warning. Externals'
// subnets are their link networks, which a default route always covers.
func (v *validator) overlapWithSubnets(o *manifest.Object, x *VPC, s *Side, p *Peering) {
	if x == nil || x.External {
		return
	}
	seen := s.Seen().Prefixes()
	for _, sn := range x.Subnets {
		for _, e := range seen {
			if !e.Overlaps(sn) {
				continue
			}
			if e.Bits() < sn.Bits() {
				v.warnf(o, "spec."+s.VPC, "%s exposes %s, which covers subnet %s of %s: %s's hosts reach their own subnet there, not %s", s.VPC, e, sn, x.Name, x.Name, s.VPC)
			} else {
				v.errorf(o, "spec."+s.VPC, "%s exposes %s toward %s, which overlaps %s's subnet %s: give %s an `as` (NAT) that does not overlap it", s.VPC, e, x.Name, x.Name, sn, s.VPC)
			}
			break
		}
	}
}

// pools checks stateful pools: two different pools must not overlap, since
// two allocators could hand one public address and port to two sessions.
// One VPC using the same pool in several peerings shares one allocator.
func (v *validator) pools() {
	type pool struct {
		vpc  string
		set  *netipx.IPSet
		pref []netip.Prefix
		p    *Peering
	}
	var ps []pool
	for _, p := range v.m.Peerings {
		for _, s := range p.Sides {
			if !s.Stateful {
				continue
			}
			cur := pool{s.VPC, setOf(s.As), s.As, p}
			for _, q := range ps {
				if q.vpc == cur.vpc && q.set.Equal(cur.set) {
					continue
				}
				if q.set.Overlaps(cur.set) {
					o := v.peeringObj(p)
					if q.vpc != cur.vpc {
						v.errorf(o, "spec."+s.VPC+".as", "stateful pool %s of %s overlaps pool %s of %s (peering %s): two VPCs' allocators could give one public address and port to two sessions", prefixList(cur.pref), cur.vpc, prefixList(q.pref), q.vpc, q.p.Name)
					} else {
						v.errorf(o, "spec."+s.VPC+".as", "stateful pool %s overlaps %s's other pool %s (peering %s) without being equal: use the same pool to share one allocator", prefixList(cur.pref), cur.vpc, prefixList(q.pref), q.p.Name)
					}
				}
			}
			ps = append(ps, cur)
		}
	}
}

func (v *validator) peeringObj(p *Peering) *manifest.Object {
	o, _ := v.c.Get(manifest.Key{APIVersion: manifest.PeeringAPIVersion, Kind: manifest.KindPeering, Name: p.Name})
	return &o
}

// exposureOverlaps warns when two peerings expose overlapping addresses to
// one VPC: the routes become ECMP or are decided by metric.
func (v *validator) exposureOverlaps() {
	type exp struct {
		p   *Peering
		s   *Side
		set *netipx.IPSet
	}
	byVPC := map[string][]exp{}
	for _, p := range v.m.Peerings {
		for i, s := range p.Sides {
			if s.Stateful {
				continue // reply routes only
			}
			to := p.Sides[1-i].VPC
			byVPC[to] = append(byVPC[to], exp{p, s, s.Seen()})
		}
	}
	for _, x := range v.m.VPCs {
		es := byVPC[x.Name]
		for i, a := range es {
			for _, b := range es[i+1:] {
				if !a.set.Overlaps(b.set) {
					continue
				}
				var both netipx.IPSetBuilder
				both.AddSet(a.set)
				both.Intersect(b.set)
				in, _ := both.IPSet()
				ps := in.Prefixes()
				ex := ps[0].String()
				if len(ps) > 1 {
					ex += fmt.Sprintf(" and %d more prefixes", len(ps)-1)
				}
				how := "equal routes are ECMP"
				if a.s.Metric != b.s.Metric {
					how = fmt.Sprintf("metric %d (%s) and %d (%s) decide between equal routes", a.s.Metric, a.s.VPC, b.s.Metric, b.s.VPC)
				}
				v.warnf(v.peeringObj(b.p), "spec."+b.s.VPC+".ips", "exposure of %s overlaps that of %s (peering %s) toward %s (%s): %s", b.s.VPC, a.s.VPC, a.p.Name, x.Name, ex, how)
			}
		}
	}
}

// ipsFlow renders a side's ips in YAML flow form for messages.
func ipsFlow(s manifest.PeeringSide) string {
	var out []string
	for _, ip := range s.IPs {
		switch {
		case ip.CIDR != "":
			out = append(out, "{cidr: "+ip.CIDR+"}")
		case ip.Not != "":
			out = append(out, "{not: "+ip.Not+"}")
		case ip.FromVPCSubnet != "":
			out = append(out, "{fromVPCSubnet: "+ip.FromVPCSubnet+"}")
		}
	}
	return strings.Join(out, ", ")
}
