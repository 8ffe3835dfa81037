package compile

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/gaissmai/bart"

	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
	"github.com/peergate/peergate/internal/intern"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Compiler keeps what a configuration needs to recompile only the part of
// the tables a BGP update touches: the model with its shared tables, and
// per external VPC the learned paths in a prefix trie. It keeps no copy of
// the compiled routes: an update resolves the affected regions once with
// the old paths and once with the new ones and returns the difference.
// A Compiler is not safe for concurrent use.
type Compiler struct {
	b         *builder // model, VPC ids, shared-table indexes; learned and local are per call
	rib       map[string]*bart.Table[pathSet]
	neighbors intern.Table[string]     // path.nbr(): neighbour address
	nextHops  intern.Table[netip.Addr] // path.nh
	// more holds the paths beyond the first of the prefixes several
	// neighbours announce (pathSet.more is 1 + the index); free lists the
	// unused indexes.
	more  [][]path
	free  []uint32
	paths int // learned paths held, all externals
	// parallelMin: from this many learned routes an update's tables are
	// resolved concurrently (defaultParallelMin; tests lower it).
	parallelMin int
}

// path is one learned path as the Compiler holds it, one per prefix and
// neighbour (a million with a full table): 12 bytes and no pointers. The
// neighbour and the next hop are interned (a neighbour's routes share a
// handful of next hops; a netip.Addr inline made the path 40 bytes, 48
// with its array's size class). Interned values are never dropped: both
// tables grow with the distinct neighbours and next hops ever learned,
// which a new Compiler (a complete compilation) starts afresh.
type path struct {
	nh  uint32
	med uint32
	an  uint32 // AS path length << 16 | neighbour
}

// maxNeighbors is how many distinct neighbours a Compiler can number
// (path.an's low half): far more than any gateway configures between two
// complete compilations; past it an update fails and the caller compiles
// everything, which starts the numbering afresh.
const maxNeighbors = 1 << 16

func (p path) nbr() uint32   { return p.an & (maxNeighbors - 1) }
func (p path) asLen() uint32 { return p.an >> 16 }

// pathSet is the paths of one prefix, one per neighbour: nearly always a
// single one, kept inline, and 16 bytes with no pointers, so that the
// trie's million values cost no allocation each and nothing for the
// collector to scan (with a pointer to the others it was 24 bytes and
// scanned). The trie holds no empty set: it deletes a prefix whose last
// path goes.
type pathSet struct {
	first path
	more  uint32 // 1 + the index of the others in Compiler.more; 0: none
}

// edit returns s (none when !ok) without the paths drop matches and with
// add appended (when not nil), the number of paths that added (negative
// when it removed some), and whether no path remains. s's others, if any,
// are given up: s is replaced by the result in the trie.
func (c *Compiler) edit(s pathSet, ok bool, drop func(path) bool, add *path) (pathSet, int, bool) {
	var buf [4]path
	ps := buf[:0]
	if ok {
		ps = append(ps, s.first)
		if s.more != 0 {
			ps = append(ps, c.more[s.more-1]...)
			c.more[s.more-1] = nil
			c.free = append(c.free, s.more-1)
		}
	}
	n := len(ps)
	ps = slices.DeleteFunc(ps, drop)
	if add != nil {
		ps = append(ps, *add)
	}
	if len(ps) == 0 {
		return pathSet{}, -n, true
	}
	out := pathSet{first: ps[0]}
	if len(ps) > 1 {
		if k := len(c.free); k > 0 {
			out.more = c.free[k-1] + 1
			c.free = c.free[:k-1]
		} else {
			c.more = append(c.more, nil)
			out.more = uint32(len(c.more))
		}
		c.more[out.more-1] = slices.Clone(ps[1:])
	}
	return out, len(ps) - n, false
}

// NewCompiler validates c, compiles it with learned (nil for none) like
// Compile, and returns a Compiler holding the state for UpdateLearned.
// learned is not retained.
func NewCompiler(c *manifest.Config, learned Learned) (*Compiler, *tablesv1.Tables, []validate.Diagnostic, error) {
	m, warns, errs := validate.Check(c)
	if len(errs) > 0 {
		return nil, nil, append(warns, errs...), diagnosticsError(errs)
	}
	b, err := newBuilder(m, learned)
	if err != nil {
		return nil, nil, warns, err
	}
	t := b.all()
	b.t, b.learned, b.local = nil, nil, nil // the caller owns the tables
	comp := &Compiler{b: b, rib: map[string]*bart.Table[pathSet]{}, parallelMin: defaultParallelMin}
	for _, x := range m.VPCs {
		if !x.External {
			continue
		}
		rib := &bart.Table[pathSet]{}
		comp.rib[x.Name] = rib
		for _, r := range learned[x.Name] {
			p := r.Prefix.Masked()
			if !p.IsValid() || !r.NextHop.IsValid() {
				continue
			}
			np, err := comp.path(r)
			if err != nil {
				return nil, nil, warns, err
			}
			rib.Modify(p, func(s pathSet, ok bool) (pathSet, bool) {
				// Learned may hold a path twice; a full compile keeps it
				// once (bestLearned), so does the trie.
				s, added, _ := comp.edit(s, ok, func(x path) bool { return x == np }, &np)
				comp.paths += added
				return s, false
			})
		}
	}
	return comp, t, warns, nil
}

// Learned returns the learned routes the Compiler holds, for example to
// build the Compiler of a new configuration with NewCompiler.
func (c *Compiler) Learned() Learned {
	l := Learned{}
	for vpc, rib := range c.rib {
		if rib.Size() == 0 {
			continue
		}
		rs := make([]LearnedRoute, 0, rib.Size())
		for p, s := range rib.AllSorted() {
			rs = c.appendRoutes(rs, p, s)
		}
		l[vpc] = rs
	}
	return l
}

// LearnedCount is the number of learned paths the Compiler holds (one
// per external, neighbour and prefix): what its tables were compiled from.
func (c *Compiler) LearnedCount() int { return c.paths }

// appendRoutes appends the routes of p's paths s to dst.
func (c *Compiler) appendRoutes(dst []LearnedRoute, p netip.Prefix, s pathSet) []LearnedRoute {
	dst = append(dst, c.learnedRoute(p, s.first))
	if s.more != 0 {
		for _, x := range c.more[s.more-1] {
			dst = append(dst, c.learnedRoute(p, x))
		}
	}
	return dst
}

func (c *Compiler) learnedRoute(p netip.Prefix, x path) LearnedRoute {
	return LearnedRoute{Prefix: p, NextHop: c.nextHops.At(x.nh), MED: x.med, Neighbor: c.neighbors.At(x.nbr()), ASPathLen: int(x.asLen())}
}

func (c *Compiler) path(r LearnedRoute) (path, error) {
	nbr := c.neighbors.Index(r.Neighbor)
	if nbr >= maxNeighbors {
		return path{}, fmt.Errorf("compile: more than %d neighbours since the last complete compilation", maxNeighbors)
	}
	return path{nh: c.nextHops.Index(r.NextHop), med: r.MED, an: uint32(clampASPathLen(r.ASPathLen))<<16 | nbr}, nil
}

// UpdateLearned applies one BGP update of external VPC vpc: each route of
// add replaces the paths its neighbour advertised for its prefix (BGP
// implicit withdrawal); each route of withdraw removes the paths its
// Neighbor advertised for its Prefix (other fields ignored). Routes with an
// invalid prefix or next hop in add are ignored, as Compile ignores them.
// Withdrawals are applied before announcements.
//
// The returned delta, applied to the tables of the previous call (or of
// NewCompiler) with ApplyDelta, gives exactly the tables Compile returns
// for the new learned set. It touches only the regions the update can
// change: in vpc's local_routes the changed prefixes and what they cover,
// and in the routes of every VPC peering with vpc the same addresses as
// that peering exposes them (translated through its `as` segments). Its
// base_generation and generation are left 0: the caller numbers
// generations.
func (c *Compiler) UpdateLearned(vpc string, add, withdraw []LearnedRoute) (*tablesv1.TableDelta, error) {
	return c.update(nil, vpc, add, withdraw)
}

// UpdateLearnedOver is UpdateLearned for a caller that holds the tables
// the Compiler's current state compiles to (those of NewCompiler with
// every delta since applied): the routes of the affected regions before
// the update are read from cur instead of being resolved again, which
// halves the work of an update and, for a batch large against the
// external's table (a table streaming in), spares a resolution of every
// table. cur is only read. Handing it tables of another state gives a
// wrong delta.
func (c *Compiler) UpdateLearnedOver(cur *tablesv1.Tables, vpc string, add, withdraw []LearnedRoute) (*tablesv1.TableDelta, error) {
	if cur == nil {
		return nil, fmt.Errorf("compile: update learned routes of %q: no current tables", vpc)
	}
	return c.update(cur, vpc, add, withdraw)
}

func (c *Compiler) update(cur *tablesv1.Tables, vpc string, add, withdraw []LearnedRoute) (*tablesv1.TableDelta, error) {
	rib, ok := c.rib[vpc]
	if !ok {
		return nil, fmt.Errorf("compile: update learned routes: %q is not an external VPC", vpc)
	}
	changed := make([]netip.Prefix, 0, len(add)+len(withdraw))
	for _, r := range add {
		if p := r.Prefix.Masked(); p.IsValid() && r.NextHop.IsValid() {
			changed = append(changed, p)
		}
	}
	for _, r := range withdraw {
		if p := r.Prefix.Masked(); p.IsValid() {
			changed = append(changed, p)
		}
	}
	var regions map[tableKey][]netip.Prefix
	if len(changed)*8 > rib.Size() {
		regions = c.wideRegions(cur, vpc, changed)
	} else {
		regions = c.regions(vpc, changed)
	}
	var before map[tableKey]regionRoutes
	if cur != nil {
		var err error
		if before, err = c.liveRegions(cur, regions); err != nil {
			return nil, err
		}
	} else {
		before = c.resolveRegions(regions)
	}
	// The new paths first: a failure leaves the trie as it was.
	paths := make([]path, len(add))
	for j, r := range add {
		np, err := c.path(r)
		if err != nil {
			return nil, err
		}
		paths[j] = np
	}
	for _, r := range withdraw {
		p := r.Prefix.Masked()
		i, ok := c.neighbors.Lookup(r.Neighbor)
		if !p.IsValid() || !ok {
			continue
		}
		rib.Modify(p, func(s pathSet, ok bool) (pathSet, bool) {
			s, added, none := c.edit(s, ok, func(x path) bool { return x.nbr() == i }, nil)
			c.paths += added
			return s, none
		})
	}
	for j, r := range add {
		p := r.Prefix.Masked()
		if !p.IsValid() || !r.NextHop.IsValid() {
			continue
		}
		np := paths[j]
		rib.Modify(p, func(s pathSet, ok bool) (pathSet, bool) {
			s, added, _ := c.edit(s, ok, func(x path) bool { return x.nbr() == np.nbr() }, &np)
			c.paths += added
			return s, false
		})
	}
	after := c.resolveRegions(regions)
	return c.diff(before, after), nil
}

// wideRegions is regions for a batch that is a large part of external
// vpc's own table (a session going down or coming up, the first routes of
// an empty external). Resolving a whole table once beats thousands of
// regions, but that is decided per table, against the size of each: the
// first routes of an empty external are its whole table, yet only a few
// regions of a peer's table that holds another external's million routes,
// whose whole resolution took seconds (and ~750 MB of garbage, which
// slowed the updates that followed while it was collected). Without cur
// the sizes are unknown and every table is resolved whole.
func (c *Compiler) wideRegions(cur *tablesv1.Tables, vpc string, changed []netip.Prefix) map[tableKey][]netip.Prefix {
	whole := c.regions(vpc, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	if cur == nil {
		return whole
	}
	var narrow []tableKey
	for k := range whole {
		if len(changed)*8 <= c.tableSize(cur, k) {
			narrow = append(narrow, k)
		}
	}
	if len(narrow) == 0 {
		return whole
	}
	regions := c.regions(vpc, changed)
	for k := range regions {
		if !slices.Contains(narrow, k) {
			regions[k] = whole[k]
		}
	}
	return regions
}

// tableSize is the number of routes of table k in cur (0 if cur lacks it:
// liveRegions reports that).
func (c *Compiler) tableSize(cur *tablesv1.Tables, k tableKey) int {
	id, ok := c.b.vpcID[k.vpc]
	if !ok || int(id) >= len(cur.GetVpcs()) {
		return 0
	}
	if k.local {
		return len(cur.Vpcs[id].GetLocalRoutes())
	}
	return len(cur.Vpcs[id].GetRoutes())
}

// tableKey names one route table: a VPC's local_routes or routes.
type tableKey struct {
	vpc   string
	local bool
}

// regions returns, per table, the disjoint prefixes whose routes a change
// of the learned routes of external vpc at prefixes changed can alter.
func (c *Compiler) regions(vpc string, changed []netip.Prefix) map[tableKey][]netip.Prefix {
	out := map[tableKey][]netip.Prefix{}
	if len(changed) == 0 {
		return out
	}
	out[tableKey{vpc, true}] = changed
	for _, p := range c.b.m.Peerings {
		for i, peer := range p.Sides {
			if peer.VPC != vpc || peer.Stateful {
				continue // a stateful peer is reached through its pool, not its routes
			}
			k := tableKey{p.Sides[1-i].VPC, false}
			for _, seg := range peer.Segments() {
				for _, q := range changed {
					if q.Overlaps(seg.From) {
						out[k] = append(out[k], validate.Translate(longer(q, seg.From), seg))
					}
				}
			}
		}
	}
	for k, rs := range out {
		out[k] = disjoint(rs)
	}
	return out
}

func longer(a, b netip.Prefix) netip.Prefix {
	if b.Bits() > a.Bits() {
		return b
	}
	return a
}

// disjoint sorts ps and drops the prefixes another one contains.
func disjoint(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, validate.ComparePrefix)
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && contains(out[n-1], p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// regionRoutes are the routes of one table inside its regions, sorted.
type regionRoutes struct {
	regions []netip.Prefix
	routes  []*tablesv1.Route
}

// resolveRegions compiles each table of regions from the candidates that
// overlap its regions and keeps the routes inside them. That is exact: the
// routes inside a prefix depend only on the candidates covering it (its
// ancestors in the resolution trie) and those inside it. Every table is
// resolved from one set of learned routes, the union of what each needs
// (a candidate outside a table's regions changes nothing inside them),
// each route collected once: the same prefixes of an external usually
// serve its local routes and its peers' routes.
func (c *Compiler) resolveRegions(regions map[tableKey][]netip.Prefix) map[tableKey]regionRoutes {
	queries := map[string][]netip.Prefix{}
	for k, rs := range regions {
		c.queriesFor(queries, k, rs)
	}
	learned := make(Learned, len(queries))
	for vpc, qs := range queries {
		prev := netip.Prefix{}
		for _, q := range disjoint(qs) {
			learned[vpc] = c.overlapping(learned[vpc], vpc, q, prev)
			prev = q
		}
	}
	rb := *c.b
	rb.learned, rb.ownLearned = learned, true
	rb.local = make(map[string][]candidate, len(rb.m.VPCs))
	for _, x := range rb.m.VPCs {
		rb.local[x.Name] = rb.localCandidates(x)
	}
	keys := make([]tableKey, 0, len(regions))
	for k := range regions {
		keys = append(keys, k)
	}
	res := make([]regionRoutes, len(keys))
	one := func(i int) {
		k := keys[i]
		rs := regions[k]
		var all []*tablesv1.Route
		if k.local {
			all = resolve(rb.local[k.vpc])
		} else {
			all = rb.routes(rb.m.ByName[k.vpc])
		}
		// Regions of whole address families (a batch large against the
		// table) keep every destination route of those families: no
		// parsing, an IPv6 prefix has a colon.
		whole := !slices.ContainsFunc(rs, func(r netip.Prefix) bool { return r.Bits() > 0 })
		has4 := slices.ContainsFunc(rs, func(r netip.Prefix) bool { return r.Addr().Is4() })
		has6 := slices.ContainsFunc(rs, func(r netip.Prefix) bool { return r.Addr().Is6() })
		kept := all[:0]
		for _, r := range all {
			var in bool
			switch {
			case r.MatchSource:
			case whole:
				in = has6 && strings.IndexByte(r.Prefix, ':') >= 0 || has4 && strings.IndexByte(r.Prefix, ':') < 0
			default:
				in = inRegions(rs, mustRoutePrefix(r.Prefix))
			}
			if in {
				kept = append(kept, r)
			}
		}
		res[i] = regionRoutes{rs, kept}
	}
	// The tables are independent once the candidates are built (rb is
	// only read): with many learned routes (a batch of a transfer, whose
	// last one is resolved while the dataplanes wait) each gets a core.
	total := 0
	for _, rs := range learned {
		total += len(rs)
	}
	if total >= c.parallelMin && len(keys) > 1 {
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() { one(i) })
		}
		wg.Wait()
	} else {
		for i := range keys {
			one(i)
		}
	}
	out := make(map[tableKey]regionRoutes, len(keys))
	for i, k := range keys {
		out[k] = res[i]
	}
	return out
}

// defaultParallelMin is the number of learned routes from which an
// update's tables are resolved concurrently.
const defaultParallelMin = 16384

// liveRegions reads, per table of regions, the destination routes of cur
// inside the regions: what resolveRegions gives for the Compiler's state
// that cur was compiled from. Routes inside a region R sort right after
// R's own position (prefix order is address, then length; a route with
// R's address and a shorter length contains R), so each region is one
// search and a scan.
func (c *Compiler) liveRegions(cur *tablesv1.Tables, regions map[tableKey][]netip.Prefix) (map[tableKey]regionRoutes, error) {
	out := make(map[tableKey]regionRoutes, len(regions))
	for k, rs := range regions {
		id, ok := c.b.vpcID[k.vpc]
		if !ok || int(id) >= len(cur.GetVpcs()) || cur.Vpcs[id].GetId() != id || cur.Vpcs[id].GetName() != k.vpc {
			return nil, fmt.Errorf("compile: update learned routes: the current tables have no VPC %s at id %d", k.vpc, id)
		}
		all := cur.Vpcs[id].GetRoutes()
		if k.local {
			all = cur.Vpcs[id].GetLocalRoutes()
		}
		n := destinationCount(all)
		var kept []*tablesv1.Route
		pos := 0
		for _, r := range rs {
			i, _, err := searchFrom(all[:n], pos, r)
			if err != nil {
				return nil, fmt.Errorf("compile: update learned routes: VPC %s: %w", k.vpc, err)
			}
			for ; i < n; i++ {
				p, err := parseRoutePrefix(all[i].Prefix)
				if err != nil {
					return nil, fmt.Errorf("compile: update learned routes: VPC %s: %w", k.vpc, err)
				}
				if !contains(r, p) {
					break
				}
				kept = append(kept, all[i])
			}
			pos = i
		}
		out[k] = regionRoutes{rs, kept}
	}
	return out, nil
}

// destinationCount is the number of destination routes at the start of
// a compiled route list (match_source routes follow them).
func destinationCount(rs []*tablesv1.Route) int {
	n, _ := slices.BinarySearchFunc(rs, true, func(r *tablesv1.Route, _ bool) int {
		if r.MatchSource {
			return 1
		}
		return -1
	})
	return n
}

// searchFrom finds p in the destination routes rs (sorted by prefix) at
// or after index from: the index of p or where it would be inserted, and
// whether it is there. It gallops from from (1, 2, 4... routes ahead)
// before searching by halves, so a sorted run of searches through a long
// list parses O(log gap) prefixes each rather than O(log len).
func searchFrom(rs []*tablesv1.Route, from int, p netip.Prefix) (int, bool, error) {
	var perr error
	cmpAt := func(i int) int {
		q, err := parseRoutePrefix(rs[i].Prefix)
		if err != nil {
			perr = err
			return 0
		}
		return validate.ComparePrefix(q, p)
	}
	lo, step := from, 1
	hi := len(rs)
	for lo < len(rs) {
		i := min(from+step-1, len(rs)-1)
		c := cmpAt(i)
		if perr != nil {
			return 0, false, perr
		}
		if c >= 0 {
			hi = i + 1
			break
		}
		lo = i + 1
		step *= 2
	}
	// rs[lo-1] < p (or lo == from) and, when hi <= len(rs), rs[hi-1] >= p.
	i, found := lo, false
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		c := cmpAt(m)
		if perr != nil {
			return 0, false, perr
		}
		if c < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i = lo
	if i < len(rs) {
		q, err := parseRoutePrefix(rs[i].Prefix)
		if err != nil {
			return 0, false, err
		}
		found = q == p
	}
	return i, found, nil
}

// queriesFor adds to qs, per external VPC, the prefixes whose learned
// routes (those containing one or lying inside one) can make candidates
// of table k that overlap regions: for local_routes the regions
// themselves, for routes those of every external peer, translated back
// through the peer side's segments.
func (c *Compiler) queriesFor(qs map[string][]netip.Prefix, k tableKey, regions []netip.Prefix) {
	if k.local {
		qs[k.vpc] = append(qs[k.vpc], regions...)
		return
	}
	for _, p := range c.b.m.Peerings {
		for i, own := range p.Sides {
			peer := p.Sides[1-i]
			if own.VPC != k.vpc || peer.Stateful || c.rib[peer.VPC] == nil {
				continue
			}
			for _, seg := range peer.Segments() {
				for _, r := range regions {
					if !r.Overlaps(seg.To) {
						continue
					}
					q := seg.From
					if r.Bits() > seg.To.Bits() {
						q = validate.Translate(r, validate.Segment{From: seg.To, To: seg.From})
					}
					qs[peer.VPC] = append(qs[peer.VPC], q)
				}
			}
		}
	}
}

// overlapping appends the learned routes of vpc that contain q or lie
// inside it. prev is the query before q in a sorted run of disjoint ones
// (or invalid): supernets that also contain it were appended already, which
// keeps a withdrawal of a whole session linear.
func (c *Compiler) overlapping(dst []LearnedRoute, vpc string, q, prev netip.Prefix) []LearnedRoute {
	rib := c.rib[vpc]
	emit := func(p netip.Prefix, s pathSet) bool {
		dst = c.appendRoutes(dst, p, s)
		return true
	}
	if q.Bits() == 0 {
		// Room for the whole trie, once: the other family's whole
		// query then appends without growing (growing by the trie's size
		// again copied the first family's million routes, 0.5 s with
		// the collector's write barriers on).
		dst = slices.Grow(dst, max(0, rib.Size()-len(dst)))
	}
	rib.Supernets(q)(func(p netip.Prefix, s pathSet) bool {
		if p.Bits() == q.Bits() {
			return true // yielded by Subnets
		}
		if prev.IsValid() && contains(p, prev) {
			return false // this one and the shorter ones: appended for prev
		}
		return emit(p, s)
	})
	rib.Subnets(q)(emit)
	return dst
}

// inRegions reports whether p lies inside one of the sorted, disjoint
// regions.
func inRegions(regions []netip.Prefix, p netip.Prefix) bool {
	// The region containing p sorts at or before it: the last one that does.
	i, _ := slices.BinarySearchFunc(regions, p, func(r, p netip.Prefix) int {
		if validate.ComparePrefix(r, p) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && contains(regions[i-1], p)
}

// diff turns the routes of the same regions before and after an update
// into upserts and removals per VPC, sorted by VPC id and prefix.
func (c *Compiler) diff(before, after map[tableKey]regionRoutes) *tablesv1.TableDelta {
	byID := map[uint32]*tablesv1.VpcRouteDelta{}
	for k, a := range after {
		upserts, removes := diffRoutes(before[k].routes, a.routes)
		if len(upserts) == 0 && len(removes) == 0 {
			continue
		}
		id := c.b.vpcID[k.vpc]
		v, ok := byID[id]
		if !ok {
			v = &tablesv1.VpcRouteDelta{VpcId: id}
			byID[id] = v
		}
		if k.local {
			v.UpsertLocalRoutes, v.RemoveLocalRoutes = upserts, removes
		} else {
			v.UpsertRoutes, v.RemoveRoutes = upserts, removes
		}
	}
	d := &tablesv1.TableDelta{}
	for _, v := range byID {
		d.Vpcs = append(d.Vpcs, v)
	}
	slices.SortFunc(d.Vpcs, func(a, b *tablesv1.VpcRouteDelta) int { return cmp.Compare(a.VpcId, b.VpcId) })
	return d
}

// diffRoutes merges two route lists sorted by prefix.
func diffRoutes(old, new []*tablesv1.Route) (upserts []*tablesv1.Route, removes []string) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		var c int
		switch {
		case i == len(old):
			c = 1
		case j == len(new):
			c = -1
		default:
			c = validate.ComparePrefix(mustRoutePrefix(old[i].Prefix), mustRoutePrefix(new[j].Prefix))
		}
		switch {
		case c < 0:
			removes = append(removes, old[i].Prefix)
			i++
		case c > 0:
			upserts = append(upserts, new[j])
			j++
		default:
			if !sameRoute(old[i], new[j]) {
				upserts = append(upserts, new[j])
			}
			i++
			j++
		}
	}
	return upserts, removes
}

func sameRoute(a, b *tablesv1.Route) bool {
	return a.Prefix == b.Prefix && a.Metric == b.Metric && a.Source == b.Source && a.MatchSource == b.MatchSource &&
		sameActionLists(a.Actions, b.Actions)
}

// ApplyDelta applies d to t in place (t's generation becomes
// d.Generation). Route lists stay as Compile orders them: destination
// routes sorted by prefix, then the match_source routes; deltas from
// UpdateLearned change destination routes only. Each change costs a binary
// search and a slice insert or delete, or, for a list with more than
// InPlaceMax changes, the list is rebuilt in one pass. On error t may be
// partly changed: recompile it. ApplyDelta writes t's route slices in
// place (those with at most InPlaceMax changes): it must not run while
// another goroutine reads t (e.g. marshals it for a dataplane).
func ApplyDelta(t *tablesv1.Tables, d *tablesv1.TableDelta) error {
	for _, vd := range d.GetVpcs() {
		if int(vd.VpcId) >= len(t.Vpcs) || t.Vpcs[vd.VpcId].Id != vd.VpcId {
			return fmt.Errorf("compile: apply delta: no VPC with id %d", vd.VpcId)
		}
		v := t.Vpcs[vd.VpcId]
		var err error
		if v.Routes, err = applyRoutes(v.Routes, vd.UpsertRoutes, vd.RemoveRoutes); err != nil {
			return fmt.Errorf("compile: apply delta to VPC %s routes: %w", v.Name, err)
		}
		if v.LocalRoutes, err = applyRoutes(v.LocalRoutes, vd.UpsertLocalRoutes, vd.RemoveLocalRoutes); err != nil {
			return fmt.Errorf("compile: apply delta to VPC %s local routes: %w", v.Name, err)
		}
	}
	t.Generation = d.GetGeneration()
	return nil
}

// InPlaceMax is the most changes ApplyDelta makes to one route list in
// place (a search and a slice insert or delete each, moving the routes
// after it). A list with more changes is rebuilt into a new slice in one
// pass, and its old slice is left untouched: a table streaming in sends
// deltas of thousands of routes, which inserted one at a time would move
// the whole list each time.
const InPlaceMax = 16

func applyRoutes(rs, upserts []*tablesv1.Route, removes []string) ([]*tablesv1.Route, error) {
	if len(upserts)+len(removes) > InPlaceMax {
		return mergeRoutes(rs, upserts, removes)
	}
	// Destination routes are rs[:n], sorted; match_source ones follow.
	n := destinationCount(rs)
	find := func(s string) (int, bool, error) {
		p, err := parseRoutePrefix(s)
		if err != nil {
			return 0, false, err
		}
		return searchFrom(rs[:n], 0, p)
	}
	for _, s := range removes {
		i, ok, err := find(s)
		if err != nil {
			return rs, err
		}
		if ok {
			rs = slices.Delete(rs, i, i+1)
			n--
		}
	}
	for _, r := range upserts {
		if r.MatchSource {
			return rs, fmt.Errorf("route %s: match_source routes are not changed by deltas", r.Prefix)
		}
		i, ok, err := find(r.Prefix)
		if err != nil {
			return rs, err
		}
		if ok {
			rs[i] = r
		} else {
			rs = slices.Insert(rs, i, r)
			n++
		}
	}
	return rs, nil
}

// mergeRoutes applies removes, then upserts, to rs as applyRoutes does,
// into a new slice: the changes are sorted by prefix, and the unchanged
// runs between them are copied whole.
func mergeRoutes(rs, upserts []*tablesv1.Route, removes []string) ([]*tablesv1.Route, error) {
	type change struct {
		p netip.Prefix
		r *tablesv1.Route // nil: remove
	}
	cs := make([]change, 0, len(removes)+len(upserts))
	for _, s := range removes {
		p, err := parseRoutePrefix(s)
		if err != nil {
			return rs, err
		}
		cs = append(cs, change{p: p})
	}
	for _, r := range upserts {
		if r.MatchSource {
			return rs, fmt.Errorf("route %s: match_source routes are not changed by deltas", r.Prefix)
		}
		p, err := parseRoutePrefix(r.Prefix)
		if err != nil {
			return rs, err
		}
		cs = append(cs, change{p, r})
	}
	// Stable: of several changes to one prefix the last one wins, as when
	// they are applied in order (removals first). A compiler's upserts come
	// sorted (a table transfer's million of them): checked in one pass.
	byPrefix := func(a, b change) int { return validate.ComparePrefix(a.p, b.p) }
	if !slices.IsSortedFunc(cs, byPrefix) {
		slices.SortStableFunc(cs, byPrefix)
	}
	n := destinationCount(rs)
	out := make([]*tablesv1.Route, 0, len(rs)+len(upserts))
	pos := 0
	for j, c := range cs {
		if j+1 < len(cs) && cs[j+1].p == c.p {
			continue
		}
		i, found, err := searchFrom(rs[:n], pos, c.p)
		if err != nil {
			return rs, err
		}
		out = append(out, rs[pos:i]...)
		if found {
			i++
		}
		if c.r != nil {
			out = append(out, c.r)
		}
		pos = i
	}
	return append(out, rs[pos:]...), nil
}
