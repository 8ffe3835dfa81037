package validate

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/peergate/peergate/controlplane/manifest"
)

// Check validates c and returns the resolved model along with all warnings
// and errors. The model is only to be compiled when errs is empty.
func Check(c *manifest.Config) (*Model, []Diagnostic, []Diagnostic) {
	v := newValidator(c)
	v.run()
	w, e := v.sorted()
	return v.m, w, e
}

type validator struct {
	c     *manifest.Config
	m     *Model
	warns []Diagnostic
	errs  []Diagnostic
}

func newValidator(c *manifest.Config) *validator {
	return &validator{c: c, m: &Model{ByName: map[string]*VPC{}}}
}

func diag(o *manifest.Object, field, format string, args ...any) Diagnostic {
	return Diagnostic{Source: o.Source, Key: o.Key, Field: field, Message: fmt.Sprintf(format, args...)}
}

func (v *validator) errorf(o *manifest.Object, field, format string, args ...any) {
	v.errs = append(v.errs, diag(o, field, format, args...))
}

func (v *validator) warnf(o *manifest.Object, field, format string, args ...any) {
	v.warns = append(v.warns, diag(o, field, format, args...))
}

func (v *validator) sorted() ([]Diagnostic, []Diagnostic) {
	sortD(v.warns)
	sortD(v.errs)
	return slices.Compact(v.warns), slices.Compact(v.errs)
}

func sortD(ds []Diagnostic) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Source.File, b.Source.File), cmp.Compare(a.Source.Index, b.Source.Index),
			cmp.Compare(a.Key.Kind, b.Key.Kind), cmp.Compare(a.Key.Name, b.Key.Name),
			cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
}

// ---- address syntax ----

// prefix parses a network prefix that must have no host bits set.
func (v *validator) prefix(o *manifest.Object, field, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		v.errorf(o, field, "invalid CIDR %q: want address/length, e.g. 10.1.1.0/24", s)
		return p, false
	}
	if p.Masked() != p {
		v.errorf(o, field, "CIDR %q has host bits set: did you mean %s?", s, p.Masked())
		return p, false
	}
	return p, true
}

// ifacePrefix parses an interface address with its prefix length.
func (v *validator) ifacePrefix(o *manifest.Object, field, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		v.errorf(o, field, "invalid address/length %q, e.g. 169.254.0.1/30", s)
		return p, false
	}
	return p, true
}

func (v *validator) addr(o *manifest.Object, field, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		v.errorf(o, field, "invalid IP address %q", s)
		return a, false
	}
	return a, true
}

func (v *validator) port(o *manifest.Object, field string, p int, optional bool) {
	if p == 0 && optional {
		return
	}
	if p < 1 || p > 65535 {
		v.errorf(o, field, "port %d out of range 1-65535", p)
	}
}

// ---- resolution ----

func (v *validator) run() {
	objs := v.c.Objects()
	var subnets, peerings []*manifest.Object
	for i := range objs {
		o := &objs[i]
		switch {
		case o.Gateway != nil:
			v.gateway(o)
		case o.KubeOVNVpc != nil:
			v.vpc(o.Key.Name).kube = o
		case o.VPC != nil:
			v.vpc(o.Key.Name).pg = o
		case o.Subnet != nil:
			subnets = append(subnets, o)
		case o.Peering != nil:
			peerings = append(peerings, o)
		case o.Key.Kind == manifest.KindPod:
			v.warnf(o, "", "a Pod is not gateway configuration: ignored")
		}
	}
	for _, o := range subnets {
		v.subnet(o)
	}
	for _, x := range v.m.VPCs {
		v.resolveVPC(x)
	}
	v.attachments()
	v.kubeLinks()
	pairs := map[[2]string]*manifest.Object{}
	for _, l := range v.m.Links {
		pairs[[2]string{l.A, l.B}] = v.m.ByName[l.A].kube
	}
	for _, o := range peerings {
		v.peering(o, pairs)
	}
	v.pools()
	v.exposureOverlaps()
}

func (v *validator) vpc(name string) *VPC {
	if x, ok := v.m.ByName[name]; ok {
		return x
	}
	x := &VPC{Name: name, SubnetName: map[string]netip.Prefix{}}
	v.m.ByName[name] = x
	i, _ := slices.BinarySearchFunc(v.m.VPCs, name, func(a *VPC, n string) int { return cmp.Compare(a.Name, n) })
	v.m.VPCs = slices.Insert(v.m.VPCs, i, x)
	return x
}

// obj is the object a VPC's diagnostics are attached to.
func (x *VPC) obj() *manifest.Object {
	if x.pg != nil {
		return x.pg
	}
	return x.kube
}

func (v *validator) gateway(o *manifest.Object) {
	if v.m.Gateway != nil {
		v.errorf(o, "", "a second Gateway: one gateway is configured by exactly one Gateway object")
		return
	}
	s := o.Gateway
	g := &Gateway{ASN: s.ASN}
	if s.RouterID != "" {
		g.RouterID, _ = v.addr(o, "spec.routerID", s.RouterID)
	}
	if s.VTEPIP != "" {
		g.VTEPIP, _ = v.addr(o, "spec.vtepIP", s.VTEPIP)
	}
	seen := map[string]bool{}
	for i, p := range s.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if p.Name == "" {
			v.errorf(o, f+".name", "a port needs a name")
		} else if seen[p.Name] {
			v.errorf(o, f+".name", "duplicate port name %q", p.Name)
		}
		seen[p.Name] = true
		if p.Device == "" {
			v.errorf(o, f+".device", "a port needs a DPDK device (vdev devargs or PCI address)")
		}
		if p.MAC != "" {
			if _, err := parseMAC(p.MAC); err != nil {
				v.errorf(o, f+".mac", "invalid MAC address %q", p.MAC)
			}
		}
		if p.MTU != 0 && (p.MTU < 576 || p.MTU > 9216) {
			v.errorf(o, f+".mtu", "MTU %d out of range 576-9216", p.MTU)
		}
		port := Port{Name: p.Name, Device: p.Device, MAC: p.MAC, MTU: p.MTU}
		if port.MTU == 0 {
			port.MTU = 1500
		}
		for j, ip := range p.IPs {
			if pr, ok := v.ifacePrefix(o, fmt.Sprintf("%s.ips[%d]", f, j), ip); ok {
				port.IPs = append(port.IPs, pr)
			}
		}
		g.Ports = append(g.Ports, port)
	}
	v.m.Gateway = g
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, fmt.Errorf("want 6 octets")
	}
	for i, p := range parts {
		var b byte
		if _, err := fmt.Sscanf(p, "%02x", &b); err != nil || len(p) != 2 {
			return m, fmt.Errorf("octet %q", p)
		}
		m[i] = b
	}
	return m, nil
}

func (v *validator) subnet(o *manifest.Object) {
	s := o.Subnet
	if s.Vpc == "" {
		v.errorf(o, "spec.vpc", "a Subnet must name its VPC")
		return
	}
	x, ok := v.m.ByName[s.Vpc]
	if !ok {
		v.errorf(o, "spec.vpc", "unknown VPC %q", s.Vpc)
		return
	}
	p, ok := v.prefix(o, "spec.cidrBlock", s.CIDRBlock)
	if !ok {
		return
	}
	x.SubnetName[o.Key.Name] = p
	x.Subnets = append(x.Subnets, p)
	gw := firstHost(p)
	if s.Gateway != "" {
		a, ok := v.addr(o, "spec.gateway", s.Gateway)
		if !ok {
			return
		}
		if !p.Contains(a) {
			v.errorf(o, "spec.gateway", "gateway %s is outside cidrBlock %s", a, p)
		}
		gw = a
	}
	x.RouterIPs = append(x.RouterIPs, gw)
}

func firstHost(p netip.Prefix) netip.Addr {
	if p.Bits() >= p.Addr().BitLen()-1 {
		return p.Addr()
	}
	return p.Addr().Next()
}

func (v *validator) resolveVPC(x *VPC) {
	if k := x.kube; k != nil {
		for i, pe := range k.KubeOVNVpc.VpcPeerings {
			f := fmt.Sprintf("spec.vpcPeerings[%d]", i)
			if pe.RemoteVpc == "" {
				v.errorf(k, f+".remoteVpc", "remoteVpc is required")
				continue
			}
			if _, ok := v.m.ByName[pe.RemoteVpc]; !ok {
				v.errorf(k, f+".remoteVpc", "unknown VPC %q", pe.RemoteVpc)
				continue
			}
			if pe.RemoteVpc == x.Name {
				v.errorf(k, f+".remoteVpc", "a VPC cannot peer with itself")
				continue
			}
			if slices.ContainsFunc(x.KubePeerings, func(p KubePeering) bool { return p.Remote == pe.RemoteVpc }) {
				v.errorf(k, f+".remoteVpc", "a second peering between %s and %s: two VPCs have at most one peering", x.Name, pe.RemoteVpc)
				continue
			}
			c, ok := v.ifacePrefix(k, f+".localConnectIP", pe.LocalConnectIP)
			if !ok {
				continue
			}
			x.KubePeerings = append(x.KubePeerings, KubePeering{Remote: pe.RemoteVpc, Connect: c})
		}
		for i, r := range k.KubeOVNVpc.StaticRoutes {
			f := fmt.Sprintf("spec.staticRoutes[%d]", i)
			p, ok1 := v.prefix(k, f+".cidr", r.CIDR)
			a, ok2 := v.addr(k, f+".nextHopIP", r.NextHopIP)
			src := false
			switch r.Policy {
			case "", manifest.PolicyDst:
			case manifest.PolicySrc:
				src = true
			default:
				v.errorf(k, f+".policy", "unknown policy %q: want policyDst or policySrc", r.Policy)
				continue
			}
			if ok1 && ok2 {
				x.KubeRoutes = append(x.KubeRoutes, KubeRoute{Prefix: p, NextHop: a, MatchSource: src})
			}
		}
	}
	if o := x.pg; o != nil {
		s := o.VPC
		for i, sn := range s.Subnets {
			if p, ok := v.prefix(o, fmt.Sprintf("spec.subnets[%d]", i), sn); ok && !slices.Contains(x.Subnets, p) {
				x.Subnets = append(x.Subnets, p)
				x.RouterIPs = append(x.RouterIPs, firstHost(p))
			}
		}
		if len(s.RouterIPs) > 0 {
			x.RouterIPs = nil
			for i, r := range s.RouterIPs {
				if a, ok := v.addr(o, fmt.Sprintf("spec.routerIPs[%d]", i), r); ok {
					x.RouterIPs = append(x.RouterIPs, a)
					if !slices.ContainsFunc(x.Subnets, func(p netip.Prefix) bool { return p.Contains(a) }) {
						v.warnf(o, fmt.Sprintf("spec.routerIPs[%d]", i), "router IP %s is in none of the VPC's subnets", a)
					}
				}
			}
		}
		for i, r := range s.Routes {
			f := fmt.Sprintf("spec.routes[%d]", i)
			p, ok1 := v.prefix(o, f+".cidr", r.CIDR)
			a, ok2 := v.addr(o, f+".nextHop", r.NextHop)
			if ok1 && ok2 {
				if !slices.ContainsFunc(x.Subnets, func(p netip.Prefix) bool { return p.Contains(a) }) {
					v.errorf(o, f+".nextHop", "next hop %s is in none of the VPC's subnets: it cannot be resolved", a)
				}
				x.Routes = append(x.Routes, Route{Prefix: p, NextHop: a})
			}
		}
		x.External = s.External
		if s.BGP != nil {
			if !s.External {
				v.errorf(o, "spec.bgp", "BGP neighbours are for external VPCs: set external: true")
			}
			for i, n := range s.BGP.Neighbors {
				f := fmt.Sprintf("spec.bgp.neighbors[%d]", i)
				a, ok := v.addr(o, f+".address", n.Address)
				v.port(o, f+".port", n.Port, true)
				if n.ASN == 0 {
					v.errorf(o, f+".asn", "the neighbour's ASN is required")
				}
				if ok {
					x.Neighbors = append(x.Neighbors, Neighbor{Address: a, Port: n.Port, ASN: n.ASN})
				}
			}
		}
	}
	sortPrefixes(x.Subnets)
	if o := x.obj(); len(x.Subnets) == 0 && !x.External {
		v.warnf(o, "", "VPC %s has no subnets: give spec.subnets in a peergate.io/v1alpha1 VPC or a kubeovn.io/v1 Subnet naming it", x.Name)
	}
	for i := range x.Subnets {
		for j := i + 1; j < len(x.Subnets); j++ {
			if x.Subnets[i].Overlaps(x.Subnets[j]) {
				v.errorf(x.obj(), "spec.subnets", "subnets %s and %s overlap", x.Subnets[i], x.Subnets[j])
			}
		}
	}
}

func (v *validator) attachments() {
	ports := map[string]bool{}
	if v.m.Gateway != nil {
		for _, p := range v.m.Gateway.Ports {
			ports[p.Name] = true
		}
	}
	vnis := map[uint32]string{}
	vlans := map[string]string{}
	untagged := map[string]string{}
	for _, x := range v.m.VPCs {
		o := x.pg
		if o == nil {
			v.warnf(x.obj(), "", "VPC %s has no attachment: add a peergate.io/v1alpha1 VPC named %s with vxlan, vlan or untagged, or the gateway cannot reach it", x.Name, x.Name)
			continue
		}
		s := o.VPC
		n := 0
		for _, set := range []bool{s.VXLAN != nil, s.VLAN != nil, s.Untagged != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.errorf(o, "spec", "exactly one of vxlan, vlan or untagged is required, got %d", n)
			continue
		}
		checkPort := func(f, p string) {
			if !ports[p] {
				if v.m.Gateway == nil {
					v.errorf(o, f, "unknown port %q: no Gateway object defines ports", p)
				} else {
					v.errorf(o, f, "unknown port %q: the Gateway has no such port", p)
				}
			}
		}
		switch {
		case s.VXLAN != nil:
			a := Attachment{Kind: AttachVXLAN, Port: s.VXLAN.Port, VNI: s.VXLAN.VNI}
			checkPort("spec.vxlan.port", a.Port)
			if a.VNI < 1 || a.VNI > 1<<24-1 {
				v.errorf(o, "spec.vxlan.vni", "VNI %d out of range 1-16777215", a.VNI)
			} else if other, dup := vnis[a.VNI]; dup {
				v.errorf(o, "spec.vxlan.vni", "VNI %d is already VPC %s's: a VNI identifies one VPC", a.VNI, other)
			}
			vnis[a.VNI] = x.Name
			for i, t := range s.VXLAN.VTEPs {
				if ad, ok := v.addr(o, fmt.Sprintf("spec.vxlan.vteps[%d]", i), t); ok {
					a.VTEPs = append(a.VTEPs, ad)
				}
			}
			if v.m.Gateway != nil && !v.m.Gateway.VTEPIP.IsValid() {
				v.errorf(o, "spec.vxlan", "VXLAN needs the gateway's own VTEP address: set spec.vtepIP in the Gateway")
			}
			if len(s.VXLAN.VTEPs) == 0 {
				v.errorf(o, "spec.vxlan.vteps", "at least one remote VTEP is required")
			}
			x.Attachment = a
		case s.VLAN != nil:
			a := Attachment{Kind: AttachVLAN, Port: s.VLAN.Port, VLAN: s.VLAN.ID}
			checkPort("spec.vlan.port", a.Port)
			key := fmt.Sprintf("%s/%d", a.Port, a.VLAN)
			if a.VLAN < 1 || a.VLAN > 4094 {
				v.errorf(o, "spec.vlan.id", "VLAN id %d out of range 1-4094", a.VLAN)
			} else if other, dup := vlans[key]; dup {
				v.errorf(o, "spec.vlan.id", "VLAN %d on port %q is already VPC %s's", a.VLAN, a.Port, other)
			}
			vlans[key] = x.Name
			x.Attachment = a
		default:
			a := Attachment{Kind: AttachUntagged, Port: s.Untagged.Port}
			checkPort("spec.untagged.port", a.Port)
			if other, dup := untagged[a.Port]; dup {
				v.errorf(o, "spec.untagged.port", "port %q already carries VPC %s untagged: one untagged VPC per port", a.Port, other)
			}
			untagged[a.Port] = x.Name
			x.Attachment = a
		}
	}
}

// kubeLinks pairs the Kube-OVN peering ends into reciprocal links.
func (v *validator) kubeLinks() {
	for _, x := range v.m.VPCs {
		for i, pe := range x.KubePeerings {
			f := fmt.Sprintf("spec.vpcPeerings[%d]", i)
			r := v.m.ByName[pe.Remote]
			j := slices.IndexFunc(r.KubePeerings, func(p KubePeering) bool { return p.Remote == x.Name })
			if j < 0 {
				v.errorf(x.kube, f+".remoteVpc", "peering with %s is not reciprocal: %s has no vpcPeerings entry with remoteVpc: %s", pe.Remote, pe.Remote, x.Name)
				continue
			}
			other := r.KubePeerings[j]
			if x.Name > pe.Remote {
				continue // each link is checked once, from its lower name
			}
			ok := true
			if pe.Connect.Masked() != other.Connect.Masked() {
				v.errorf(x.kube, f+".localConnectIP", "localConnectIP %s and %s's %s are not in one subnet", pe.Connect, pe.Remote, other.Connect)
				ok = false
			} else if pe.Connect.Addr() == other.Connect.Addr() {
				v.errorf(x.kube, f+".localConnectIP", "localConnectIP %s is also %s's: the two ends need different addresses", pe.Connect.Addr(), pe.Remote)
				ok = false
			}
			for _, y := range []*VPC{x, r} {
				for _, s := range y.Subnets {
					if s.Overlaps(pe.Connect.Masked()) {
						v.errorf(x.kube, f+".localConnectIP", "peering subnet %s collides with subnet %s of %s", pe.Connect.Masked(), s, y.Name)
						ok = false
					}
				}
			}
			for _, a := range x.Subnets {
				for _, b := range r.Subnets {
					if a.Overlaps(b) {
						v.errorf(x.kube, f+".remoteVpc", "subnet %s of %s overlaps subnet %s of %s: a Kube-OVN peering routes without NAT", a, x.Name, b, r.Name)
					}
				}
			}
			if ok {
				v.m.Links = append(v.m.Links, &KubeOVNLink{A: x.Name, B: r.Name, ConnectA: pe.Connect, ConnectB: other.Connect})
			}
		}
	}
	// Static routes go through a peering: their next hop is a remote end.
	for _, x := range v.m.VPCs {
		for i, r := range x.KubeRoutes {
			if !slices.ContainsFunc(x.KubePeerings, func(p KubePeering) bool {
				rv := v.m.ByName[p.Remote]
				return slices.ContainsFunc(rv.KubePeerings, func(q KubePeering) bool { return q.Remote == x.Name && q.Connect.Addr() == r.NextHop })
			}) {
				v.errorf(x.kube, fmt.Sprintf("spec.staticRoutes[%d].nextHopIP", i), "next hop %s is not the localConnectIP of a VPC %s peers with", r.NextHop, x.Name)
			}
		}
	}
}
