package bgpsync

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func compiled(t *testing.T, dir string, learned compile.Learned) *tablesv1.Tables {
	t.Helper()
	objs, err := manifest.LoadPaths("../../testdata/manifests/" + dir)
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := compile.Compile(manifest.NewConfig(objs), learned)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func vpc(t *testing.T, tb *tablesv1.Tables, name string) *tablesv1.Vpc {
	for _, v := range tb.GetVpcs() {
		if v.GetName() == name {
			return v
		}
	}
	t.Fatalf("no VPC %s", name)
	return nil
}

func learned(nb string, prefixes ...string) []compile.LearnedRoute {
	var out []compile.LearnedRoute
	for _, p := range prefixes {
		out = append(out, compile.LearnedRoute{Prefix: netip.MustParsePrefix(p), NextHop: netip.MustParseAddr(nb), Neighbor: nb, ASPathLen: 1})
	}
	return out
}

func strs(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestAdvertised(t *testing.T) {
	transit := compile.Learned{
		"vpc-e1": learned("203.0.113.1", "8.8.8.0/24", "10.5.0.0/16", "1.2.3.0/24"),
		"vpc-e2": learned("198.51.100.1", "9.9.9.0/24", "3.2.1.0/30", "192.168.7.0/24"),
	}
	cases := []struct {
		name     string
		dir      string
		learned  compile.Learned
		vpc      string
		want     []string // covered by what is advertised
		wantNot  []string // overlapping nothing advertised
		wantSize int      // exact count when > 0
	}{
		{"an external peered with a stateful side is told the NAT pool only", "peering-api-4-internet-by-cost", nil, "vpc-e1",
			[]string{"192.168.1.0/30"}, []string{"10.1.1.0/24"}, 1},
		{"the other external of the fourth use case is told the same pool", "peering-api-4-internet-by-cost", nil, "vpc-e2",
			[]string{"192.168.1.0/30"}, nil, 1},
		// The seed's externals have a static default route: their whole
		// exposure minus the nots is reachable, and the compiler merges the
		// learned routes into it.
		{"transit: routes learned from vpc-e2 inside its ips are told to vpc-e1", "peering-api-2-externals", transit, "vpc-e1",
			[]string{"9.9.9.0/24"}, []string{"3.2.1.0/30", "192.168.7.0/24", "203.0.113.0/29"}, 0},
		{"transit: routes learned from vpc-e1 inside its ips are told to vpc-e2", "peering-api-2-externals", transit, "vpc-e2",
			[]string{"8.8.8.0/24"}, []string{"10.5.0.0/16", "1.2.3.0/24", "198.51.100.0/29"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			adv := Advertised(vpc(t, compiled(t, c.dir, c.learned), c.vpc))
			got := strs(adv)
			for _, w := range c.want {
				p := netip.MustParsePrefix(w)
				if !slices.ContainsFunc(adv, func(a netip.Prefix) bool { return a.Bits() <= p.Bits() && a.Contains(p.Addr()) }) {
					t.Errorf("%s not advertised; got %v", w, got)
				}
			}
			for _, w := range c.wantNot {
				p := netip.MustParsePrefix(w)
				if slices.ContainsFunc(adv, p.Overlaps) {
					t.Errorf("%s (part of it) advertised; got %v", w, got)
				}
			}
			if c.wantSize > 0 && len(got) != c.wantSize {
				t.Errorf("got %d prefixes %v, want %d", len(got), got, c.wantSize)
			}
			t.Logf("%s is told %d prefixes: %v", c.vpc, len(got), got)
		})
	}
}

func TestSubtractCutsHolesIntoCIDRs(t *testing.T) {
	cases := []struct {
		name  string
		p     string
		holes []string
		want  []string
	}{
		{"no hole keeps the prefix", "10.0.0.0/8", nil, []string{"10.0.0.0/8"}},
		{"a hole of one half leaves the other", "10.0.0.0/8", []string{"10.0.0.0/9"}, []string{"10.128.0.0/9"}},
		{"a covering hole leaves nothing", "10.1.0.0/16", []string{"10.0.0.0/8"}, nil},
		{"a small hole splits along the way", "10.0.0.0/22", []string{"10.0.1.0/24"},
			[]string{"10.0.0.0/24", "10.0.2.0/23"}},
		{"IPv6 works the same", "2001:db8::/32", []string{"2001:db8::/33"}, []string{"2001:db8:8000::/33"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var holes []netip.Prefix
			for _, h := range c.holes {
				holes = append(holes, netip.MustParsePrefix(h))
			}
			got := strs(subtract(netip.MustParsePrefix(c.p), holes))
			if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
