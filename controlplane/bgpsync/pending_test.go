package bgpsync

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/bgp"
	"github.com/peergate/peergate/controlplane/compile"
)

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
