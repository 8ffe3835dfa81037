package bgpsync

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/compile"
)

func TestFinalChangesKeepsTheLastChangeOfEachRoute(t *testing.T) {
	ch := func(nbr, prefix string, med uint32, withdraw bool) pend {
		return pend{route: compile.LearnedRoute{Prefix: netip.MustParsePrefix(prefix), Neighbor: nbr, MED: med}, withdraw: withdraw}
	}
	render := func(ps []pend) string {
		var out []string
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s %s med=%d withdraw=%v", p.route.Neighbor, p.route.Prefix, p.route.MED, p.withdraw))
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	cases := []struct {
		name string
		in   []pend
		want []pend
	}{
		{"nothing", nil, nil},
		{"one change", []pend{ch("a", "1.0.0.0/24", 1, false)}, []pend{ch("a", "1.0.0.0/24", 1, false)}},
		{"distinct routes all kept", []pend{ch("a", "1.0.0.0/24", 1, false), ch("b", "1.0.0.0/24", 2, false), ch("a", "1.0.0.0/16", 3, true)},
			[]pend{ch("a", "1.0.0.0/24", 1, false), ch("b", "1.0.0.0/24", 2, false), ch("a", "1.0.0.0/16", 3, true)}},
		{"announce then withdraw: the withdrawal", []pend{ch("a", "1.0.0.0/24", 1, false), ch("a", "1.0.0.0/24", 1, true)}, []pend{ch("a", "1.0.0.0/24", 1, true)}},
		{"withdraw then announce: the announcement", []pend{ch("a", "2001:db8::/32", 1, true), ch("a", "2001:db8::/32", 4, false)}, []pend{ch("a", "2001:db8::/32", 4, false)}},
		{"three announcements: the last", []pend{ch("a", "1.0.0.0/24", 1, false), ch("b", "9.0.0.0/8", 1, false), ch("a", "1.0.0.0/24", 2, false), ch("a", "1.0.0.0/24", 3, false)},
			[]pend{ch("a", "1.0.0.0/24", 3, false), ch("b", "9.0.0.0/8", 1, false)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, want := render(finalChanges(slices.Clone(c.in))), render(c.want); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
