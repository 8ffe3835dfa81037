package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// deltaTables are three VPCs (a with router IPs, b on a VLAN, an external
// e), a NAT table and a filter, for delta tests.
func deltaTables() *tablesv1.Tables {
	t := twoVPCs()
	t.Generation = 7
	t.Vpcs = append(t.Vpcs, &tablesv1.Vpc{Id: 2, Name: "e", External: true})
	t.NatTables = []*tablesv1.NatTable{{Segments: []*tablesv1.NatSegment{{From: "10.1.0.0/16", To: "172.16.0.0/16"}}}}
	t.Filters = []*tablesv1.Filter{{Rules: []*tablesv1.FilterRule{{Protocol: 6, DstPort: 80}}}}
	return t
}

// resolved is what a lookup finds, independent of group numbering.
type resolved struct {
	found   bool
	actions string
}

func (s *Snapshot) resolve(g uint32, ok bool) resolved {
	if !ok {
		return resolved{}
	}
	gr := s.Groups[g]
	var b strings.Builder
	for _, a := range s.Actions[gr.First : gr.First+gr.N] {
		peering := a.Peering
		a.Peering = 0
		fmt.Fprintf(&b, "%+v peering=%q;", a, s.Peerings[peering])
	}
	return resolved{true, b.String()}
}

// lookups returns what every address finds in each table of every VPC.
func (s *Snapshot) lookups(addrs []netip.Addr) []resolved {
	var out []resolved
	for _, v := range s.VPCs {
		out = append(out, resolved{found: v.HasSrcRoutes})
		for _, a := range addrs {
			out = append(out, s.resolve(v.Routes.Lookup(a)), s.resolve(v.SrcRoutes.Lookup(a)), s.resolve(v.Local.Lookup(a)))
		}
	}
	return out
}

// refTables applies deltas to complete tables the way a controlplane
// defines them, for Build to compare with.
type refTables struct{ t *tablesv1.Tables }

func (r refTables) apply(d *tablesv1.TableDelta) { r.applyWith(d, patch) }

// applyWith applies d's route changes to each route list with patch.
func (r refTables) applyWith(d *tablesv1.TableDelta, patch func(rs, upserts []*tablesv1.Route, removes []string) []*tablesv1.Route) {
	r.t.Generation = d.GetGeneration()
	for _, vd := range d.GetVpcs() {
		v := r.t.Vpcs[vd.GetVpcId()]
		v.Routes = patch(v.Routes, vd.GetUpsertRoutes(), vd.GetRemoveRoutes())
		v.LocalRoutes = patch(v.LocalRoutes, vd.GetUpsertLocalRoutes(), vd.GetRemoveLocalRoutes())
	}
}

func patch(rs, upserts []*tablesv1.Route, removes []string) []*tablesv1.Route {
	rs = slices.DeleteFunc(rs, func(r *tablesv1.Route) bool { return slices.Contains(removes, r.GetPrefix()) })
	for _, u := range upserts {
		i := slices.IndexFunc(rs, func(r *tablesv1.Route) bool {
			return r.GetPrefix() == u.GetPrefix() && r.GetMatchSource() == u.GetMatchSource()
		})
		if i >= 0 {
			rs[i] = u
		} else {
			rs = append(rs, u)
		}
	}
	return rs
}

// deltaGen makes random deltas over a small address space, so that
// prefixes cover each other, repeat and get removed.
type deltaGen struct {
	r    *rand.Rand
	seen []string
}

func (g *deltaGen) prefix() string {
	if len(g.seen) > 0 && g.r.IntN(3) == 0 {
		return g.seen[g.r.IntN(len(g.seen))]
	}
	var p netip.Prefix
	switch g.r.IntN(8) {
	case 0:
		p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, byte(g.r.IntN(4)), 15: byte(g.r.IntN(256))}), 16+g.r.IntN(113))
	case 1:
		p = netip.MustParsePrefix("10.1.0.1/32") // a router IP
	default:
		p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(g.r.IntN(4)), byte(g.r.IntN(4)), byte(g.r.IntN(256))}), 8+g.r.IntN(25))
	}
	s := p.Masked().String()
	g.seen = append(g.seen, s)
	return s
}

func (g *deltaGen) actions(local bool) []*tablesv1.Action {
	deliver := func() *tablesv1.Action {
		a := &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_DELIVER, TtlDecrement: 1}
		if g.r.IntN(2) == 0 {
			a.Via = fmt.Sprintf("192.0.2.%d", 1+g.r.IntN(6))
		}
		return a
	}
	if local {
		return []*tablesv1.Action{deliver()}
	}
	fwd := func() *tablesv1.Action {
		return &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: uint32(1 + g.r.IntN(2)), TtlDecrement: 2,
			Peering: fmt.Sprintf("p%d", g.r.IntN(3)), SrcNat: uint32(g.r.IntN(2)), IngressFilter: uint32(g.r.IntN(2))}
	}
	switch g.r.IntN(5) {
	case 0:
		return []*tablesv1.Action{deliver()}
	case 1:
		return []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DROP, Peering: "p9"}}
	case 2:
		if g.r.IntN(4) == 0 {
			return []*tablesv1.Action{fwd(), fwd()} // ECMP
		}
	}
	return []*tablesv1.Action{fwd()}
}

func (g *deltaGen) delta(base uint64, n int) *tablesv1.TableDelta {
	d := &tablesv1.TableDelta{BaseGeneration: base, Generation: base + 1}
	for v := range 3 {
		if g.r.IntN(3) == 0 {
			continue
		}
		vd := &tablesv1.VpcRouteDelta{VpcId: uint32(v)}
		for range g.r.IntN(n + 1) {
			switch g.r.IntN(6) {
			case 0:
				vd.RemoveRoutes = append(vd.RemoveRoutes, g.prefix())
			case 1:
				vd.RemoveLocalRoutes = append(vd.RemoveLocalRoutes, g.prefix())
			case 2, 3:
				vd.UpsertRoutes = append(vd.UpsertRoutes, &tablesv1.Route{Prefix: g.prefix(), Actions: g.actions(false), MatchSource: g.r.IntN(4) == 0})
			default:
				vd.UpsertLocalRoutes = append(vd.UpsertLocalRoutes, &tablesv1.Route{Prefix: g.prefix(), Actions: g.actions(true)})
			}
		}
		d.Vpcs = append(d.Vpcs, vd)
	}
	return d
}

// pack returns d with the upserts of each list from a random point on in
// a route block (applied after the plain routes).
func (g *deltaGen) pack(t testing.TB, d *tablesv1.TableDelta) *tablesv1.TableDelta {
	out := &tablesv1.TableDelta{BaseGeneration: d.BaseGeneration, Generation: d.Generation}
	split := func(rs []*tablesv1.Route) ([]*tablesv1.Route, *tablesv1.RouteBlock) {
		i := g.r.IntN(len(rs) + 1)
		b, err := routeblock.Pack(rs[i:])
		if err != nil {
			t.Fatal(err)
		}
		return rs[:i], b
	}
	for _, vd := range d.Vpcs {
		nv := &tablesv1.VpcRouteDelta{VpcId: vd.VpcId, RemoveRoutes: vd.RemoveRoutes, RemoveLocalRoutes: vd.RemoveLocalRoutes}
		nv.UpsertRoutes, nv.UpsertRouteBlock = split(vd.UpsertRoutes)
		nv.UpsertLocalRoutes, nv.UpsertLocalRouteBlock = split(vd.UpsertLocalRoutes)
		out.Vpcs = append(out.Vpcs, nv)
	}
	return out
}

func (g *deltaGen) addrs(n int) []netip.Addr {
	out := []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}
	for range n {
		if len(g.seen) > 0 && g.r.IntN(2) == 0 {
			p := netip.MustParsePrefix(g.seen[g.r.IntN(len(g.seen))])
			b := p.Addr().AsSlice()
			for i := p.Bits(); i < len(b)*8; i++ {
				b[i/8] |= byte(g.r.IntN(2)) << (7 - i%8)
			}
			a, _ := netip.AddrFromSlice(b)
			out = append(out, a)
			continue
		}
		out = append(out, netip.AddrFrom4([4]byte{10, byte(g.r.IntN(4)), byte(g.r.IntN(4)), byte(g.r.IntN(256))}))
	}
	return out
}

// TestApplyDeltaMatchesBuild applies random deltas one after the other and
// compares every lookup with a Build of the complete tables they make, and
// the snapshot before each delta with what it found before (workers may
// still be using it).
func TestApplyDeltaMatchesBuild(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			g := &deltaGen{r: rand.New(rand.NewPCG(seed, 1))}
			ref := refTables{deltaTables()}
			s, err := Build(proto.Clone(ref.t).(*tablesv1.Tables), Options{})
			if err != nil {
				t.Fatal(err)
			}
			rebuilds := 0
			defer func() {
				if rebuilds > 2 {
					t.Errorf("%d of 60 deltas needed complete tables", rebuilds)
				}
			}()
			for step := range 60 {
				n := 12
				if step%20 == 19 {
					n = 3 * bulkChanges // the bulk path of applyChanges
				}
				d := g.delta(s.Generation, n)
				addrs := g.addrs(200)
				before := s.lookups(addrs)
				sent := d
				if step%2 == 1 {
					sent = g.pack(t, d) // as the controlplane sends transfers
				}
				next, err := s.ApplyDelta(sent)
				if errors.Is(err, ErrRebuild) && strings.Contains(err.Error(), "action groups") {
					// What a dataplane does: complete tables.
					rebuilds++
					ref.apply(d)
					if s, err = Build(proto.Clone(ref.t).(*tablesv1.Tables), Options{}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if !slices.Equal(s.lookups(addrs), before) {
					t.Fatalf("step %d: the snapshot the delta was applied to changed", step)
				}
				ref.apply(d)
				want, err := Build(proto.Clone(ref.t).(*tablesv1.Tables), Options{})
				if err != nil {
					t.Fatal(err)
				}
				got, exp := next.lookups(addrs), want.lookups(addrs)
				for i := range exp {
					if got[i] != exp[i] {
						t.Fatalf("step %d: lookup %d (vpc %d, address %v): delta %+v, build %+v", step, i, i/(1+3*len(addrs)), addrs[(i%(1+3*len(addrs))+2)/3-1], got[i], exp[i])
					}
				}
				if next.Generation != s.Generation+1 {
					t.Fatalf("generation %d after %d", next.Generation, s.Generation)
				}
				s = next
			}
		})
	}
}

func TestApplyDeltaKeepsRouterIPsLocal(t *testing.T) {
	s, err := Build(deltaTables(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fwd := []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 1}}
	for _, d := range []*tablesv1.TableDelta{
		{Vpcs: []*tablesv1.VpcRouteDelta{{UpsertRoutes: []*tablesv1.Route{{Prefix: "10.1.0.1/32", Actions: fwd}}}}},
		{Vpcs: []*tablesv1.VpcRouteDelta{{RemoveRoutes: []string{"10.1.0.1/32", "fd00::1/128"}}}},
	} {
		d.BaseGeneration, d.Generation = s.Generation, s.Generation+1
		if s, err = s.ApplyDelta(d); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"10.1.0.1", "fd00::1"} {
			g, ok := s.VPCs[0].Routes.Lookup(netip.MustParseAddr(a))
			if !ok || s.Actions[s.Groups[g].First].Kind != ActLocal {
				t.Errorf("after %v: %s is not local", d, a)
			}
		}
	}
}

// TestApplyDeltaRefusesAndKeepsTheSnapshot checks each refusal, and that the
// snapshot refused a delta still takes the next valid one.
func TestApplyDeltaRefusesAndKeepsTheSnapshot(t *testing.T) {
	s, err := Build(deltaTables(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	route := func(p string, a ...*tablesv1.Action) *tablesv1.Route { return &tablesv1.Route{Prefix: p, Actions: a} }
	deliver := &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_DELIVER}
	valid := &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 2, UpsertLocalRoutes: []*tablesv1.Route{route("203.0.113.0/24", deliver)}}}}
	for _, c := range []struct {
		name, want string
		rebuild    bool
		d          *tablesv1.TableDelta
	}{
		{"over another generation", "over generation 6", false, &tablesv1.TableDelta{BaseGeneration: 6, Generation: 8}},
		{"an unknown VPC", "vpc id 3", false, &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 3}}}},
		{"a bad prefix", "not a prefix", false, &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{
			{VpcId: 0, UpsertRoutes: []*tablesv1.Route{route("10.5.0.0/16", deliver)}}, {VpcId: 1, RemoveRoutes: []string{"10.1/16"}}}}},
		{"a forward to a missing VPC", "no such vpc", false, &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{
			{VpcId: 0, UpsertRoutes: []*tablesv1.Route{route("10.5.0.0/16", &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 9, Peering: "new"})}}}}},
		{"a forward in local routes", "forward action in local_routes", false, &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{
			{VpcId: 2, UpsertLocalRoutes: []*tablesv1.Route{route("10.5.0.0/16", &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 1})}}}}},
	} {
		if _, err := s.ApplyDelta(c.d); err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrRebuild) != c.rebuild {
			t.Errorf("%s: error %v, want one containing %q (rebuild %v)", c.name, err, c.want, c.rebuild)
		}
	}
	if _, ok := s.VPCs[0].Routes.Lookup(netip.MustParseAddr("10.5.0.1")); ok || len(s.Peerings) != 1 {
		t.Errorf("a refused delta changed the snapshot: 10.5.0.1 found %v, peerings %q", ok, s.Peerings)
	}
	next, err := s.ApplyDelta(valid)
	if err != nil {
		t.Fatalf("the valid delta after the refused ones: %v", err)
	}
	if _, ok := next.VPCs[2].Local.Lookup(netip.MustParseAddr("203.0.113.9")); !ok {
		t.Error("the valid delta's route is missing")
	}
	if _, ok := next.VPCs[0].Routes.Lookup(netip.MustParseAddr("10.5.0.1")); ok {
		t.Error("a refused delta's route is in the next snapshot")
	}
	if _, err := s.ApplyDelta(valid); !errors.Is(err, ErrRebuild) {
		t.Errorf("a delta to a snapshot that is no longer the newest: %v, want ErrRebuild", err)
	}
	if _, err := (&Snapshot{Generation: 7}).ApplyDelta(valid); !errors.Is(err, ErrRebuild) {
		t.Errorf("a delta to a snapshot Build did not make: %v, want ErrRebuild", err)
	}
}

// TestApplyDeltaAsksForTablesWhenGroupsPileUp: groups no route uses stay
// until complete tables come, so a delta that would pile up too many is
// refused with ErrRebuild.
func TestApplyDeltaAsksForTablesWhenGroupsPileUp(t *testing.T) {
	s, err := Build(deltaTables(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 2}}}
	for i := range 2*len(s.Groups) + groupSlack + 1 {
		d.Vpcs[0].UpsertLocalRoutes = append(d.Vpcs[0].UpsertLocalRoutes, &tablesv1.Route{Prefix: "203.0.113.0/24",
			Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}).String()}}})
	}
	if _, err := s.ApplyDelta(d); !errors.Is(err, ErrRebuild) {
		t.Fatalf("error %v, want ErrRebuild", err)
	}
	d.Vpcs[0].UpsertLocalRoutes = d.Vpcs[0].UpsertLocalRoutes[:10]
	if _, err := s.ApplyDelta(d); err != nil {
		t.Fatal(err)
	}
}

// TestApplyDeltaSharesGroups: routes of later deltas with the same actions
// share the group the first one added, as in Build.
func TestApplyDeltaSharesGroups(t *testing.T) {
	s, err := Build(deltaTables(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var groups []int
	for i := range 3 {
		d := &tablesv1.TableDelta{BaseGeneration: s.Generation, Generation: s.Generation + 1, Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 2,
			UpsertLocalRoutes: []*tablesv1.Route{{Prefix: fmt.Sprintf("203.0.%d.0/24", i),
				Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: "192.0.2.77"}}}}}}}
		if s, err = s.ApplyDelta(d); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, len(s.Groups))
	}
	if groups[0] != groups[2] {
		t.Errorf("groups after each delta: %v, want one new group in all", groups)
	}
}

// FuzzApplyDelta feeds arbitrary deltas (protobuf wire bytes, as a
// controlplane sends them) to a snapshot: no panic; a refused delta leaves
// the snapshot as it was and able to take the next one; an applied one
// gives a snapshot whose lookups work.
//
//	go test -run '^$' -fuzz FuzzApplyDelta ./dataplane/fib/
func FuzzApplyDelta(f *testing.F) {
	g := &deltaGen{r: rand.New(rand.NewPCG(1, 2))}
	for i := range 12 {
		d := g.delta(7, 6)
		if i >= 8 {
			d = g.pack(f, d) // routes in blocks too
		}
		b, err := proto.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	addrs := g.addrs(64)
	f.Fuzz(func(t *testing.T, b []byte) {
		var d tablesv1.TableDelta
		if proto.Unmarshal(b, &d) != nil {
			return
		}
		d.BaseGeneration = 7
		s, err := Build(deltaTables(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		before := s.lookups(addrs)
		next, err := s.ApplyDelta(&d)
		if err != nil {
			if !slices.Equal(s.lookups(addrs), before) {
				t.Fatalf("refused (%v), but the snapshot changed", err)
			}
			ok := &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8}
			if _, err := s.ApplyDelta(ok); err != nil && !strings.Contains(err.Error(), "action groups") {
				t.Fatalf("after a refused delta: %v", err)
			}
			return
		}
		next.lookups(addrs)
		if next.Generation != d.GetGeneration() {
			t.Fatalf("generation %d, want %d", next.Generation, d.GetGeneration())
		}
	})
}

// TestApplyDeltaWhileWorkersRead runs lookups on whatever snapshot the
// holder has while deltas are applied and stored, as the dataplane's
// workers and agent do; go test -race checks the copy-on-write.
func TestApplyDeltaWhileWorkersRead(t *testing.T) {
	s, err := Build(deltaTables(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var h Holder
	h.Store(s)
	g := &deltaGen{r: rand.New(rand.NewPCG(5, 5))}
	addrs := g.addrs(64)
	stop := make(chan struct{})
	done := make(chan int)
	for range 2 {
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					done <- n
					return
				default:
				}
				h.Load().lookups(addrs)
				n++
			}
		}()
	}
	for range 200 {
		next, err := s.ApplyDelta(g.delta(s.Generation, 8))
		if errors.Is(err, ErrRebuild) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		h.Store(next)
		s = next
	}
	close(stop)
	if n := <-done + <-done; n == 0 {
		t.Error("the readers never ran")
	}
}

// TestApplyDeltaNamingAVPCTwice: a delta whose VPC entries repeat one (no
// controlplane sends it, a malformed one may) has its parts applied in
// order, bulk loads included, as a Build of the patched tables says.
func TestApplyDeltaNamingAVPCTwice(t *testing.T) {
	ref := refTables{deltaTables()}
	s, err := Build(proto.Clone(ref.t).(*tablesv1.Tables), Options{})
	if err != nil {
		t.Fatal(err)
	}
	via := func(v string) []*tablesv1.Action {
		return []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: v}}
	}
	first, second := &tablesv1.VpcRouteDelta{VpcId: 2}, &tablesv1.VpcRouteDelta{VpcId: 2}
	var addrs []netip.Addr
	for i := range 2 * bulkChanges {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		addrs = append(addrs, p.Addr().Next())
		if i < bulkChanges+bulkChanges/2 {
			first.UpsertLocalRoutes = append(first.UpsertLocalRoutes, &tablesv1.Route{Prefix: p.String(), Actions: via("192.0.2.1")})
		}
		switch {
		case i < 100:
			second.RemoveLocalRoutes = append(second.RemoveLocalRoutes, p.String())
		case i >= bulkChanges/2:
			second.UpsertLocalRoutes = append(second.UpsertLocalRoutes, &tablesv1.Route{Prefix: p.String(), Actions: via("192.0.2.2")})
		}
	}
	d := &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{first, second}}
	got, err := s.ApplyDelta(d)
	if err != nil {
		t.Fatal(err)
	}
	ref.apply(d)
	want, err := Build(proto.Clone(ref.t).(*tablesv1.Tables), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.lookups(addrs), want.lookups(addrs)) {
		t.Error("the delta's two entries for one VPC were not applied in order")
	}
}

// TestBuildReadsRouteBlocks builds random tables with the tail of every
// route list in a route block (as the controlplane sends full tables) and
// compares every lookup with a Build of the plain lists: the block's routes
// come after the plain ones, match_source routes included, and the router
// IPs stay local.
func TestBuildReadsRouteBlocks(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			g := &deltaGen{r: rand.New(rand.NewPCG(seed, 2))}
			ref := refTables{deltaTables()}
			for range 20 {
				ref.apply(g.delta(ref.t.Generation, 40))
			}
			packed := proto.Clone(ref.t).(*tablesv1.Tables)
			for _, v := range packed.Vpcs {
				i, j := g.r.IntN(len(v.Routes)+1), g.r.IntN(len(v.LocalRoutes)+1)
				var err error
				if v.RouteBlock, err = routeblock.Pack(v.Routes[i:]); err != nil {
					t.Fatal(err)
				}
				if v.LocalRouteBlock, err = routeblock.Pack(v.LocalRoutes[j:]); err != nil {
					t.Fatal(err)
				}
				v.Routes, v.LocalRoutes = v.Routes[:i], v.LocalRoutes[:j]
			}
			want, err := Build(proto.Clone(ref.t).(*tablesv1.Tables), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Build(packed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			addrs := g.addrs(500)
			if !slices.Equal(got.lookups(addrs), want.lookups(addrs)) {
				t.Fatal("lookups differ between the plain and the block form")
			}
			// And it takes deltas as a Build of plain lists does.
			d := g.delta(ref.t.Generation, 40)
			if _, err := got.ApplyDelta(d); err != nil {
				t.Fatal(err)
			}
		})
	}
}
