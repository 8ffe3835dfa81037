package compile

import (
	"fmt"
	"math/rand"
	"net/netip"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/controlplane/manifest"
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
			for step := range 300 {
				vpc := []string{"e1", "e2"}[u.r.Intn(2)]
				var add, withdraw []LearnedRoute
				for range 1 + u.r.Intn(3) {
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
				want, _, err := Compile(cfg, u.learned())
				if err != nil {
					t.Fatal(err)
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
