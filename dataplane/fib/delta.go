package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/peergate/peergate/lpm"
	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// ErrRebuild means that a snapshot cannot take a delta incrementally (it is
// not the newest of its line, an earlier delta failed half-way, or the
// action groups grew too much): the driver should ask for complete tables,
// which a controlplane sends to a dataplane that refuses a delta.
var ErrRebuild = errors.New("fib: complete tables needed")

// groupSlack is how many action groups deltas may add beyond twice the
// groups of the last complete tables before ApplyDelta asks for complete
// tables. Groups no route uses any more are only dropped by a Build; a
// full table's routes share a handful of groups, so this is rarely reached.
const groupSlack = 1024

// bulkChanges is the number of changes to one table from which ApplyDelta
// loads the whole table at once (when they are also an eighth of it or
// more) instead of inserting them one by one: every single insert
// publishes a copy-on-write version, a microsecond or more each, where a
// load builds a million routes in a fraction of a second (a full table
// streaming in arrives as a few very large deltas).
const bulkChanges = 4096

// limits are the sizes of the tables that actions refer to.
type limits struct{ vpcs, natTables, filters, natPools int }

// vpcTables are the lpm tables a VPC's snapshots are taken from. Only the
// writer changes them; snapshots hold immutable lpm.Snapshots of them.
type vpcTables struct {
	routes, src, local *lpm.Table
	// routerIPs are the host routes of the VPC's router IPs in routes:
	// local whatever the compiled routes say, so deltas never touch them.
	routerIPs map[netip.Prefix]bool
}

// publish points v's lookups at the tables' current contents.
func (t *vpcTables) publish(v *VPC) {
	v.Routes, v.SrcRoutes, v.Local = t.routes.Snapshot(), t.src.Snapshot(), t.local.Snapshot()
	v.HasSrcRoutes = t.src.Len() > 0
}

// writer is what the snapshots of one Build share to take deltas: the
// VPCs' lpm tables (copy-on-write, so a snapshot's lpm.Snapshots never
// change) and the index of groups. It belongs to the
// newest snapshot; older ones only read what they hold.
type writer struct {
	mu          sync.Mutex
	newest      *Snapshot
	lim         limits
	vpcs        []vpcTables // by VPC id
	groups      map[string]uint32
	builtGroups int   // len(Groups) after Build
	broken      error // a delta failed after changing tables
	memo        groupMemo
	kb          []byte // groupKey's key buffer
}

// tableChanges are the changes of one lpm table in one delta: removals
// first, then insertions (a delta's removals come before its upserts).
type tableChanges struct {
	del []netip.Prefix
	ins []lpm.Route
}

// vpcChanges are the changes of one VPC's tables in one delta.
type vpcChanges struct {
	vpc                int
	routes, src, local tableChanges
}

// ApplyDelta returns a new snapshot: s with the route changes of d (the
// rest of the tables cannot change in a delta). s itself is unchanged and
// stays valid, so workers still using it are unaffected until the new one
// is stored in the Holder. Only the newest snapshot of a Build can take a
// delta. A route change costs a few microseconds (an lpm insert or delete),
// not a rebuild of the VPC's tables: with a full Internet table, Build takes
// seconds. On error the newest snapshot is still s; an error wrapping
// ErrRebuild asks for complete tables.
//
// Routes are keyed by prefix and match_source; a removal names a prefix and
// removes it in either form, removals before upserts; the router IPs' host
// routes stay local whatever a delta says (as in Build).
func (s *Snapshot) ApplyDelta(d *tablesv1.TableDelta) (*Snapshot, error) {
	w := s.w
	if w == nil {
		return nil, fmt.Errorf("%w: generation %d was not made by Build", ErrRebuild, s.Generation)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.broken != nil:
		return nil, fmt.Errorf("%w: an earlier delta failed: %v", ErrRebuild, w.broken)
	case w.newest != s:
		return nil, fmt.Errorf("%w: generation %d is not the newest snapshot (%d is)", ErrRebuild, s.Generation, w.newest.Generation)
	case d.GetBaseGeneration() != s.Generation:
		return nil, fmt.Errorf("fib: delta over generation %d, but generation %d is running", d.GetBaseGeneration(), s.Generation)
	}
	w.memo = groupMemo{} // it may name a group of a refused delta
	ns := *s
	ns.Generation = d.GetGeneration()
	// New groups, actions and peerings are appended to copies: s's arrays
	// are read by workers.
	ns.Groups, ns.Actions, ns.Peerings = slices.Clip(s.Groups), slices.Clip(s.Actions), slices.Clip(s.Peerings)
	staged := map[string]uint32{}
	plan := make([]vpcChanges, 0, len(d.GetVpcs()))
	for _, vd := range d.GetVpcs() {
		id := int(vd.GetVpcId())
		if id >= len(s.VPCs) {
			return nil, fmt.Errorf("fib: delta of generation %d: vpc id %d: the tables have %d VPCs", d.GetGeneration(), id, len(s.VPCs))
		}
		c, err := ns.vpcChanges(w, id, vd, staged)
		if err != nil {
			return nil, fmt.Errorf("fib: delta of generation %d: vpc %q: %w", d.GetGeneration(), s.VPCs[id].Name, err)
		}
		plan = append(plan, c)
	}
	if len(ns.Groups) > 2*w.builtGroups+groupSlack {
		return nil, fmt.Errorf("%w: %d action groups, %d in the last complete tables", ErrRebuild, len(ns.Groups), w.builtGroups)
	}
	// The delta is valid: change the tables. Nothing below fails on valid
	// input; if it does anyway, the tables no longer match any snapshot
	// and only complete tables can repair them.
	ns.VPCs = slices.Clone(s.VPCs)
	if err := applyPlan(w, plan); err != nil {
		w.broken = err
		return nil, fmt.Errorf("%w: %v", ErrRebuild, err)
	}
	for _, c := range plan {
		w.vpcs[c.vpc].publish(&ns.VPCs[c.vpc])
	}
	for k, g := range staged {
		w.groups[k] = g
	}
	w.newest = &ns
	return &ns, nil
}

// applyPlan makes the changes of plan to the writer's tables, in order
// for a delta that names a VPC twice: the part before the repeat, then the
// rest.
func applyPlan(w *writer, plan []vpcChanges) error {
	seen := make(map[int]bool, len(plan))
	for i, c := range plan {
		if seen[c.vpc] {
			if err := applyDistinct(w, plan[:i]); err != nil {
				return err
			}
			return applyPlan(w, plan[i:])
		}
		seen[c.vpc] = true
	}
	return applyDistinct(w, plan)
}

// applyDistinct makes the changes of plan, whose VPCs are distinct.
// Tables loaded whole (bulk changes: a table transfer, typically an
// external's local routes and the routes of the VPC peering with it) are
// built concurrently: they share nothing.
func applyDistinct(w *writer, plan []vpcChanges) error {
	type job struct {
		vpc int
		t   *lpm.Table
		cs  *tableChanges
	}
	var small, bulk []job
	for i := range plan {
		c := &plan[i]
		tabs := &w.vpcs[c.vpc]
		for _, j := range []job{{c.vpc, tabs.routes, &c.routes}, {c.vpc, tabs.src, &c.src}, {c.vpc, tabs.local, &c.local}} {
			if j.cs.bulk(j.t) {
				bulk = append(bulk, j)
			} else {
				small = append(small, j)
			}
		}
	}
	errs := make([]error, len(bulk))
	var wg sync.WaitGroup
	for i, j := range bulk[min(1, len(bulk)):] {
		wg.Go(func() { errs[i+1] = j.cs.apply(j.t) })
	}
	if len(bulk) > 0 {
		errs[0] = bulk[0].cs.apply(bulk[0].t)
	}
	var smallErr error
	for _, j := range small {
		if err := j.cs.apply(j.t); err != nil {
			smallErr = fmt.Errorf("vpc %q: %w", w.newest.VPCs[j.vpc].Name, err)
			break
		}
	}
	wg.Wait()
	if smallErr != nil {
		return smallErr
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("vpc %q: %w", w.newest.VPCs[bulk[i].vpc].Name, err)
		}
	}
	return nil
}

// vpcChanges parses one VPC's part of a delta and resolves its upserts'
// groups (new ones are appended to s and recorded in staged).
func (s *Snapshot) vpcChanges(w *writer, id int, vd *tablesv1.VpcRouteDelta, staged map[string]uint32) (vpcChanges, error) {
	c := vpcChanges{vpc: id}
	c.routes.ins = make([]lpm.Route, 0, len(vd.GetUpsertRoutes())+routeblock.Len(vd.GetUpsertRouteBlock()))
	c.local.ins = make([]lpm.Route, 0, len(vd.GetUpsertLocalRoutes())+routeblock.Len(vd.GetUpsertLocalRouteBlock()))
	tabs := &w.vpcs[id]
	for _, x := range vd.GetRemoveRoutes() {
		p, err := parsePrefixOrAddr(x)
		if err != nil {
			return c, fmt.Errorf("remove route: %w", err)
		}
		p = p.Masked()
		if !tabs.routerIPs[p] {
			c.routes.del = append(c.routes.del, p)
		}
		c.src.del = append(c.src.del, p)
	}
	for _, x := range vd.GetRemoveLocalRoutes() {
		p, err := parsePrefixOrAddr(x)
		if err != nil {
			return c, fmt.Errorf("remove local route: %w", err)
		}
		c.local.del = append(c.local.del, p.Masked())
	}
	route := func(p netip.Prefix, r *tablesv1.Route) error {
		g, err := s.upsert(w, p, r, staged, false)
		if err != nil {
			return err
		}
		switch {
		case r.GetMatchSource():
			c.src.ins = append(c.src.ins, lpm.Route{Prefix: p, Value: g})
		case !tabs.routerIPs[p]:
			c.routes.ins = append(c.routes.ins, lpm.Route{Prefix: p, Value: g})
		}
		return nil
	}
	local := func(p netip.Prefix, r *tablesv1.Route) error {
		g, err := s.upsert(w, p, r, staged, true)
		if err != nil {
			return err
		}
		c.local.ins = append(c.local.ins, lpm.Route{Prefix: p, Value: g})
		return nil
	}
	if err := eachRoute("route", vd.GetUpsertRoutes(), vd.GetUpsertRouteBlock(), route); err != nil {
		return c, err
	}
	if err := eachRoute("local route", vd.GetUpsertLocalRoutes(), vd.GetUpsertLocalRouteBlock(), local); err != nil {
		return c, err
	}
	return c, nil
}

// eachRoute calls f with every route of a list and then of its block (a
// nil block has none), each with its masked prefix, and stops at the first
// error; what names the list in errors.
func eachRoute(what string, plain []*tablesv1.Route, block *tablesv1.RouteBlock, f func(netip.Prefix, *tablesv1.Route) error) error {
	for _, r := range plain {
		p, err := parsePrefixOrAddr(r.GetPrefix())
		if err == nil {
			err = f(p.Masked(), r)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, r.GetPrefix(), err)
		}
	}
	rd := routeblock.NewReader(block)
	for rd.Next() {
		if err := f(rd.Prefix(), rd.Route()); err != nil {
			return fmt.Errorf("%s %s: %w", what, rd.Prefix(), err)
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("%s block: %w", what, err)
	}
	return nil
}

// upsert returns the group of r's actions for the (masked) prefix p.
func (s *Snapshot) upsert(w *writer, p netip.Prefix, r *tablesv1.Route, staged map[string]uint32, local bool) (uint32, error) {
	g, key, err := s.groupKey(w, p, r.GetActions(), staged, local)
	if err != nil {
		return 0, err
	}
	if key != "" {
		staged[key] = g
	}
	return g, nil
}

// bulk reports whether the changes are many against t: loaded whole.
func (c *tableChanges) bulk(t *lpm.Table) bool {
	n := len(c.del) + len(c.ins)
	return n >= bulkChanges && n >= t.Len()/8
}

// apply makes the changes to t: one by one, or, when they are many
// against the table, with one Load of the resulting routes.
func (c *tableChanges) apply(t *lpm.Table) error {
	if !c.bulk(t) {
		for _, p := range c.del {
			t.Delete(p)
		}
		for _, r := range c.ins {
			if err := t.Insert(r.Prefix, r.Value); err != nil {
				return err
			}
		}
		return nil
	}
	gone := make(map[netip.Prefix]bool, len(c.del))
	for _, p := range c.del {
		gone[p] = true
	}
	routes := make([]lpm.Route, 0, t.Len()+len(c.ins))
	for p, v := range t.All() {
		if !gone[p] {
			routes = append(routes, lpm.Route{Prefix: p, Value: v})
		}
	}
	// A later route replaces an earlier one of the same prefix (lpm.Build),
	// so the insertions just follow what stays.
	return t.Load(append(routes, c.ins...))
}
