// Package routeblock writes and reads tablesv1.RouteBlock, the compact wire
// form of many routes: the distinct route attributes once (templates), then
// per route its prefix (as in a BGP NLRI) and the index of its template.
//
// The controlplane's push hub packs the large upsert lists of a delta into
// blocks (PackDelta); the dataplane reads them with a Reader, which
// allocates nothing per route. It is a codec only: what routes mean is the
// compiler's and the dataplane's business.
package routeblock

import (
	"fmt"
	"net/netip"
	"slices"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
	"google.golang.org/protobuf/proto"
)

// templateKey identifies a route's attributes without comparing action
// lists: routes resolving to one candidate share its action slice.
type templateKey struct {
	metric      uint32
	source      string
	matchSource bool
	first       *tablesv1.Action
	n           int
}

func keyOf(r *tablesv1.Route) templateKey {
	k := templateKey{metric: r.GetMetric(), source: r.GetSource(), matchSource: r.GetMatchSource(), n: len(r.GetActions())}
	if k.n > 0 {
		k.first = r.Actions[0]
	}
	return k
}

// sameAttributes reports whether a and b differ in their prefix at most.
func sameAttributes(a, b *tablesv1.Route) bool {
	return a.GetMetric() == b.GetMetric() && a.GetSource() == b.GetSource() && a.GetMatchSource() == b.GetMatchSource() &&
		slices.EqualFunc(a.GetActions(), b.GetActions(), func(x, y *tablesv1.Action) bool { return proto.Equal(x, y) })
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

// Add appends r. Its prefix must be a valid prefix; its actions are shared
// with the block (not copied), so r must not change afterwards.
func (bl *Builder) Add(r *tablesv1.Route) error {
	p, err := netip.ParsePrefix(r.GetPrefix())
	if err != nil {
		return fmt.Errorf("routeblock: route %q: %w", r.GetPrefix(), err)
	}
	t := bl.template(r)
	if p.Addr().Is4() {
		bl.b.Ipv4 = appendPrefix(bl.b.Ipv4, p)
		bl.b.Ipv4Templates = append(bl.b.Ipv4Templates, t)
	} else {
		bl.b.Ipv6 = appendPrefix(bl.b.Ipv6, p)
		bl.b.Ipv6Templates = append(bl.b.Ipv6Templates, t)
	}
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
	bl.b.Templates = append(bl.b.Templates, &tablesv1.Route{
		Metric: r.GetMetric(), Source: r.GetSource(), Actions: r.GetActions(), MatchSource: r.GetMatchSource(),
	})
	bl.index[k], bl.last, bl.has = t, int(t), true
	return t
}

// Len returns the number of routes added.
func (bl *Builder) Len() int { return len(bl.b.Ipv4Templates) + len(bl.b.Ipv6Templates) }

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

func appendPrefix(b []byte, p netip.Prefix) []byte {
	bits := p.Bits()
	b = append(b, byte(bits))
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return append(b, a[:(bits+7)/8]...)
	}
	a := p.Addr().As16()
	return append(b, a[:(bits+7)/8]...)
}

// Len returns the number of routes in b.
func Len(b *tablesv1.RouteBlock) int { return len(b.GetIpv4Templates()) + len(b.GetIpv6Templates()) }

// Reader reads the routes of a block in order, IPv4 first: a later route
// of a prefix replaces an earlier one (what applying them in order does).
// A block that does not decode ends the routes with an error:
//
//	r := routeblock.NewReader(b)
//	for r.Next() {
//		use(r.Prefix(), r.Route())
//	}
//	if err := r.Err(); err != nil { ... }
type Reader struct {
	b    *tablesv1.RouteBlock
	v6   bool
	buf  []byte   // the current family's prefixes not read yet
	tmpl []uint32 // the current family's template indexes
	i    int      // routes of the current family read
	p    netip.Prefix
	r    *tablesv1.Route
	err  error
}

// NewReader returns a Reader of b (nil: no routes).
func NewReader(b *tablesv1.RouteBlock) Reader {
	return Reader{b: b, buf: b.GetIpv4(), tmpl: b.GetIpv4Templates()}
}

// Next reads the next route; false at the end or on error.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	for r.i == len(r.tmpl) {
		if len(r.buf) > 0 {
			r.err = fmt.Errorf("routeblock: %s: %d bytes beyond the last of %d prefixes", r.family(), len(r.buf), len(r.tmpl))
			return false
		}
		if r.v6 {
			return false
		}
		r.v6, r.buf, r.tmpl, r.i = true, r.b.GetIpv6(), r.b.GetIpv6Templates(), 0
	}
	t := r.tmpl[r.i]
	if int(t) >= len(r.b.GetTemplates()) {
		r.err = fmt.Errorf("routeblock: %s route %d: template %d of %d", r.family(), r.i, t, len(r.b.GetTemplates()))
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
	maxBits := 32
	if r.v6 {
		maxBits = 128
	}
	if len(r.buf) == 0 {
		return netip.Prefix{}, fmt.Errorf("routeblock: %s route %d: no prefix (%d templates, fewer prefixes)", r.family(), r.i, len(r.tmpl))
	}
	bits := int(r.buf[0])
	n := (bits + 7) / 8
	if bits > maxBits || len(r.buf) < 1+n {
		return netip.Prefix{}, fmt.Errorf("routeblock: %s route %d: bad prefix (length %d, %d bytes left)", r.family(), r.i, bits, len(r.buf)-1)
	}
	var a [16]byte
	copy(a[:], r.buf[1:1+n])
	r.buf = r.buf[1+n:]
	var addr netip.Addr
	if r.v6 {
		addr = netip.AddrFrom16(a)
	} else {
		addr = netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.PrefixFrom(addr, bits).Masked(), nil
}

func (r *Reader) family() string {
	if r.v6 {
		return "ipv6"
	}
	return "ipv4"
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
		t := r.Route()
		out = append(out, &tablesv1.Route{Prefix: r.Prefix().String(), Metric: t.Metric, Source: t.Source, Actions: t.Actions, MatchSource: t.MatchSource})
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
