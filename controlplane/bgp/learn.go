package bgp

import (
	"context"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
)

// onWatch receives gobgp's event stream: session state changes and the
// adj-rib-in updates of every neighbour, as received (pre-policy). One
// watcher carries both, in the order gobgp's main loop produced them, so a
// session's updates are always seen between its up and down events.
//
// gobgp does not report adj-rib-in drops when a session ends; the store
// knows what the neighbour taught and withdraws it.
func (s *Speaker) onWatch(r *api.WatchEventResponse) {
	switch ev := r.Event.(type) {
	case *api.WatchEventResponse_Peer:
		s.onPeer(ev.Peer)
	case *api.WatchEventResponse_Table:
		s.onPaths(ev.Table.GetPaths())
	}
}

func (s *Speaker) onPeer(ev *api.WatchEventResponse_PeerEvent) {
	if ev.GetType() != api.WatchEventResponse_PeerEvent_STATE && ev.GetType() != api.WatchEventResponse_PeerEvent_INIT {
		return
	}
	st := ev.GetPeer().GetState()
	addr, err := netip.ParseAddr(st.GetNeighborAddress())
	if err != nil {
		return
	}
	established := st.GetSessionState() == api.PeerState_ESTABLISHED
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.neighbors[addr.Unmap()]
	if n == nil {
		return
	}
	// Sessions reports this state rather than asking gobgp (ListPeer
	// walks every neighbour's adj-rib-in inside gobgp's main loop).
	n.state = st.GetSessionState()
	if n.up == established {
		return
	}
	s.setUpLocked(n, established)
}

// setUpLocked records a session change; going down withdraws everything the
// neighbour taught first, so the SessionDown event follows its withdrawals.
func (s *Speaker) setUpLocked(n *neighbor, up bool) {
	n.up = up
	n.since = time.Now()
	n.eor, n.eorWant, n.tableDone = 0, eorAll, false
	kind, word := SessionUp, "up"
	if !up {
		word = "down"
		kind = SessionDown
		if w := n.forgetAll(); len(w) > 0 {
			s.pushUpdatesLocked(n.cfg.VPC, w)
		}
	}
	s.log.Info("bgp session "+word,
		"vpc", n.cfg.VPC, "neighbor", n.name, "asn", n.cfg.ASN)
	s.pending = append(s.pending, Event{Kind: kind, VPC: n.cfg.VPC, Neighbor: n.name})
	s.signal()
	if up {
		go s.learnFamilies(n, n.cfg.Address, n.since)
	}
}

// learnFamilies asks gobgp which unicast families the session of n that
// came up at since negotiated, so that a neighbour speaking one family
// only ends its initial table with that family's End-of-RIB (gobgp's peer
// events carry no capabilities). Until the answer, or if there is none,
// both families' markers are awaited (bgpsync's quiet window ends a
// transfer without them).
func (s *Speaker) learnFamilies(n *neighbor, addr netip.Addr, since time.Time) {
	s.opMu.Lock()
	srv := s.srv
	s.opMu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want, found := uint8(0), false
	// At session up the adj-rib-in ListPeer counts is nearly empty.
	err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
		want, found = negotiatedUnicast(p), true
	})
	if err != nil || !found || want == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !n.up || !n.since.Equal(since) {
		return // another session by now
	}
	n.eorWant = want
	s.tableDoneLocked(n)
}

// negotiatedUnicast returns the unicast End-of-RIB families of a session
// with p: those of its multiprotocol capabilities (the speaker offers both),
// or IPv4 alone when it sent none (RFC 4760).
func negotiatedUnicast(p *api.Peer) uint8 {
	var fams uint8
	mp := false
	for _, c := range p.GetState().GetRemoteCap() {
		var m api.MultiProtocolCapability
		if c.UnmarshalTo(&m) != nil {
			continue
		}
		mp = true
		if m.GetFamily().GetSafi() != api.Family_SAFI_UNICAST {
			continue
		}
		switch m.GetFamily().GetAfi() {
		case api.Family_AFI_IP:
			fams |= eorV4
		case api.Family_AFI_IP6:
			fams |= eorV6
		}
	}
	if !mp {
		return eorV4
	}
	return fams
}

// pathParser turns gobgp API paths back into what the store needs. It
// runs on the single watch goroutine only.
type pathParser struct {
	asn   uint32
	lastN string
	lastA netip.Addr
}

type parsedPath struct {
	neighbor netip.Addr
	prefix   netip.Prefix
	withdraw bool
	looped   bool // announced with our ASN in its AS path: treated as a withdrawal
	val      val
}

const typePrefix = "type.googleapis.com/apipb."

func typeIs(a *anypb.Any, name string) bool {
	u := a.GetTypeUrl()
	return len(u) == len(typePrefix)+len(name) && strings.HasSuffix(u, name)
}

// parse reports false for what is not a unicast route (end-of-RIB markers,
// other NLRI types). The attributes are decoded from their wire form
// (wire.go): this runs once per learned prefix.
func (pp *pathParser) parse(p *api.Path, out *parsedPath) bool {
	nlri := p.GetNlri()
	if nlri == nil || !typeIs(nlri, "IPAddressPrefix") {
		return false
	}
	pfx, ok := wirePrefix(nlri.GetValue())
	if !ok {
		return false
	}
	if p.GetNeighborIp() != pp.lastN {
		nb, err := netip.ParseAddr(p.GetNeighborIp())
		if err != nil {
			return false
		}
		pp.lastN, pp.lastA = p.GetNeighborIp(), nb.Unmap()
	}
	*out = parsedPath{neighbor: pp.lastA, prefix: pfx, withdraw: p.GetIsWithdraw()}
	if out.withdraw {
		return true
	}
	var nh netip.Addr
	var med uint32
	asLen := 0
	for _, attr := range p.GetPattrs() {
		switch {
		case typeIs(attr, "NextHopAttribute"):
			nh = wireNextHop(attr.GetValue(), 1)
		case typeIs(attr, "MpReachNLRIAttribute"):
			if a := wireNextHop(attr.GetValue(), 2); a.IsValid() {
				nh = a
			}
		case typeIs(attr, "MultiExitDiscAttribute"):
			med = wireMED(attr.GetValue())
		case typeIs(attr, "AsPathAttribute"):
			var loop bool
			asLen, loop = wireASPath(attr.GetValue(), pp.asn)
			// gobgp keeps looped paths in adj-rib-in but never uses
			// them; neither do we.
			if loop {
				out.withdraw, out.looped = true, true
			}
		}
	}
	out.val = makeVal(nh, med, asLen)
	return true
}

func (s *Speaker) onPaths(paths []*api.Path) {
	if len(paths) == 0 {
		return
	}
	if len(paths) == 1 && paths[0].GetNlri() == nil {
		s.onEndOfRIB(paths[0])
		return
	}
	pp := &s.parser
	pp.asn = s.global.ASN
	parsed := make([]parsedPath, 0, len(paths))
	var one parsedPath
	for _, p := range paths {
		if pp.parse(p, &one) {
			parsed = append(parsed, one)
		}
	}
	if len(parsed) == 0 {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		n   *neighbor
		cur netip.Addr
		ups []RouteUpdate
	)
	flush := func() {
		if len(ups) > 0 {
			s.pushUpdatesLocked(n.cfg.VPC, ups)
			ups = nil // the queue may keep the slice
		}
	}
	for i := range parsed {
		p := &parsed[i]
		if n == nil || p.neighbor != cur {
			flush()
			cur, n = p.neighbor, s.neighbors[p.neighbor]
		}
		// Updates of a neighbour that was removed or whose session is down
		// are leftovers of an old session: drop them.
		if n == nil || !n.up {
			continue
		}
		if ups == nil {
			// Room for the rest of the paths: one allocation per batch.
			ups = make([]RouteUpdate, 0, len(parsed)-i)
		}
		n.setLooped(p.prefix, p.looped)
		if p.withdraw {
			if v, ok := n.forget(p.prefix); ok {
				ups = append(ups, RouteUpdate{Route: n.route(p.prefix, v), Withdraw: true})
			}
			continue
		}
		if h, changed := n.learn(p.prefix, p.val); changed {
			ups = append(ups, RouteUpdate{Route: n.route(p.prefix, h)})
		}
	}
	flush()
	s.signal()
	for _, n := range s.neighbors {
		if n.shouldCompact() {
			s.compactLaterLocked()
			break
		}
	}
}

// End-of-RIB families seen on a session (neighbor.eor).
const (
	eorV4 = 1 << iota
	eorV6
	eorAll = eorV4 | eorV6
)

// onEndOfRIB records a neighbour's End-of-RIB marker (gobgp sends one as
// a path without NLRI) and, once every negotiated unicast family has sent
// its own, tells the subscribers that its initial table is complete.
func (s *Speaker) onEndOfRIB(p *api.Path) {
	f := p.GetFamily()
	if f.GetSafi() != api.Family_SAFI_UNICAST {
		return
	}
	addr, err := netip.ParseAddr(p.GetNeighborIp())
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.neighbors[addr.Unmap()]
	if n == nil || !n.up {
		return
	}
	switch f.GetAfi() {
	case api.Family_AFI_IP:
		n.eor |= eorV4
	case api.Family_AFI_IP6:
		n.eor |= eorV6
	}
	s.tableDoneLocked(n)
}

// tableDoneLocked sends InitialTableDone for n's session once the
// End-of-RIB of every family it waits for came.
func (s *Speaker) tableDoneLocked(n *neighbor) {
	if n.tableDone || n.eor&n.eorWant != n.eorWant {
		return
	}
	n.tableDone = true
	s.log.Debug("bgp initial table received", "vpc", n.cfg.VPC, "neighbor", n.name, "routes", n.count())
	s.pending = append(s.pending, Event{Kind: InitialTableDone, VPC: n.cfg.VPC, Neighbor: n.name})
	s.signal()
}

// compactMin is the number of changes of one neighbour from which they
// are folded into the store's compact base once its stream pauses for
// compactIdle (prefixMap). Below it the changes cost little in the map;
// folding at every pause would copy a full table for each handful of
// updates.
const (
	compactMin  = 4096
	compactIdle = time.Second
)

// compactLaterLocked (re)arms the timer that compacts the store when no
// route has arrived for compactIdle: a table transfer fills the maps at
// full speed, then settles into the base.
func (s *Speaker) compactLaterLocked() {
	if s.compactT == nil {
		s.compactT = time.AfterFunc(compactIdle, s.compact)
		return
	}
	s.compactT.Reset(compactIdle)
}

// compact folds every neighbour's pending changes into its base when they
// are many, against compactMin and the base's size.
func (s *Speaker) compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.neighbors {
		if n.shouldCompact() {
			n.compact()
		}
	}
}
