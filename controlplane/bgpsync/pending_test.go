package bgpsync

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/bgp"
	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/internal/fulltable"
)

// finalChanges is what a VPC's pending changes come to after batches.
func finalChanges(batches [][]bgp.RouteUpdate) (add, withdraw []compile.LearnedRoute) {
	var p pendingRoutes
	for _, b := range batches {
		p.add(b)
	}
	return p.final()
}

func TestFinalChangesKeepsTheLastChangeOfEachRoute(t *testing.T) {
	ch := func(nbr, prefix string, med uint32, withdraw bool) bgp.RouteUpdate {
		return bgp.RouteUpdate{Route: bgp.Route{VPC: "e1", Prefix: netip.MustParsePrefix(prefix), Neighbor: nbr, MED: med}, Withdraw: withdraw}
	}
	render := func(add, wd []compile.LearnedRoute) string {
		var out []string
		for _, r := range add {
			out = append(out, fmt.Sprintf("+%s %s med=%d", r.Neighbor, r.Prefix, r.MED))
		}
		for _, r := range wd {
			out = append(out, fmt.Sprintf("-%s %s", r.Neighbor, r.Prefix))
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	cases := []struct {
		name    string
		batches [][]bgp.RouteUpdate
		want    string
	}{
		{"nothing", nil, ""},
		{"one change", [][]bgp.RouteUpdate{{ch("a", "1.0.0.0/24", 1, false)}}, "+a 1.0.0.0/24 med=1"},
		{"distinct routes all kept", [][]bgp.RouteUpdate{{ch("a", "1.0.0.0/24", 1, false), ch("b", "1.0.0.0/24", 2, false)}, {ch("a", "1.0.0.0/16", 3, true)}},
			"+a 1.0.0.0/24 med=1\n+b 1.0.0.0/24 med=2\n-a 1.0.0.0/16"},
		{"announce then withdraw, across batches: the withdrawal", [][]bgp.RouteUpdate{{ch("a", "1.0.0.0/24", 1, false)}, {ch("a", "1.0.0.0/24", 1, true)}}, "-a 1.0.0.0/24"},
		{"withdraw then announce: the announcement", [][]bgp.RouteUpdate{{ch("a", "2001:db8::/32", 1, true), ch("a", "2001:db8::/32", 4, false)}}, "+a 2001:db8::/32 med=4"},
		{"three announcements: the last", [][]bgp.RouteUpdate{{ch("a", "1.0.0.0/24", 1, false), ch("b", "9.0.0.0/8", 1, false)}, {ch("a", "1.0.0.0/24", 2, false)}, {ch("a", "1.0.0.0/24", 3, false)}},
			"+a 1.0.0.0/24 med=3\n+b 9.0.0.0/8 med=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := render(finalChanges(c.batches)); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// BenchmarkFinalChangesOfATableTransfer reduces the changes of a full
// table's transfer (one announcement per prefix, in batches as the
// speaker queues them, in an order unrelated to the prefixes' as gobgp
// sends them): the last step before its final compilation.
//
//	go test ./controlplane/bgpsync -run '^$' -bench FinalChanges -benchmem
func BenchmarkFinalChangesOfATableTransfer(b *testing.B) {
	prefixes := slices.Clone(fulltable.Prefixes(b))
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(prefixes), func(i, j int) { prefixes[i], prefixes[j] = prefixes[j], prefixes[i] })
	var batches [][]bgp.RouteUpdate
	var cur []bgp.RouteUpdate
	nh := netip.MustParseAddr("192.0.2.1")
	for i, p := range prefixes {
		cur = append(cur, bgp.RouteUpdate{Route: bgp.Route{VPC: "e1", Prefix: p, NextHop: nh, Neighbor: "192.0.2.1", MED: uint32(i % 7)}})
		if len(cur) == 8192 {
			batches, cur = append(batches, cur), nil
		}
	}
	batches = append(batches, cur)
	var p pendingRoutes
	for _, x := range batches {
		p.add(x)
	}
	for b.Loop() {
		add, _ := p.final()
		if len(add) != len(prefixes) {
			b.Fatalf("%d routes, want %d", len(add), len(prefixes))
		}
	}
}

// TestSortKeysMatchesAComparisonSort checks the radix sort of change keys
// against slices.SortFunc on keys of every kind: IPv4 and IPv6 prefixes of
// all lengths, several neighbours, repeated routes.
func TestSortKeysMatchesAComparisonSort(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 5000} {
		r := rand.New(rand.NewPCG(uint64(n), 9))
		keys := make([]changeKey, n)
		for i := range keys {
			var a netip.Addr
			if r.IntN(3) == 0 {
				var b [16]byte
				for j := range b {
					b[j] = byte(r.IntN(4))
				}
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(4)), 0})
			}
			p := netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked()
			keys[i] = makeChangeKey(p, uint64(r.IntN(3)), uint32(r.IntN(1<<24)))
		}
		want := slices.Clone(keys)
		slices.SortFunc(want, changeKey.compare)
		sortKeys(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("%d keys: the radix sort differs from the comparison sort", n)
		}
	}
}

// TestPendingRoutesKeepEveryField: what final returns of distinct routes is
// exactly what came in, every field, IPv4 and IPv6 (the changes are held
// as numbered, pointer-free records in between).
func TestPendingRoutesKeepEveryField(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var ups []bgp.RouteUpdate
	seen := map[string]bool{}
	for len(ups) < 2000 {
		var a netip.Addr
		if r.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), 0})
		} else {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(256)), byte(r.IntN(256))})
		}
		u := bgp.RouteUpdate{Route: bgp.Route{VPC: "e1", Prefix: netip.PrefixFrom(a, 8+r.IntN(a.BitLen()-7)).Masked(),
			NextHop: netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(4))}), MED: r.Uint32(),
			Neighbor: fmt.Sprintf("198.51.100.%d", r.IntN(3)), ASPathLen: r.IntN(300)}, Withdraw: r.IntN(4) == 0}
		k := u.Route.Neighbor + " " + u.Route.Prefix.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		ups = append(ups, u)
	}
	add, wd := finalChanges([][]bgp.RouteUpdate{ups[:700], ups[700:]})
	want := map[compile.LearnedRoute]bool{}
	for _, u := range ups {
		want[compile.LearnedRoute{Prefix: u.Route.Prefix, NextHop: u.Route.NextHop, MED: u.Route.MED, Neighbor: u.Route.Neighbor, ASPathLen: u.Route.ASPathLen}] = u.Withdraw
	}
	if len(add)+len(wd) != len(want) {
		t.Fatalf("%d announcements and %d withdrawals, want %d changes", len(add), len(wd), len(want))
	}
	for _, x := range []struct {
		rs       []compile.LearnedRoute
		withdraw bool
	}{{add, false}, {wd, true}} {
		for _, rt := range x.rs {
			if w, ok := want[rt]; !ok || w != x.withdraw {
				t.Fatalf("%+v (withdrawal %v) did not come in so", rt, x.withdraw)
			}
		}
	}
}
