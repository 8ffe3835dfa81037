// Package routeblock writes and reads tablesv1.RouteBlock, the compact wire
// form of many routes: the distinct route attributes once (templates), then
// per route its prefix (as in a BGP NLRI) and the index of its template, in
// the order of the route list the block stands for.
//
// The controlplane's push hub packs large route lists into blocks, those of
// complete tables (PackTables) and the upserts of deltas (PackDelta), for
// dataplanes that say they read them; the dataplane reads them with a
// Reader, which allocates nothing per route. It is a codec only: what
// routes mean is the compiler's and the dataplane's business.
package routeblock

import (
	"fmt"
	"net/netip"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
	"google.golang.org/protobuf/proto"
)

// templateKey identifies a route's attributes without comparing action
// lists: the routes of one candidate share its action slice, so a slice is
// known by its first element's address (not the element: ECMP lists of
// different routes share elements) and its length.
type templateKey struct {
	metric      uint32
	source      string
	matchSource bool
	actions     **tablesv1.Action
	n           int
}

func keyOf(r *tablesv1.Route) templateKey {
	k := templateKey{metric: r.GetMetric(), source: r.GetSource(), matchSource: r.GetMatchSource(), n: len(r.GetActions())}
	if k.n > 0 {
		k.actions = &r.Actions[0]
	}
	return k
}

// sameAttributes reports whether a and b differ in their prefix at most.
func sameAttributes(a, b *tablesv1.Route) bool {
	x, y := shallow(a), shallow(b)
	x.Prefix, y.Prefix = "", ""
	return proto.Equal(x, y)
}

// Builder packs routes into a block. The zero value is ready to use.
type Builder struct {
	b     tablesv1.RouteBlock
	index map[templateKey]uint32
	// The template and key of the last route added (has: one was added).
	last    int
	lastKey templateKey
	has     bool
}

// Add appends r. Its prefix must be a valid prefix (not an IPv4-mapped
// IPv6 one, which a dataplane reads as IPv4 from text); its actions are
// shared with the block (not copied), so r must not change afterwards.
func (bl *Builder) Add(r *tablesv1.Route) error {
	p, err := netip.ParsePrefix(r.GetPrefix())
	if err != nil {
		return fmt.Errorf("routeblock: route %q: %w", r.GetPrefix(), err)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("routeblock: route %q: an IPv4-mapped prefix", r.GetPrefix())
	}
	bl.b.Prefixes = appendPrefix(bl.b.Prefixes, p)
	bl.b.RouteTemplates = append(bl.b.RouteTemplates, bl.template(r))
	return nil
}

// template returns the index of r's attributes, adding them when new.
// Attributes equal to the last route's but in another action slice (a
// compiler that does not share slices) reuse its template; otherwise equal
// attributes in distinct slices get distinct templates, which is correct,
// only larger.
func (bl *Builder) template(r *tablesv1.Route) uint32 {
	k := keyOf(r)
	if bl.has && k == bl.lastKey {
		return uint32(bl.last) // a run of one neighbour's routes: no hashing
	}
	bl.lastKey = k
	if t, ok := bl.index[k]; ok {
		bl.last = int(t)
		return t
	}
	if bl.index == nil {
		bl.index = map[templateKey]uint32{}
	}
	if bl.has && sameAttributes(bl.b.Templates[bl.last], r) {
		bl.index[k] = uint32(bl.last)
		return uint32(bl.last)
	}
	t := uint32(len(bl.b.Templates))
	tmpl := shallow(r)
	tmpl.Prefix = ""
	bl.b.Templates = append(bl.b.Templates, tmpl)
	bl.index[k], bl.last, bl.has = t, int(t), true
	return t
}

// Len returns the number of routes added.
func (bl *Builder) Len() int { return len(bl.b.RouteTemplates) }

// Block returns the block of the routes added, or nil when there are none.
// The Builder must not be used afterwards.
func (bl *Builder) Block() *tablesv1.RouteBlock {
	if bl.Len() == 0 {
		return nil
	}
	return &bl.b
}

// Pack returns the block of routes.
func Pack(routes []*tablesv1.Route) (*tablesv1.RouteBlock, error) {
	var bl Builder
	for _, r := range routes {
		if err := bl.Add(r); err != nil {
			return nil, err
		}
	}
	return bl.Block(), nil
}

// v6Bias is added to an IPv6 prefix's length in its length byte.
const v6Bias = 33

func appendPrefix(b []byte, p netip.Prefix) []byte {
	bits := p.Bits()
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return append(append(b, byte(bits)), a[:(bits+7)/8]...)
	}
	a := p.Addr().As16()
	return append(append(b, byte(v6Bias+bits)), a[:(bits+7)/8]...)
}

// Len returns the number of routes in b.
func Len(b *tablesv1.RouteBlock) int { return len(b.GetRouteTemplates()) }

// Reader reads the routes of a block in order. A block that does not
// decode ends the routes with an error:
//
//	r := routeblock.NewReader(b)
//	for r.Next() {
//		use(r.Prefix(), r.Route())
//	}
//	if err := r.Err(); err != nil { ... }
type Reader struct {
	b   *tablesv1.RouteBlock
	buf []byte // the prefixes not read yet
	i   int    // routes read
	p   netip.Prefix
	r   *tablesv1.Route
	err error
}

// NewReader returns a Reader of b (nil: no routes).
func NewReader(b *tablesv1.RouteBlock) Reader {
	return Reader{b: b, buf: b.GetPrefixes()}
}

// Next reads the next route; false at the end or on error.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	tmpl := r.b.GetRouteTemplates()
	if r.i == len(tmpl) {
		if len(r.buf) > 0 {
			r.err = fmt.Errorf("routeblock: %d bytes beyond the last of %d prefixes", len(r.buf), len(tmpl))
		}
		return false
	}
	t := tmpl[r.i]
	if int(t) >= len(r.b.GetTemplates()) {
		r.err = fmt.Errorf("routeblock: route %d: template %d of %d", r.i, t, len(r.b.GetTemplates()))
		return false
	}
	if r.p, r.err = r.prefix(); r.err != nil {
		return false
	}
	r.r = r.b.Templates[t]
	r.i++
	return true
}

// prefix decodes the prefix at the head of r.buf.
func (r *Reader) prefix() (netip.Prefix, error) {
	if len(r.buf) == 0 {
		return netip.Prefix{}, fmt.Errorf("routeblock: route %d: no prefix (%d template indexes, fewer prefixes)", r.i, len(r.b.GetRouteTemplates()))
	}
	bits, v6 := int(r.buf[0]), false
	if bits >= v6Bias {
		bits, v6 = bits-v6Bias, true
	}
	n := (bits + 7) / 8
	if bits > 128 || len(r.buf) < 1+n {
		return netip.Prefix{}, fmt.Errorf("routeblock: route %d: bad prefix (length byte %d, %d bytes left)", r.i, r.buf[0], len(r.buf)-1)
	}
	var a [16]byte
	copy(a[:], r.buf[1:1+n])
	r.buf = r.buf[1+n:]
	addr := netip.AddrFrom16(a)
	if !v6 {
		addr = netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.PrefixFrom(addr, bits).Masked(), nil
}

// Prefix returns the prefix of the route read (masked).
func (r *Reader) Prefix() netip.Prefix { return r.p }

// Route returns the attributes of the route read: a template shared by
// the routes with the same attributes, its prefix empty. It must not be
// modified.
func (r *Reader) Route() *tablesv1.Route { return r.r }

// Err returns the error that ended the routes, if any.
func (r *Reader) Err() error { return r.err }

// Routes returns the routes of b as Route messages, prefixes in text.
func Routes(b *tablesv1.RouteBlock) ([]*tablesv1.Route, error) {
	out := make([]*tablesv1.Route, 0, Len(b))
	r := NewReader(b)
	for r.Next() {
		x := shallow(r.Route())
		x.Prefix = r.Prefix().String()
		out = append(out, x)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
