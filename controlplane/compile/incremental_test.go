package compile

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// incrementalDoc is the fourth use case (vpc-1 reaching e1 at metric 0 and
// e2 at metric 10, each with its own `not`s), the second (transit between
// e1 and e2), and vpc-2 reaching e1 through stateless NAT, so updates hit
// ECMP ties, failover, `not` boundaries and translated regions.
var incrementalDoc = gateway + `---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: vpc-2}
spec:
  subnets: [10.2.0.0/24]
  vlan: {port: e1, id: 20}
` + peering("a", vpc1Side, "  e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 192.168.0.0/16}, {not: 1.2.3.0/30}]\n") +
	peering("b", vpc1Side, "  e2:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 192.168.0.0/16}, {not: 3.2.1.0/30}]\n    metric: 10\n") +
	peering("c", "  e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 1.2.3.0/30}]\n",
		"  e2:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 3.2.1.0/30}]\n") +
	peering("d", "  vpc-2:\n    ips: [{cidr: 10.2.0.0/24}]\n",
		"  e1:\n    ips: [{cidr: 1.2.0.0/16}, {not: 1.2.3.0/24}]\n    as: [100.64.0.0/16]\n")

// learnedKey is one path: BGP holds one per prefix and neighbour.
type learnedKey struct {
	vpc      string
	prefix   netip.Prefix
	neighbor string
}

// randomUpdates draws routes in a few small spaces (around the `not`s,
// inside the NATed range) so that they cover, split and tie each other.
type randomUpdates struct {
	r    *rand.Rand
	rib  map[learnedKey]LearnedRoute
	nbrs map[string][]string
}

func (u *randomUpdates) route(vpc string) LearnedRoute {
	nbr := u.nbrs[vpc][u.r.Intn(len(u.nbrs[vpc]))]
	if u.r.Intn(8) == 0 { // IPv6, outside every peering's ips
		a := netip.MustParseAddr("2001:db8::").As16()
		a[5], a[7] = byte(u.r.Intn(4)), byte(u.r.Intn(4))
		p, _ := netip.AddrFrom16(a).Prefix([]int{32, 40, 48, 56, 64}[u.r.Intn(5)])
		return LearnedRoute{Prefix: p, NextHop: netip.MustParseAddr("2001:db8:ffff::1"), MED: []uint32{0, 5, 10}[u.r.Intn(3)], Neighbor: nbr, ASPathLen: 1}
	}
	bases := []netip.Addr{
		netip.MustParseAddr("1.2.0.0"), netip.MustParseAddr("3.2.0.0"), netip.MustParseAddr("10.0.0.0"),
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("192.168.0.0"),
	}
	a := bases[u.r.Intn(len(bases))].As4()
	a[2], a[3] = byte(u.r.Intn(8)), byte(u.r.Intn(8))
	bits := []int{0, 1, 8, 14, 16, 20, 22, 24, 24, 29, 30, 31, 32}[u.r.Intn(13)]
	p, _ := netip.AddrFrom4(a).Prefix(bits)
	nh := netip.MustParseAddr(nbr)
	if u.r.Intn(3) == 0 {
		nh = netip.MustParseAddr("192.0.2.77") // outside the VPC: via the neighbour
	}
	return LearnedRoute{Prefix: p, NextHop: nh, MED: []uint32{0, 5, 10}[u.r.Intn(3)], Neighbor: nbr, ASPathLen: 1 + u.r.Intn(2)}
}

func (u *randomUpdates) learned() Learned {
	keys := make([]learnedKey, 0, len(u.rib))
	for k := range u.rib {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	l := Learned{}
	for _, k := range keys {
		l[k.vpc] = append(l[k.vpc], u.rib[k])
	}
	return l
}

// TestIncrementalUpdatesGiveTheTablesOfAFullCompile applies random BGP
// updates (announcements, implicit and explicit withdrawals, ECMP ties
// between e1 and e2, metric failover, routes straddling `not`s and NAT
// segments) through UpdateLearned and ApplyDelta and checks after every
// update that the tables equal a full Compile of the same learned set.
func TestIncrementalUpdatesGiveTheTablesOfAFullCompile(t *testing.T) {
	objs, err := manifest.Parse("test.yaml", []byte(incrementalDoc))
	if err != nil {
		t.Fatal(err)
	}
	cfg := manifest.NewConfig(objs)
	for seed := range int64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			u := &randomUpdates{r: rand.New(rand.NewSource(seed)), rib: map[learnedKey]LearnedRoute{},
				nbrs: map[string][]string{"e1": {"203.0.113.1", "203.0.113.3"}, "e2": {"198.51.100.1"}}}
			for range 30 {
				vpc := []string{"e1", "e2"}[u.r.Intn(2)]
				r := u.route(vpc)
				u.rib[learnedKey{vpc, r.Prefix, r.Neighbor}] = r
			}
			comp, tables, _, err := NewCompiler(cfg, u.learned())
			if err != nil {
				t.Fatal(err)
			}
			// A second Compiler takes the same updates through
			// UpdateLearnedOver, reading the routes before each update
			// from its tables.
			over, overTables, _, err := NewCompiler(cfg, u.learned())
			if err != nil {
				t.Fatal(err)
			}
			over.parallelMin = 0 // its tables resolved concurrently, as with a full table
			for step := range 300 {
				vpc := []string{"e1", "e2"}[u.r.Intn(2)]
				var add, withdraw []LearnedRoute
				n := 1 + u.r.Intn(3)
				if u.r.Intn(10) == 0 {
					n = 20 + u.r.Intn(30) // a batch: ApplyDelta rebuilds the lists it changes
				}
				for range n {
					r := u.route(vpc)
					if u.r.Intn(5) < 2 {
						// Withdraw something held when there is one.
						for k, held := range u.rib {
							if k.vpc == vpc && u.r.Intn(4) == 0 {
								r = held
								break
							}
						}
						withdraw = append(withdraw, LearnedRoute{Prefix: r.Prefix, Neighbor: r.Neighbor})
						delete(u.rib, learnedKey{vpc, r.Prefix, r.Neighbor})
						continue
					}
					add = append(add, r)
				}
				// An update withdraws before it announces, as UpdateLearned does.
				for _, r := range add {
					u.rib[learnedKey{vpc, r.Prefix, r.Neighbor}] = r
				}
				d, err := comp.UpdateLearned(vpc, add, withdraw)
				if err != nil {
					t.Fatal(err)
				}
				if err := ApplyDelta(tables, d); err != nil {
					t.Fatal(err)
				}
				dOver, err := over.UpdateLearnedOver(overTables, vpc, add, withdraw)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(dOver, d) {
					t.Fatalf("step %d: UpdateLearnedOver's delta\n%s\ndiffers from UpdateLearned's\n%s", step, renderDelta(tables, dOver), renderDelta(tables, d))
				}
				if err := ApplyDelta(overTables, dOver); err != nil {
					t.Fatal(err)
				}
				if comp.LearnedCount() != len(u.rib) || over.LearnedCount() != len(u.rib) {
					t.Fatalf("step %d: LearnedCount %d and %d, want %d", step, comp.LearnedCount(), over.LearnedCount(), len(u.rib))
				}
				want, _, err := Compile(cfg, u.learned())
				if err != nil {
					t.Fatal(err)
				}
				if step%50 == 49 {
					// The Compiler's own view gives the same tables.
					again, _, _, err := NewCompiler(cfg, comp.Learned())
					if err != nil {
						t.Fatal(err)
					}
					if _, tt, _, _ := NewCompiler(cfg, again.Learned()); !proto.Equal(tt, want) {
						t.Fatalf("step %d: tables of Learned() differ from a full compile", step)
					}
				}
				if !proto.Equal(tables, want) {
					for _, v := range want.Vpcs {
						for _, local := range []bool{true, false} {
							if g, w := renderRoutes(tables, v.Name, local), renderRoutes(want, v.Name, local); g != w {
								t.Errorf("step %d: %s local=%v after add %v withdraw %v:\ngot:\n%s\nwant:\n%s", step, v.Name, local, add, withdraw, g, w)
							}
						}
					}
					t.Fatalf("step %d: tables differ from a full compile", step)
				}
			}
		})
	}
}

// TestApplyDeltaRebuildsLikeItInserts checks that a list with more than
// InPlaceMax changes, rebuilt in one pass, ends as applying the changes
// one by one does (removals first, the last upsert of a prefix winning,
// match_source routes kept at the end), and that the old list is left
// as it was.
func TestApplyDeltaRebuildsLikeItInserts(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	route := func(p string, metric uint32) *tablesv1.Route { return &tablesv1.Route{Prefix: p, Metric: metric} }
	prefix := func() string {
		a := netip.AddrFrom4([4]byte{10, byte(r.Intn(4)), byte(r.Intn(4)), 0})
		if r.Intn(5) == 0 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.Intn(4))})
		}
		p, _ := a.Prefix([]int{8, 16, 20, 24}[r.Intn(4)])
		return p.String()
	}
	for _, tt := range []struct {
		name             string
		routes, upserts  int
		removes, srcOnes int
	}{
		{"empty list", 0, 30, 5, 0},
		{"inserts and removals", 40, 20, 20, 2},
		{"removals only", 60, 0, 40, 1},
		{"upserts only", 20, 50, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set := map[string]bool{}
			for range tt.routes {
				set[prefix()] = true
			}
			var rs []*tablesv1.Route
			for p := range set {
				rs = append(rs, route(p, 1))
			}
			slices.SortFunc(rs, func(a, b *tablesv1.Route) int {
				return validate.ComparePrefix(netip.MustParsePrefix(a.Prefix), netip.MustParsePrefix(b.Prefix))
			})
			for i := range tt.srcOnes {
				rs = append(rs, &tablesv1.Route{Prefix: fmt.Sprintf("10.%d.0.0/16", i), MatchSource: true})
			}
			var ups []*tablesv1.Route
			var rms []string
			for i := range tt.upserts {
				ups = append(ups, route(prefix(), uint32(i+2)))
			}
			for range tt.removes {
				rms = append(rms, prefix())
			}
			old := slices.Clone(rs)
			want := slices.Clone(rs)
			for _, p := range rms {
				var err error
				if want, err = applyRoutes(want, nil, []string{p}); err != nil {
					t.Fatal(err)
				}
			}
			for _, u := range ups {
				var err error
				if want, err = applyRoutes(want, []*tablesv1.Route{u}, nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := applyRoutes(rs, ups, rms)
			if err != nil {
				t.Fatal(err)
			}
			render := func(rs []*tablesv1.Route) string {
				var b strings.Builder
				for _, r := range rs {
					fmt.Fprintf(&b, "%s m%d src=%v\n", r.Prefix, r.Metric, r.MatchSource)
				}
				return b.String()
			}
			if g, w := render(got), render(want); g != w {
				t.Errorf("rebuilt:\n%s\none by one:\n%s", g, w)
			}
			if !slices.Equal(rs, old) {
				t.Error("the rebuild changed the old list")
			}
		})
	}
}

func TestUpdateLearnedRefusesAVPCThatIsNotExternal(t *testing.T) {
	objs, err := manifest.Parse("test.yaml", []byte(incrementalDoc))
	if err != nil {
		t.Fatal(err)
	}
	comp, _, _, err := NewCompiler(manifest.NewConfig(objs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comp.UpdateLearned("vpc-1", nil, nil); err == nil {
		t.Error("UpdateLearned(vpc-1) succeeded; vpc-1 is not external")
	}
}

// renderDelta lists a delta one line per change: VPC, table, +/- prefix.
func renderDelta(tables *tablesv1.Tables, d *tablesv1.TableDelta) string {
	var b strings.Builder
	for _, v := range d.Vpcs {
		name := tables.Vpcs[v.VpcId].Name
		for _, r := range v.UpsertLocalRoutes {
			fmt.Fprintf(&b, "%s local +%s %s\n", name, r.Prefix, r.Source)
		}
		for _, p := range v.RemoveLocalRoutes {
			fmt.Fprintf(&b, "%s local -%s\n", name, p)
		}
		for _, r := range v.UpsertRoutes {
			fmt.Fprintf(&b, "%s routes +%s %s m%d\n", name, r.Prefix, r.Source, r.Metric)
		}
		for _, p := range v.RemoveRoutes {
			fmt.Fprintf(&b, "%s routes -%s\n", name, p)
		}
	}
	return b.String()
}

// TestAnUpdateChangesOnlyTheRoutesItAffects follows vpc-1 failing over
// between e1 (metric 0) and e2 (metric 10) for one prefix among others.
func TestAnUpdateChangesOnlyTheRoutesItAffects(t *testing.T) {
	e1 := "  e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}]\n"
	e2 := "  e2:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}]\n    metric: 10\n"
	objs, err := manifest.Parse("test.yaml", []byte(gateway+peering("a", vpc1Side, e1)+peering("b", vpc1Side, e2)))
	if err != nil {
		t.Fatal(err)
	}
	learned := Learned{
		"e1": {lr("9.9.9.0/24", "203.0.113.1", "203.0.113.1", 0, 1)},
		"e2": {lr("8.8.8.0/24", "198.51.100.1", "198.51.100.1", 0, 1), lr("9.9.9.0/24", "198.51.100.1", "198.51.100.1", 0, 1)},
	}
	comp, tables, _, err := NewCompiler(manifest.NewConfig(objs), learned)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name          string
		vpc           string
		add, withdraw []LearnedRoute
		want          string
	}{
		{
			name: "e1 announcing 8.8.8.0/24 takes vpc-1's route from e2",
			vpc:  "e1", add: []LearnedRoute{lr("8.8.8.0/24", "203.0.113.1", "203.0.113.1", 0, 1)},
			want: "e1 local +8.8.8.0/24 bgp:203.0.113.1\nvpc-1 routes +8.8.8.0/24 peering:a m0\n",
		},
		{
			name: "e1 raising its MED to 10 ties with e2 at metric 10: ECMP",
			vpc:  "e1", add: []LearnedRoute{lr("8.8.8.0/24", "203.0.113.1", "203.0.113.1", 10, 1)},
			want: "e1 local +8.8.8.0/24 bgp:203.0.113.1\nvpc-1 routes +8.8.8.0/24 peering:a,peering:b m10\n",
		},
		{
			name: "e1 withdrawing fails vpc-1 over to e2",
			vpc:  "e1", withdraw: []LearnedRoute{{Prefix: netip.MustParsePrefix("8.8.8.0/24"), Neighbor: "203.0.113.1"}},
			want: "e1 local -8.8.8.0/24\nvpc-1 routes +8.8.8.0/24 peering:b m10\n",
		},
		{
			name: "a route inside the not changes e1's local routes only",
			vpc:  "e1", add: []LearnedRoute{lr("10.9.0.0/16", "203.0.113.1", "203.0.113.1", 0, 1)},
			want: "e1 local +10.9.0.0/16 bgp:203.0.113.1\n",
		},
		{
			name: "withdrawing what was never announced changes nothing",
			vpc:  "e2", withdraw: []LearnedRoute{{Prefix: netip.MustParsePrefix("7.7.7.0/24"), Neighbor: "198.51.100.1"}},
			want: "",
		},
	}
	for _, s := range steps {
		d, err := comp.UpdateLearned(s.vpc, s.add, s.withdraw)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := renderDelta(tables, d); got != s.want {
			t.Errorf("%s: delta\n%s\nwant\n%s", s.name, got, s.want)
		}
		if err := ApplyDelta(tables, d); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
}

func TestApplyDeltaRefusesWhatItCannotApply(t *testing.T) {
	tables := compileYAML(t, gateway, nil)
	tests := []struct {
		name string
		d    *tablesv1.TableDelta
	}{
		{"an unknown VPC id", &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 99}}}},
		{"a removal that is not a prefix", &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{RemoveRoutes: []string{"nope"}}}}},
		{"an upsert that is not a prefix", &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{UpsertLocalRoutes: []*tablesv1.Route{{Prefix: "nope"}}}}}},
		{"a match_source route", &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{UpsertRoutes: []*tablesv1.Route{{Prefix: "10.0.0.0/8", MatchSource: true}}}}}},
	}
	for _, tt := range tests {
		if err := ApplyDelta(tables, tt.d); err == nil {
			t.Errorf("ApplyDelta with %s succeeded", tt.name)
		}
	}
}
