package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// tagAS is the community AS half used for VPC tags (65534 is private use).
// Tags never leave the gateway: the export statement strips them.
const tagAS = 65534

// noNeighbor keeps a VPC's neighbour set non-empty: gobgp matches an empty
// neighbour set against every neighbour, which would leak the VPC's
// advertisements to all externals.
const noNeighbor = "255.255.255.255/32"

// vpcState is the export plumbing of one external VPC: a neighbour set, a
// community that tags the local paths it may see, and one policy statement
// joining the two.
type vpcState struct {
	tag uint16
	adv map[netip.Prefix]struct{}
}

func nbSetName(vpc string) string  { return "pg-nb-" + vpc }
func tagSetName(vpc string) string { return "pg-tag-" + vpc }
func policyName(vpc string) string { return "pg-export-" + vpc }

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// setExportAssignment makes the global export policy the list of VPC
// policies, rejecting whatever none of them accepts.
func (s *Speaker) setExportAssignment(ctx context.Context, srv *server.BgpServer) error {
	names := make([]string, 0, len(s.vpcs))
	for vpc := range s.vpcs {
		names = append(names, vpc)
	}
	sort.Strings(names)
	pols := make([]*api.Policy, 0, len(names))
	for _, vpc := range names {
		pols = append(pols, &api.Policy{Name: policyName(vpc)})
	}
	err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_EXPORT,
		Policies:      pols,
		DefaultAction: api.RouteAction_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: set global export policy (%d VPCs): %w", len(names), err)
	}
	return nil
}

// setImportPolicy keeps learned paths out of gobgp's global RIB: the
// speaker reads them from the adj-rib-in watch and never lets gobgp forward
// them, so a global copy would only cost memory (a full table is ~1 M paths)
// and best-path work per update. Only the gateway's own paths are accepted.
func setImportPolicy(ctx context.Context, srv *server.BgpServer) error {
	const name = "pg-import"
	err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: name, Statements: []*api.Statement{{
		Name:       name + "-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
	}}}})
	if err != nil {
		return fmt.Errorf("bgp: add import policy: %w", err)
	}
	err = srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_IMPORT,
		Policies:      []*api.Policy{{Name: name}},
		DefaultAction: api.RouteAction_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: set global import policy: %w", err)
	}
	return nil
}

// ensureVPC creates the export plumbing of vpc the first time it is named.
// Called with opMu held.
func (s *Speaker) ensureVPC(ctx context.Context, vpc string) (*vpcState, error) {
	if vs, ok := s.vpcs[vpc]; ok {
		return vs, nil
	}
	if vpc == "" {
		return nil, errors.New("bgp: empty VPC name")
	}
	if s.nextTag == 0xffff {
		return nil, fmt.Errorf("bgp: VPC %q: out of VPC tags", vpc)
	}
	s.nextTag++
	vs := &vpcState{tag: s.nextTag, adv: make(map[netip.Prefix]struct{})}
	sets := []*api.DefinedSet{
		{DefinedType: api.DefinedType_NEIGHBOR, Name: nbSetName(vpc), List: []string{noNeighbor}},
		{DefinedType: api.DefinedType_COMMUNITY, Name: tagSetName(vpc), List: []string{fmt.Sprintf("%d:%d", tagAS, vs.tag)}},
	}
	for _, ds := range sets {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return nil, fmt.Errorf("bgp: VPC %q: add defined set %s: %w", vpc, ds.Name, err)
		}
	}
	pol := &api.Policy{Name: policyName(vpc), Statements: []*api.Statement{{
		Name: policyName(vpc) + "-local",
		Conditions: &api.Conditions{
			NeighborSet:  &api.MatchSet{Type: api.MatchSet_ANY, Name: nbSetName(vpc)},
			CommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: tagSetName(vpc)},
			RouteType:    api.Conditions_ROUTE_TYPE_LOCAL,
		},
		Actions: &api.Actions{
			RouteAction: api.RouteAction_ACCEPT,
			Community:   &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: []string{fmt.Sprintf("^%d:.*$", tagAS)}},
		},
	}}}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		return nil, fmt.Errorf("bgp: VPC %q: add export policy: %w", vpc, err)
	}
	s.vpcs[vpc] = vs
	if err := s.setExportAssignment(ctx, s.srv); err != nil {
		delete(s.vpcs, vpc)
		return nil, err
	}
	return vs, nil
}

// SetAdvertised makes prefixes what every neighbour of vpc is told (the
// NATed addresses of its peerings, or learned prefixes for transit);
// anything told before and not listed now is withdrawn from those
// neighbours. Neighbours of other VPCs are unaffected, even when they are
// told the same prefix. The next hop is the gateway's session address.
func (s *Speaker) SetAdvertised(ctx context.Context, vpc string, prefixes []netip.Prefix) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.running(); err != nil {
		return err
	}
	want := make(map[netip.Prefix]struct{}, len(prefixes))
	for _, p := range prefixes {
		if !p.IsValid() {
			return fmt.Errorf("bgp: advertise to VPC %q: invalid prefix %v", vpc, p)
		}
		want[p.Masked()] = struct{}{}
	}
	vs, err := s.ensureVPC(ctx, vpc)
	if err != nil {
		return err
	}
	var changed []netip.Prefix
	for p := range vs.adv {
		if _, ok := want[p]; !ok {
			changed = append(changed, p)
			s.advRefs[p] = slices.DeleteFunc(s.advRefs[p], func(t uint16) bool { return t == vs.tag })
		}
	}
	for p := range want {
		if _, ok := vs.adv[p]; !ok {
			changed = append(changed, p)
			tags := append(s.advRefs[p], vs.tag)
			slices.Sort(tags)
			s.advRefs[p] = tags
		}
	}
	vs.adv = want
	var errs []error
	for _, p := range changed {
		tags := s.advRefs[p]
		path := localPath(p, tags)
		if len(tags) == 0 {
			delete(s.advRefs, p)
			if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path}); err != nil {
				errs = append(errs, fmt.Errorf("withdraw %v: %w", p, err))
			}
			continue
		}
		// Same prefix, same (local) source: gobgp replaces the path, and
		// neighbours whose VPC tag disappeared get a withdrawal.
		if _, err := s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
			errs = append(errs, fmt.Errorf("announce %v: %w", p, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bgp: advertise to VPC %q: %w", vpc, errors.Join(errs...))
	}
	return nil
}

// localPath is the gateway's own announcement of p, tagged for the VPCs
// whose neighbours may see it. The next hop is rewritten by gobgp to the
// session's local address (eBGP).
func localPath(p netip.Prefix, tags []uint16) *api.Path {
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0}) // IGP
	attrs := []*anypb.Any{origin}
	family := familyV4
	if p.Addr().Is4() {
		nh, _ := anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
		attrs = append(attrs, nh)
	} else {
		family = familyV6
		mp, _ := anypb.New(&api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
		attrs = append(attrs, mp)
	}
	if len(tags) > 0 {
		comms := make([]uint32, len(tags))
		for i, t := range tags {
			comms[i] = tagAS<<16 | uint32(t)
		}
		c, _ := anypb.New(&api.CommunitiesAttribute{Communities: comms})
		attrs = append(attrs, c)
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: attrs}
}

// Advertised returns what vpc's neighbours are told, sorted.
func (s *Speaker) Advertised(vpc string) []netip.Prefix {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	vs := s.vpcs[vpc]
	if vs == nil {
		return nil
	}
	out := make([]netip.Prefix, 0, len(vs.adv))
	for p := range vs.adv {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
