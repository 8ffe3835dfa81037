package compile

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Route preference classes, compared after prefix length and before metric
// (like a router's administrative distance): the VPC's own addresses, then
// its static routes and Kube-OVN peerings, then Peering API exposures, then
// BGP-learned routes.
const (
	distConnected uint8 = iota
	distStatic
	distPeering
	distBGP
)

// candidate is one route a VPC could take for prefix, except for the
// addresses in excl (a peering side's `not` list, in the same address
// space as prefix).
//
// It is kept small (72 bytes): a full table makes millions of them.
type candidate struct {
	prefix netip.Prefix
	metric uint32
	dist   uint8
	source string
	// act is the action, dst_nat relative to prefix when dstNat is valid.
	// It is a one-element list (oneAction) so that every route resolving
	// to this candidate alone, without destination NAT, takes a slice of
	// it as its Actions: the million routes learned from one external
	// share one list instead of each allocating its own (and the
	// comparisons of resolve allocated two more per route).
	act *[1]*tablesv1.Action
	nat *candNAT // nil: no exclusions, no destination NAT
}

// candNAT is the rarer part of a Peering API candidate.
type candNAT struct {
	excl   []netip.Prefix
	dstNat netip.Prefix
}

func (c *candidate) excl() []netip.Prefix {
	if c.nat == nil {
		return nil
	}
	return c.nat.excl
}

func (c *candidate) dstNat() netip.Prefix {
	if c.nat == nil {
		return netip.Prefix{}
	}
	return c.nat.dstNat
}

// resolve turns candidates into an LPM route list that gives every address
// the best candidate covering it: the longest candidate prefix that does
// not exclude the address, then the lowest preference class, then the
// lowest metric; ties are one route with several actions (ECMP).
//
// It walks the trie of all candidate and exclusion prefixes and emits a
// route at a node only where the best set differs from the one the node
// inherits by longest-prefix match from its nearest emitted ancestor. Where
// every covering candidate excludes a node but an ancestor route would
// match, it emits ACTION_DROP: excluded addresses are unreachable, not
// routed to a less specific exposure of the same peering. A route whose
// actions equal the inherited ones is left out: it would change nothing
// but the metric and source shown to operators.
func resolve(cands []candidate) []*tablesv1.Route {
	// One event per candidate prefix (add) and per exclusion inside it
	// (remove), sorted so that each trie node's events are adjacent and
	// nodes come parent first.
	type event struct {
		prefix netip.Prefix
		cand   int
		remove bool
	}
	events := make([]event, 0, len(cands))
	for i, c := range cands {
		if slices.ContainsFunc(c.excl(), func(x netip.Prefix) bool { return contains(x, c.prefix) }) {
			continue // wholly excluded
		}
		events = append(events, event{c.prefix, i, false})
		for _, x := range c.excl() {
			if contains(c.prefix, x) {
				events = append(events, event{x, i, true})
			}
		}
	}
	slices.SortFunc(events, func(a, b event) int {
		return cmp.Or(validate.ComparePrefix(a.prefix, b.prefix), cmp.Compare(a.cand, b.cand))
	})

	// Frames keep their covering and effective sets in two arenas that
	// grow and shrink with the stack: no allocation per trie node.
	type frame struct {
		prefix         netip.Prefix
		covOff, covLen int // covering candidates: covArena[covOff:covOff+covLen]
		effOff, effLen int // effective (emitted or inherited) best set
	}
	var stack []frame
	var covArena, effArena []int
	out := make([]*tablesv1.Route, 0, len(events)/2)
	var adds, removes, scratch []int
	for start := 0; start < len(events); {
		p := events[start].prefix
		adds, removes = adds[:0], removes[:0]
		end := start
		for ; end < len(events) && events[end].prefix == p; end++ {
			if events[end].remove {
				removes = append(removes, events[end].cand)
			} else {
				adds = append(adds, events[end].cand)
			}
		}
		start = end
		for len(stack) > 0 && !contains(stack[len(stack)-1].prefix, p) {
			stack = stack[:len(stack)-1]
		}
		var parent frame
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
			covArena = covArena[:parent.covOff+parent.covLen]
			effArena = effArena[:parent.effOff+parent.effLen]
		} else {
			covArena, effArena = covArena[:0], effArena[:0]
		}
		parentCov := covArena[parent.covOff : parent.covOff+parent.covLen]
		parentEff := effArena[parent.effOff : parent.effOff+parent.effLen]
		f := frame{prefix: p, covOff: parent.covOff, covLen: parent.covLen, effOff: parent.effOff, effLen: parent.effLen}
		if len(adds) > 0 || len(removes) > 0 {
			f.covOff = len(covArena)
			for _, i := range parentCov {
				if !slices.Contains(removes, i) {
					covArena = append(covArena, i)
				}
			}
			covArena = append(covArena, adds...)
			f.covLen = len(covArena) - f.covOff
			parentEff = effArena[parent.effOff : parent.effOff+parent.effLen] // covArena may have moved, effArena not
		}
		best := selectBest(cands, covArena[f.covOff:f.covOff+f.covLen], scratch)
		scratch = best
		var r *tablesv1.Route
		if !slices.Equal(best, parentEff) && !sameSingleAction(cands, best, parentEff) {
			if len(best) > 0 {
				// Another candidate with the same actions as the inherited
				// route changes nothing for the dataplane: leave it out.
				if len(parentEff) == 0 || !sameActionLists(actionsFor(p, cands, best), actionsFor(p, cands, parentEff)) {
					r = routeFor(p, cands, best)
				}
			} else {
				r = dropFor(p, cands, removes)
				if len(parentEff) > 0 && sameActionLists(r.Actions, actionsFor(p, cands, parentEff)) {
					r = nil
				}
			}
		}
		if r != nil {
			f.effOff = len(effArena)
			effArena = append(effArena, best...)
			f.effLen = len(best)
			out = append(out, r)
		}
		stack = append(stack, f)
	}
	return out
}

// sameSingleAction is the cheap common case of sameActions: one candidate
// each, sharing one action template without destination NAT (e.g. two
// routes learned from one external).
func sameSingleAction(cands []candidate, a, b []int) bool {
	if len(a) != 1 || len(b) != 1 {
		return false
	}
	x, y := &cands[a[0]], &cands[b[0]]
	return x.act == y.act && !x.dstNat().IsValid() && !y.dstNat().IsValid()
}

// cloneAction copies every field of a (cheaper than proto.Clone, which
// goes through reflection, for a million routes).
func cloneAction(a *tablesv1.Action) *tablesv1.Action {
	return &tablesv1.Action{
		Kind: a.Kind, DstVpc: a.DstVpc, Via: a.Via, TtlDecrement: a.TtlDecrement, Peering: a.Peering,
		DstNat: a.DstNat, SrcNat: a.SrcNat, SnatPool: a.SnatPool, ReversePool: a.ReversePool, IngressFilter: a.IngressFilter,
	}
}

// contains reports whether prefix a contains prefix b.
func contains(a, b netip.Prefix) bool {
	return a.Addr().Is4() == b.Addr().Is4() && a.Bits() <= b.Bits() && a.Contains(b.Addr())
}

// selectBest returns the best of covering, in buf's storage.
func selectBest(cands []candidate, covering []int, buf []int) []int {
	best := buf[:0]
	for _, i := range covering {
		if len(best) == 0 {
			best = append(best, i)
			continue
		}
		c, b := &cands[i], &cands[best[0]]
		switch cmp.Or(-cmp.Compare(c.prefix.Bits(), b.prefix.Bits()), cmp.Compare(c.dist, b.dist), cmp.Compare(c.metric, b.metric)) {
		case -1:
			best = append(best[:0], i)
		case 0:
			best = append(best, i)
		}
	}
	slices.Sort(best)
	return best
}

// actionsFor returns the sorted, deduplicated actions of best at p.
// Actions without destination NAT are the candidates' own messages, shared
// by every route that uses them (Tables are immutable once built).
func actionsFor(p netip.Prefix, cands []candidate, best []int) []*tablesv1.Action {
	if len(best) == 1 {
		c := &cands[best[0]]
		if !c.dstNat().IsValid() {
			return c.act[:] // capacity 1: an append copies, the list stays shared
		}
		return []*tablesv1.Action{actionAt(p, c)}
	}
	acts := make([]*tablesv1.Action, 0, len(best))
	for _, i := range best {
		a := actionAt(p, &cands[i])
		if !slices.ContainsFunc(acts, func(b *tablesv1.Action) bool { return compareActions(a, b) == 0 }) {
			acts = append(acts, a)
		}
	}
	slices.SortFunc(acts, compareActions)
	return acts
}

// oneAction wraps a as a candidate's action list.
func oneAction(a *tablesv1.Action) *[1]*tablesv1.Action { return &[1]*tablesv1.Action{a} }

func actionAt(p netip.Prefix, c *candidate) *tablesv1.Action {
	dn := c.dstNat()
	if !dn.IsValid() {
		return c.act[0]
	}
	a := cloneAction(c.act[0])
	a.DstNat = validate.Translate(p, validate.Segment{From: c.prefix, To: dn}).String()
	return a
}

func sameActionLists(a, b []*tablesv1.Action) bool {
	return slices.EqualFunc(a, b, func(x, y *tablesv1.Action) bool { return x == y || compareActions(x, y) == 0 })
}

func routeFor(p netip.Prefix, cands []candidate, best []int) *tablesv1.Route {
	r := &tablesv1.Route{Prefix: p.String(), Metric: cands[best[0]].metric, Actions: actionsFor(p, cands, best)}
	if len(best) == 1 {
		r.Source = cands[best[0]].source
		return r
	}
	sources := make([]string, 0, len(best))
	for _, i := range best {
		sources = append(sources, cands[i].source)
	}
	slices.Sort(sources)
	r.Source = strings.Join(slices.Compact(sources), ",")
	return r
}

func dropFor(p netip.Prefix, cands []candidate, removers []int) *tablesv1.Route {
	var sources []string
	for _, i := range removers {
		sources = append(sources, cands[i].source)
	}
	slices.Sort(sources)
	return &tablesv1.Route{
		Prefix:  p.String(),
		Source:  strings.Join(slices.Compact(sources), ","),
		Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DROP, Peering: peeringOf(cands, removers)}},
	}
}

func peeringOf(cands []candidate, ids []int) string {
	var ps []string
	for _, i := range ids {
		ps = append(ps, cands[i].act[0].GetPeering())
	}
	slices.Sort(ps)
	ps = slices.Compact(ps)
	if len(ps) == 1 {
		return ps[0]
	}
	return ""
}

// compareActions orders actions by every field; 0 means equal. Keep it in
// step with cloneAction when the message grows.
func compareActions(a, b *tablesv1.Action) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.DstVpc, b.DstVpc), cmp.Compare(a.Via, b.Via),
		cmp.Compare(a.Peering, b.Peering), cmp.Compare(a.DstNat, b.DstNat), cmp.Compare(a.SrcNat, b.SrcNat),
		cmp.Compare(a.SnatPool, b.SnatPool), cmp.Compare(a.ReversePool, b.ReversePool),
		cmp.Compare(a.IngressFilter, b.IngressFilter), cmp.Compare(a.TtlDecrement, b.TtlDecrement))
}
