package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// SetNeighbors makes the configured sessions exactly ns: new neighbours are
// added, missing ones removed (withdrawing what they taught, with a
// SessionDown event if they were up), and a neighbour whose VPC, port or ASN
// changed is removed and added again. Calling it twice with the same list
// changes nothing.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []Neighbor) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.running(); err != nil {
		return err
	}
	want := make(map[netip.Addr]Neighbor, len(ns))
	for _, n := range ns {
		n.Address = n.Address.Unmap()
		switch {
		case n.VPC == "":
			return fmt.Errorf("bgp: neighbor %v: no VPC", n.Address)
		case !n.Address.IsValid() || n.Address.IsUnspecified():
			return fmt.Errorf("bgp: VPC %q: invalid neighbor address %v", n.VPC, n.Address)
		case n.ASN == 0:
			return fmt.Errorf("bgp: VPC %q: neighbor %v: ASN 0", n.VPC, n.Address)
		}
		if old, dup := want[n.Address]; dup {
			return fmt.Errorf("bgp: neighbor %v listed twice (VPCs %q and %q)", n.Address, old.VPC, n.VPC)
		}
		want[n.Address] = n
	}

	s.mu.Lock()
	current := make(map[netip.Addr]Neighbor, len(s.neighbors))
	for a, n := range s.neighbors {
		current[a] = n.cfg
	}
	s.mu.Unlock()

	var errs []error
	for _, a := range sortedAddrs(current) {
		if w, ok := want[a]; ok && w == current[a] {
			continue
		}
		if err := s.removeNeighbor(ctx, current[a]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, a := range sortedAddrs(want) {
		if c, ok := current[a]; ok && c == want[a] {
			continue
		}
		if err := s.addNeighbor(ctx, want[a]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

func (s *Speaker) addNeighbor(ctx context.Context, n Neighbor) error {
	if _, err := s.ensureVPC(ctx, n.VPC); err != nil {
		return err
	}
	// The neighbour joins its VPC's export set before the session can come
	// up, so its first advertisement is already the right one.
	err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: nbSetName(n.VPC), List: []string{hostPrefix(n.Address)},
	}})
	if err != nil {
		return fmt.Errorf("bgp: VPC %q: neighbor %v: add to export set: %w", n.VPC, n.Address, err)
	}
	s.mu.Lock()
	s.neighbors[n.Address] = newNeighbor(n)
	s.mu.Unlock()

	secs := func(d time.Duration) uint64 { return uint64(max(d.Round(time.Second)/time.Second, 1)) }
	hold := secs(s.global.HoldTime)
	peer := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, Description: "vpc " + n.VPC},
		Transport: &api.Transport{RemotePort: uint32(n.Port)},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           secs(s.global.ConnectRetry),
			HoldTime:               hold,
			KeepaliveInterval:      max(hold/3, 1),
			IdleHoldTimeAfterReset: secs(s.global.ConnectRetry),
		}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyV4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyV6, Enabled: true}},
		},
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
		s.mu.Lock()
		delete(s.neighbors, n.Address)
		s.mu.Unlock()
		return fmt.Errorf("bgp: VPC %q: add neighbor %v port %d asn %d: %w", n.VPC, n.Address, n.Port, n.ASN, err)
	}
	s.log.Info("bgp neighbor added", "vpc", n.VPC, "neighbor", n.Address, "port", n.Port, "asn", n.ASN)
	return nil
}

func (s *Speaker) removeNeighbor(ctx context.Context, n Neighbor) error {
	err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Address.String()})
	if err != nil {
		err = fmt.Errorf("bgp: VPC %q: delete neighbor %v: %w", n.VPC, n.Address, err)
	}
	s.mu.Lock()
	if nb := s.neighbors[n.Address]; nb != nil {
		if nb.up {
			s.setUpLocked(nb, false)
		}
		delete(s.neighbors, n.Address)
	}
	s.mu.Unlock()
	if e := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: nbSetName(n.VPC), List: []string{hostPrefix(n.Address)},
	}}); e != nil {
		err = errors.Join(err, fmt.Errorf("bgp: VPC %q: remove neighbor %v from export set: %w", n.VPC, n.Address, e))
	}
	s.log.Info("bgp neighbor removed", "vpc", n.VPC, "neighbor", n.Address)
	return err
}

// Sessions reports every configured neighbour, sorted by address. It does
// not call gobgp: its ListPeer counts each neighbour's adj-rib-in by walking
// it inside gobgp's main loop (about 0.1-0.5 s with a full table, during
// which no update is processed), and `gwctl get bgp` or a metrics scrape
// may ask often. The state comes from the watched peer events, the counts
// from the store, which sees every path gobgp's adj-rib-in holds.
func (s *Speaker) Sessions() []SessionInfo {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if !s.started {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.neighbors))
	for _, a := range sortedAddrs(s.neighbors) {
		n := s.neighbors[a]
		si := SessionInfo{Neighbor: n.cfg, State: "idle", Up: n.up, Since: n.since, Learned: n.count()}
		if n.state != api.PeerState_UNKNOWN && !s.stopped {
			si.State = strings.ToLower(n.state.String())
		}
		if n.up {
			si.Accepted = uint64(n.count())
			si.Received = si.Accepted + uint64(len(n.looped))
		}
		if vs := s.vpcs[n.cfg.VPC]; vs != nil && n.up {
			si.Advertised = uint64(len(vs.adv))
		}
		out = append(out, si)
	}
	return out
}
