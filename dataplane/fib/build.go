package fib

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/peergate/peergate/lpm"
	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// DefaultMTU applies to ports whose MTU is 0.
const DefaultMTU = 1500

// Options adjust Build for the driver.
type Options struct {
	// PortMAC returns the device MAC of a port whose tables entry has none
	// (DPDK: rte_eth_macaddr_get). Nil: a locally administered
	// 02:70:67:00:00:<id+1>.
	PortMAC func(id uint32) [6]byte
}

// DefaultPortMAC is the MAC used for a port without one when Options.PortMAC
// is nil (replay mode).
func DefaultPortMAC(id uint32) [6]byte {
	return [6]byte{0x02, 0x70, 0x67, byte(id >> 16), byte(id >> 8), byte(id + 1)}
}

// Build compiles t into a Snapshot. It rejects references out of range so the
// hot path can index without checks beyond what it does anyway.
func Build(t *tablesv1.Tables, o Options) (*Snapshot, error) {
	if t == nil {
		return nil, fmt.Errorf("fib: nil tables")
	}
	if o.PortMAC == nil {
		o.PortMAC = DefaultPortMAC
	}
	s := &Snapshot{Generation: t.GetGeneration(), Peerings: []string{""}}
	w := &writer{
		newest: s,
		lim:    limits{vpcs: len(t.GetVpcs()), natTables: len(t.GetNatTables()), filters: len(t.GetFilters()), natPools: len(t.GetNatPools())},
		// Identical action lists share one group: a full table's routes
		// mostly point at a handful of them.
		groups: map[string]uint32{},
	}
	s.w = w
	if v := t.GetGateway().GetVtepIp(); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("fib: gateway vtep_ip %q: not an IPv4 address", v)
		}
		s.VTEP = v4(a)
	}
	if len(t.GetPorts()) > 0xffff || len(t.GetVpcs()) > 0xfffe {
		return nil, fmt.Errorf("fib: %d ports, %d vpcs: too many", len(t.GetPorts()), len(t.GetVpcs()))
	}
	for i, p := range t.GetPorts() {
		if int(p.GetId()) != i {
			return nil, fmt.Errorf("fib: port %q: id %d at index %d", p.GetName(), p.GetId(), i)
		}
		port := Port{ID: uint16(i), Name: p.GetName(), MTU: int(p.GetMtu())}
		if port.MTU == 0 {
			port.MTU = DefaultMTU
		}
		if p.GetMac() != "" {
			hw, err := net.ParseMAC(p.GetMac())
			if err != nil || len(hw) != 6 {
				return nil, fmt.Errorf("fib: port %q: mac %q: invalid", p.GetName(), p.GetMac())
			}
			copy(port.MAC[:], hw)
		} else {
			port.MAC = o.PortMAC(p.GetId())
		}
		for _, ip := range p.GetIps() {
			pfx, err := parsePrefixOrAddr(ip)
			if err != nil {
				return nil, fmt.Errorf("fib: port %q: ip: %w", p.GetName(), err)
			}
			port.IPs = append(port.IPs, pfx)
			if pfx.Addr().Is4() {
				port.IP4 = append(port.IP4, v4(pfx.Addr()))
			}
		}
		s.Ports = append(s.Ports, port)
	}
	for i, nt := range t.GetNatTables() {
		tab := NatTable{LPM: lpm.New()}
		for j, seg := range nt.GetSegments() {
			from, err := netip.ParsePrefix(seg.GetFrom())
			if err != nil {
				return nil, fmt.Errorf("fib: nat table %d segment %d: from: %w", i+1, j, err)
			}
			to, err := netip.ParsePrefix(seg.GetTo())
			if err != nil {
				return nil, fmt.Errorf("fib: nat table %d segment %d: to: %w", i+1, j, err)
			}
			if from.Bits() != to.Bits() || from.Addr().Is4() != to.Addr().Is4() {
				return nil, fmt.Errorf("fib: nat table %d segment %d: %s and %s differ in length or family", i+1, j, from, to)
			}
			from, to = from.Masked(), to.Masked()
			seg := NatSegment{From: from, To: to, Bits: uint8(to.Bits()), To16: to.Addr().As16()}
			if from.Addr().Is4() {
				seg.From4, seg.Mask4 = v4(from.Addr()), ^uint32(0)<<(32-from.Bits())
				if from.Bits() == 0 {
					seg.Mask4 = 0
				}
				seg.To4 = v4(to.Addr()) & seg.Mask4
			}
			tab.Segments = append(tab.Segments, seg)
			if err := tab.LPM.Insert(from, uint32(j)); err != nil {
				return nil, fmt.Errorf("fib: nat table %d: %w", i+1, err)
			}
		}
		tab.Small = len(tab.Segments) <= SmallNat
		for a := range tab.Segments {
			if !tab.Segments[a].From.Addr().Is4() {
				tab.Small = false
			}
			for b := range a {
				if tab.Segments[a].From.Overlaps(tab.Segments[b].From) {
					tab.Small = false
				}
			}
		}
		s.NatTables = append(s.NatTables, tab)
	}
	for _, f := range t.GetFilters() {
		var fl Filter
		for _, r := range f.GetRules() {
			if r.GetSrcPort() > 0xffff || r.GetDstPort() > 0xffff {
				return nil, fmt.Errorf("fib: filter rule port out of range")
			}
			fl.Rules = append(fl.Rules, FilterRule{Proto: uint8(r.GetProtocol()), SrcPort: uint16(r.GetSrcPort()), DstPort: uint16(r.GetDstPort())})
		}
		s.Filters = append(s.Filters, fl)
	}
	for _, p := range t.GetNatPools() {
		np := NatPool{ID: p.GetId(), VPC: uint16(p.GetVpc())}
		for _, x := range p.GetPrefixes() {
			pfx, err := parsePrefixOrAddr(x)
			if err != nil {
				return nil, fmt.Errorf("fib: nat pool %d: %w", p.GetId(), err)
			}
			np.Prefixes = append(np.Prefixes, pfx)
		}
		s.NatPools = append(s.NatPools, np)
	}
	nclass := 0
	for i, v := range t.GetVpcs() {
		if int(v.GetId()) != i {
			return nil, fmt.Errorf("fib: vpc %q: id %d at index %d", v.GetName(), v.GetId(), i)
		}
		vpc, tabs, err := s.buildVPC(v, w)
		if err != nil {
			return nil, fmt.Errorf("fib: vpc %q: %w", v.GetName(), err)
		}
		if vpc.Kind != AttachNone {
			nclass++
		}
		s.VPCs = append(s.VPCs, vpc)
		w.vpcs = append(w.vpcs, tabs)
	}
	w.builtGroups = len(s.Groups)
	s.class.init(nclass)
	for i := range s.VPCs {
		v := &s.VPCs[i]
		var k uint64
		switch v.Kind {
		case AttachNone:
			continue
		case AttachVXLAN:
			k = classKey(classVXLAN, v.Port, v.VNI)
		case AttachVLAN:
			k = classKey(classVLAN, v.Port, uint32(v.OuterVLAN)<<12|uint32(v.VLAN))
		case AttachUntagged:
			k = classKey(classUntagged, v.Port, 0)
		}
		if !s.class.put(k, uint16(i)) {
			return nil, fmt.Errorf("fib: vpc %q: attachment shared with another VPC", v.Name)
		}
	}
	return s, nil
}

// buildVPC returns the VPC and the lpm tables its lookups are taken from
// (kept by the writer for ApplyDelta).
func (s *Snapshot) buildVPC(v *tablesv1.Vpc, w *writer) (vpc VPC, tabs vpcTables, err error) {
	vpc = VPC{ID: uint16(v.GetId()), Name: v.GetName(), External: v.GetExternal(), MTU: DefaultMTU}
	if a := v.GetAttachment(); a != nil && a.GetKind() != tablesv1.Attachment_KIND_UNSPECIFIED {
		if int(a.GetPortId()) >= len(s.Ports) {
			return vpc, tabs, fmt.Errorf("attachment port %d: no such port", a.GetPortId())
		}
		vpc.Kind = uint8(a.GetKind())
		vpc.Port = uint16(a.GetPortId())
		vpc.MAC = s.Ports[vpc.Port].MAC
		vpc.MTU = s.Ports[vpc.Port].MTU
		switch a.GetKind() {
		case tablesv1.Attachment_KIND_VXLAN:
			if a.GetVni() == 0 || a.GetVni() > 0xffffff {
				return vpc, tabs, fmt.Errorf("vni %d out of range", a.GetVni())
			}
			vpc.VNI = a.GetVni()
			for _, x := range a.GetVteps() {
				ad, err := netip.ParseAddr(x)
				if err != nil || !ad.Is4() {
					return vpc, tabs, fmt.Errorf("vtep %q: not an IPv4 address", x)
				}
				vpc.VTEPs = append(vpc.VTEPs, v4(ad))
			}
			if len(vpc.VTEPs) == 0 {
				return vpc, tabs, fmt.Errorf("vxlan attachment without vteps")
			}
			if s.VTEP == 0 {
				return vpc, tabs, fmt.Errorf("vxlan attachment but the gateway has no vtep_ip")
			}
		case tablesv1.Attachment_KIND_VLAN:
			tag := a.GetVlan()
			if tag == 0 || tag >= 1<<24 {
				return vpc, tabs, fmt.Errorf("vlan %d out of range", tag)
			}
			vpc.VLAN, vpc.OuterVLAN = uint16(tag&0xfff), uint16(tag>>12)
			if vpc.VLAN == 0 {
				return vpc, tabs, fmt.Errorf("vlan %d: inner tag 0", tag)
			}
		case tablesv1.Attachment_KIND_UNTAGGED:
		default:
			return vpc, tabs, fmt.Errorf("unknown attachment kind %v", a.GetKind())
		}
	}
	var routes, srcRoutes, local []lpm.Route
	route := func(pfx netip.Prefix, r *tablesv1.Route) error {
		g, err := s.group(w, pfx, r.GetActions(), false)
		if err != nil {
			return err
		}
		if r.GetMatchSource() {
			srcRoutes = append(srcRoutes, lpm.Route{Prefix: pfx, Value: g})
		} else {
			routes = append(routes, lpm.Route{Prefix: pfx, Value: g})
		}
		return nil
	}
	routes = make([]lpm.Route, 0, len(v.GetRoutes())+routeblock.Len(v.GetRouteBlock())+len(v.GetRouterIps()))
	if err := eachRoute("route", v.GetRoutes(), v.GetRouteBlock(), route); err != nil {
		return vpc, tabs, err
	}
	localAct := s.addGroup([]Action{{Kind: ActLocal}})
	tabs.routerIPs = map[netip.Prefix]bool{}
	for _, x := range v.GetRouterIps() {
		pfx, err := parsePrefixOrAddr(x)
		if err != nil {
			return vpc, tabs, fmt.Errorf("router ip: %w", err)
		}
		a := pfx.Addr()
		vpc.RouterIPs = append(vpc.RouterIPs, a)
		if a.Is4() && vpc.RouterIP4 == 0 {
			vpc.RouterIP4 = v4(a)
		}
		if a.Is6() && !vpc.HasIP6 {
			vpc.RouterIP6, vpc.HasIP6 = a.As16(), true
		}
		// Router IPs are local whatever the compiled routes say: appended
		// last, they replace any compiled route for the same prefix.
		host := netip.PrefixFrom(a, a.BitLen())
		routes = append(routes, lpm.Route{Prefix: host, Value: localAct})
		tabs.routerIPs[host] = true
	}
	addLocal := func(pfx netip.Prefix, r *tablesv1.Route) error {
		g, err := s.group(w, pfx, r.GetActions(), true)
		if err != nil {
			return err
		}
		local = append(local, lpm.Route{Prefix: pfx, Value: g})
		return nil
	}
	local = make([]lpm.Route, 0, len(v.GetLocalRoutes())+routeblock.Len(v.GetLocalRouteBlock()))
	if err := eachRoute("local route", v.GetLocalRoutes(), v.GetLocalRouteBlock(), addLocal); err != nil {
		return vpc, tabs, err
	}
	if tabs.routes, err = lpm.Build(routes); err != nil {
		return vpc, tabs, fmt.Errorf("routes: %w", err)
	}
	if tabs.src, err = lpm.Build(srcRoutes); err != nil {
		return vpc, tabs, fmt.Errorf("source routes: %w", err)
	}
	if tabs.local, err = lpm.Build(local); err != nil {
		return vpc, tabs, fmt.Errorf("local routes: %w", err)
	}
	tabs.publish(&vpc)
	return vpc, tabs, nil
}

func (s *Snapshot) addGroup(acts []Action) uint32 {
	g := Group{First: uint32(len(s.Actions)), N: uint32(len(acts))}
	s.Actions = append(s.Actions, acts...)
	s.Groups = append(s.Groups, g)
	return uint32(len(s.Groups) - 1)
}

// group returns the group of the compiled actions, shared with every earlier
// route whose actions (and, for destination NAT, prefix length) are equal.
func (s *Snapshot) group(w *writer, pfx netip.Prefix, in []*tablesv1.Action, local bool) (uint32, error) {
	g, key, err := s.groupKey(w, pfx, in, nil, local)
	if key != "" {
		w.groups[key] = g
	}
	return g, err
}

// groupKey is group without recording a new group in the writer: it also
// looks in staged (the groups a delta added so far) and returns the new
// group's key for the caller to record. ApplyDelta keeps a delta's new
// groups apart until the whole delta is known to be valid.
func (s *Snapshot) groupKey(w *writer, pfx netip.Prefix, in []*tablesv1.Action, staged map[string]uint32, local bool) (uint32, string, error) {
	// Consecutive routes mostly carry equal actions (a neighbour's routes
	// in a row): compare with the last route's before making a key.
	m := &w.memo
	if m.ok && m.local == local && (!m.dstNAT || m.bits == pfx.Bits()) && sameActions(m.in, in) {
		return m.g, "", nil
	}
	kb := w.kb[:0]
	if local {
		kb = append(kb, 'L')
	}
	dstNAT := false
	for _, a := range in {
		for _, n := range []uint32{uint32(a.GetKind()), a.GetDstVpc(), a.GetTtlDecrement(), a.GetSrcNat(), a.GetSnatPool(), a.GetReversePool(), a.GetIngressFilter()} {
			kb = strconv.AppendUint(kb, uint64(n), 10)
			kb = append(kb, '|')
		}
		kb = append(append(append(append(kb, a.GetVia()...), '|'), a.GetPeering()...), '|')
		if a.GetDstNat() != "" {
			dstNAT = true
			kb = strconv.AppendInt(append(append(kb, a.GetDstNat()...), '/'), int64(pfx.Bits()), 10)
		}
		kb = append(kb, ';')
	}
	w.kb = kb
	g, ok := w.groups[string(kb)]
	if !ok {
		g, ok = staged[string(kb)]
	}
	key := ""
	if !ok {
		acts, err := s.actions(w, pfx, in, local)
		if err != nil {
			m.ok = false
			return 0, "", err
		}
		g, key = s.addGroup(acts), string(kb)
	}
	*m = groupMemo{ok: true, in: in, local: local, dstNAT: dstNAT, bits: pfx.Bits(), g: g}
	return g, key, nil
}

// groupMemo is the last route's actions and group (see groupKey).
type groupMemo struct {
	ok, local, dstNAT bool
	bits              int
	in                []*tablesv1.Action
	g                 uint32
}

// sameActions reports whether a and b compile to the same group: every
// field groupKey puts in the key is equal.
func sameActions(a, b []*tablesv1.Action) bool {
	if len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) {
		return true // one list: the routes of a block share their template's
	}
	return slices.EqualFunc(a, b, func(x, y *tablesv1.Action) bool {
		return x.GetKind() == y.GetKind() && x.GetDstVpc() == y.GetDstVpc() && x.GetVia() == y.GetVia() &&
			x.GetTtlDecrement() == y.GetTtlDecrement() && x.GetPeering() == y.GetPeering() && x.GetDstNat() == y.GetDstNat() &&
			x.GetSrcNat() == y.GetSrcNat() && x.GetSnatPool() == y.GetSnatPool() && x.GetReversePool() == y.GetReversePool() &&
			x.GetIngressFilter() == y.GetIngressFilter()
	})
}

func (s *Snapshot) actions(w *writer, pfx netip.Prefix, in []*tablesv1.Action, local bool) ([]Action, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("no actions")
	}
	out := make([]Action, 0, len(in))
	for _, a := range in {
		act := Action{Kind: uint8(a.GetKind())}
		switch a.GetKind() {
		case tablesv1.ActionKind_ACTION_DELIVER, tablesv1.ActionKind_ACTION_DROP, tablesv1.ActionKind_ACTION_LOCAL:
		case tablesv1.ActionKind_ACTION_FORWARD:
			if local {
				return nil, fmt.Errorf("forward action in local_routes")
			}
			if int(a.GetDstVpc()) >= w.lim.vpcs {
				return nil, fmt.Errorf("dst_vpc %d: no such vpc", a.GetDstVpc())
			}
			act.DstVPC = uint16(a.GetDstVpc())
		default:
			return nil, fmt.Errorf("unknown action kind %v", a.GetKind())
		}
		if a.GetTtlDecrement() > 8 {
			return nil, fmt.Errorf("ttl_decrement %d too large", a.GetTtlDecrement())
		}
		act.TTLDec = uint8(a.GetTtlDecrement())
		if a.GetVia() != "" {
			via, err := netip.ParseAddr(a.GetVia())
			if err != nil {
				return nil, fmt.Errorf("via: %w", err)
			}
			act.Via, act.HasVia = via.Unmap(), true
		}
		if a.GetDstNat() != "" {
			d, err := netip.ParsePrefix(a.GetDstNat())
			if err != nil {
				return nil, fmt.Errorf("dst_nat: %w", err)
			}
			if d.Bits() != pfx.Bits() || d.Addr().Is4() != pfx.Addr().Is4() {
				return nil, fmt.Errorf("dst_nat %s does not match the route's length or family", d)
			}
			act.HasDstNAT, act.DstNATBits, act.DstNATPfx = true, uint8(d.Bits()), d.Masked().Addr().As16()
			if d.Addr().Is4() && d.Bits() > 0 {
				act.DstNATMask4 = ^uint32(0) << (32 - d.Bits())
				act.DstNAT4 = v4(d.Masked().Addr())
			}
		}
		if n := a.GetSrcNat(); n > uint32(w.lim.natTables) {
			return nil, fmt.Errorf("src_nat %d: no such table", n)
		}
		if n := a.GetIngressFilter(); n > uint32(w.lim.filters) {
			return nil, fmt.Errorf("ingress_filter %d: no such filter", n)
		}
		if n := a.GetSnatPool(); n > uint32(w.lim.natPools) {
			return nil, fmt.Errorf("snat_pool %d: no such pool", n)
		}
		if n := a.GetReversePool(); n > uint32(w.lim.natPools) {
			return nil, fmt.Errorf("reverse_pool %d: no such pool", n)
		}
		act.SrcNAT, act.Filter, act.SnatPool, act.ReversePool = a.GetSrcNat(), a.GetIngressFilter(), a.GetSnatPool(), a.GetReversePool()
		if a.GetPeering() != "" {
			// Found by a scan: this runs once per new group (routes share
			// groups), and the peerings are the configuration's few.
			i := slices.Index(s.Peerings, a.GetPeering())
			if i < 0 {
				i = len(s.Peerings)
				s.Peerings = append(s.Peerings, a.GetPeering())
			}
			act.Peering = uint16(i)
		}
		out = append(out, act)
	}
	return out, nil
}

// parsePrefixOrAddr accepts "10.0.0.0/8", "192.0.2.1/24" (kept unmasked: a
// port address with its subnet) or a bare address (a host prefix).
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: not a prefix or address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}
