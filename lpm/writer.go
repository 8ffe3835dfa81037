package lpm

import (
	"cmp"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"unsafe"
)

// rec is one node record as stored in the flat node array.
type rec = [recWords]uint64

// rnode is the writer's copy of one trie node: the prefixes that end in
// this node's stride and its children, in the same shape as the lookup trie.
// A prefix of relative length l (1..8) whose l stride bits are b has the
// index 1<<l | b, so sorting by index sorts by length first.
type rnode struct {
	pfx   []uint64 // index<<32 | value, sorted by index
	kids  [4]uint64
	child []*rnode // in slot order
}

func (r *rnode) empty() bool { return len(r.pfx) == 0 && len(r.child) == 0 }

func (r *rnode) hasKid(s uint) bool { return r.kids[s>>6]&(1<<(s&63)) != 0 }

func (r *rnode) rank(s uint) int {
	n := 0
	for g := uint(0); g < s>>6; g++ {
		n += bits.OnesCount64(r.kids[g])
	}
	return n + bits.OnesCount64(r.kids[s>>6]&(1<<(s&63)-1))
}

func (r *rnode) addKid(s uint, c *rnode) {
	i := r.rank(s)
	r.kids[s>>6] |= 1 << (s & 63)
	r.child = slices.Insert(r.child, i, c)
}

func (r *rnode) delKid(s uint) {
	i := r.rank(s)
	r.kids[s>>6] &^= 1 << (s & 63)
	r.child = slices.Delete(r.child, i, i+1)
	if len(r.child) == 0 {
		r.child = nil
	}
}

func (r *rnode) findPfx(idx uint32) (int, bool) {
	return slices.BinarySearchFunc(r.pfx, idx, func(e uint64, idx uint32) int {
		return cmp.Compare(uint32(e>>32), idx)
	})
}

// setPfx stores v at idx and reports whether idx existed and whether
// anything changed.
func (r *rnode) setPfx(idx, v uint32) (existed, changed bool) {
	e := uint64(idx)<<32 | uint64(v)
	i, ok := r.findPfx(idx)
	if ok {
		if r.pfx[i] == e {
			return true, false
		}
		r.pfx[i] = e
		return true, true
	}
	r.pfx = slices.Insert(r.pfx, i, e)
	return false, true
}

func (r *rnode) delPfx(idx uint32) bool {
	i, ok := r.findPfx(idx)
	if ok {
		r.pfx = slices.Delete(r.pfx, i, i+1)
		if len(r.pfx) == 0 {
			r.pfx = nil
		}
	}
	return ok
}

// pushed writes to val the value every slot gets from the prefixes of r,
// inh where none covers it. Longer prefixes come later in r.pfx and win.
func (r *rnode) pushed(inh uint32, val *[256]uint32) {
	for i := range val {
		val[i] = inh
	}
	for _, e := range r.pfx {
		idx := uint32(e >> 32)
		l := uint(bits.Len32(idx) - 1)
		lo := (uint(idx) - 1<<l) << (8 - l)
		fill := val[lo : lo+1<<(8-l)]
		for i := range fill {
			fill[i] = uint32(e)
		}
	}
}

// pushedGroups is pushed restricted to the groups in gmask (bit g: slots
// 64g..64g+63); other slots of val are left as they are.
func (r *rnode) pushedGroups(inh uint32, val *[256]uint32, gmask uint) {
	if gmask == 0xf {
		r.pushed(inh, val)
		return
	}
	for g := uint(0); g < 4; g++ {
		if gmask&(1<<g) != 0 {
			fill := val[g<<6 : g<<6+64]
			for i := range fill {
				fill[i] = inh
			}
		}
	}
	for _, e := range r.pfx {
		idx := uint32(e >> 32)
		l := uint(bits.Len32(idx) - 1)
		lo := (uint(idx) - 1<<l) << (8 - l)
		hi := lo + 1<<(8-l)
		for g := lo >> 6; g <= (hi-1)>>6; g++ {
			if gmask&(1<<g) == 0 {
				continue
			}
			a, b := max(lo, g<<6), min(hi, g<<6+64)
			fill := val[a:b]
			for i := range fill {
				fill[i] = uint32(e)
			}
		}
	}
}

// covering returns the value slot s gets from r's prefixes, inh if none.
func (r *rnode) covering(s uint, inh uint32) uint32 {
	if len(r.pfx) == 0 {
		return inh
	}
	for l := uint(8); l >= 1; l-- {
		if i, ok := r.findPfx(uint32(1<<l | s>>(8-l))); ok {
			return uint32(r.pfx[i])
		}
	}
	return inh
}

// groupsOf returns the mask of groups that the prefix at idx spans.
func groupsOf(idx uint32) uint {
	l := uint(bits.Len32(idx) - 1)
	lo := (uint(idx) - 1<<l) << (8 - l)
	hi := lo + 1<<(8-l) - 1
	m := uint(0)
	for g := lo >> 6; g <= hi>>6; g++ {
		m |= 1 << g
	}
	return m
}

// scratch is per-level working memory for an update, pooled so that a
// table at rest holds none of it.
type scratch struct {
	lv [17]level
}

type level struct {
	old, val [256]uint32
	over     []override
}

// override is a child record that replaces (or adds) the child at slot.
type override struct {
	slot uint
	rec  rec
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// writer owns the mutable side of a table. Only the goroutine holding
// Table.mu uses it.
type writer struct {
	nodes  []uint64 // node records; append-only between compactions
	leaves []uint32 // leaf values; append-only between compactions
	root   [2]uint32
	rib    [2]*rnode
	def    [2]uint32 // value of ::/0 and 0.0.0.0/0, NoValue if absent
	n      [2]int
	deadN  int // words of replaced blocks in nodes
	deadL  int // entries of replaced blocks in leaves
	sc     *scratch
}

func (w *writer) init() {
	for f := range 2 {
		w.rib[f] = &rnode{}
		w.def[f] = NoValue
	}
	w.nodes = make([]uint64, 0, 2*recWords)
	w.leaves = make([]uint32, 0, 8)
	var val [256]uint32
	for i := range val {
		val[i] = NoValue
	}
	for f := range 2 {
		w.root[f] = w.writeRoot(w.encode(&rec{}, w.rib[f], &val, nil, 0xf))
	}
}

func errInvalid(p netip.Prefix) error { return fmt.Errorf("lpm: invalid prefix %v", p) }

func errReserved(p netip.Prefix) error { return fmt.Errorf("lpm: prefix %v: %w", p, ErrReservedValue) }

func (w *writer) writeRoot(r rec) uint32 {
	n := uint32(len(w.nodes) / recWords)
	w.nodes = appendDouble(w.nodes, r[:]...)
	return n
}

func (w *writer) recAt(n uint32) rec {
	return rec(w.nodes[uint(n)*recWords : uint(n+1)*recWords])
}

// childRec returns the record of the child at slot s of the node old.
func (w *writer) childRec(old *rec, s uint) rec {
	g := s >> 6
	vec := old[g*grpWords]
	r := uint32(bits.OnesCount64(vec & (1<<(s&63) - 1)))
	return w.recAt(uint32(old[g*grpWords+2]>>32) + r)
}

// free counts the blocks of a record that is being dropped as dead.
func (w *writer) free(r *rec) {
	for g := range 4 {
		w.deadN += bits.OnesCount64(r[g*grpWords]) * recWords
		w.deadL += bits.OnesCount64(r[g*grpWords+1])
	}
}

// encode returns the record of rn given its slot values and the records of
// the children that changed (over, in slot order); every other child is
// copied from old's blocks. Blocks whose content did not change are reused.
func (w *writer) encode(old *rec, rn *rnode, val *[256]uint32, over []override, gmask uint) rec {
	out := *old
	var runs [64]uint32
	oi := 0
	for g := range 4 {
		if gmask&(1<<g) == 0 {
			continue // unchanged: same children, no override, same leaves
		}
		ov, ol, ob := old[g*grpWords], old[g*grpWords+1], old[g*grpWords+2]
		nv := rn.kids[g]
		cb := uint32(ob >> 32)
		touched := oi < len(over) && over[oi].slot>>6 == uint(g)
		switch {
		case nv == 0:
			cb = 0
			w.deadN += bits.OnesCount64(ov) * recWords
		case nv != ov || touched:
			w.deadN += bits.OnesCount64(ov) * recWords
			cb = uint32(len(w.nodes) / recWords)
			for v := nv; v != 0; v &= v - 1 {
				i := uint(bits.TrailingZeros64(v))
				s := uint(g)<<6 | i
				if oi < len(over) && over[oi].slot == s {
					w.nodes = appendDouble(w.nodes, over[oi].rec[:]...)
					oi++
					continue
				}
				r := uint(ob>>32) + uint(bits.OnesCount64(ov&(1<<i-1)))
				w.nodes = appendDouble(w.nodes, w.nodes[r*recWords:(r+1)*recWords]...)
			}
		}
		// Leaf runs skip child slots, so a child does not split a run.
		var lv uint64
		cnt := 0
		have := false
		var last uint32
		for i := range 64 {
			if nv&(1<<i) != 0 {
				continue
			}
			v := val[g<<6|i]
			if !have || v != last {
				lv |= 1 << i
				runs[cnt] = v
				cnt++
				last, have = v, true
			}
		}
		lb := uint32(ob)
		if lv != ol || !slices.Equal(w.leaves[lb:lb+uint32(cnt)], runs[:cnt]) {
			w.deadL += bits.OnesCount64(ol)
			lb = 0
			if cnt > 0 {
				lb = uint32(len(w.leaves))
				w.leaves = appendDouble(w.leaves, runs[:cnt]...)
			}
		}
		out[g*grpWords] = nv
		out[g*grpWords+1] = lv
		out[g*grpWords+2] = uint64(cb)<<32 | uint64(lb)
	}
	return out
}

// op is one prefix change walking down the trie.
type op struct {
	key    [16]byte
	target int    // level whose stride holds the prefix
	idx    uint32 // index of the prefix in the target node
	v      uint32
	del    bool
	found  bool // the prefix existed before
}

func newOp(p netip.Prefix, v uint32, del bool) op {
	o := op{key: p.Addr().As16(), v: v, del: del}
	if p.Addr().Is4() {
		a := p.Addr().As4()
		o.key = [16]byte{}
		copy(o.key[:], a[:])
	}
	L := p.Bits()
	o.target = (L - 1) / 8
	l := uint(L - 8*o.target)
	o.idx = 1<<l | uint32(o.key[o.target])>>(8-l)
	return o
}

// update applies an insert or delete of p (already masked) and reports
// whether the table changed.
func (w *writer) update(p netip.Prefix, v uint32, del bool) bool {
	w.sc = scratchPool.Get().(*scratch)
	defer func() { scratchPool.Put(w.sc); w.sc = nil }()
	f := family(p)
	old := w.recAt(w.root[f])
	var nr rec
	if p.Bits() == 0 {
		was := w.def[f]
		nv := v
		if del {
			nv = NoValue
		}
		if was == nv {
			return false
		}
		switch {
		case was == NoValue:
			w.n[f]++
		case del:
			w.n[f]--
		}
		w.def[f] = nv
		nr = w.pushDown(&old, w.rib[f], 0, was, nv)
	} else {
		o := newOp(p, v, del)
		r, changed, _ := w.modify(&old, w.rib[f], 0, w.def[f], &o)
		if !changed {
			return o.found && !del
		}
		switch {
		case !o.found:
			w.n[f]++
		case del:
			w.n[f]--
		}
		nr = r
	}
	w.deadN += recWords
	w.root[f] = w.writeRoot(nr)
	w.maybeCompact()
	return true
}

// modify applies o below the node old (whose routes are rn and whose
// inherited value is inh). It returns the new record, whether anything
// changed, and whether the node became empty and should be dropped.
func (w *writer) modify(old *rec, rn *rnode, lvl int, inh uint32, o *op) (rec, bool, bool) {
	lv := &w.sc.lv[lvl]
	if lvl < o.target {
		s := uint(o.key[lvl])
		var crn *rnode
		var crec rec
		created := false
		if rn.hasKid(s) {
			crn = rn.child[rn.rank(s)]
			crec = w.childRec(old, s)
		} else {
			if o.del {
				return *old, false, false
			}
			crn, created = &rnode{}, true
		}
		nc, changed, empty := w.modify(&crec, crn, lvl+1, rn.covering(s, inh), o)
		if !changed {
			return *old, false, false
		}
		var over []override
		switch {
		case empty:
			rn.delKid(s)
		case created:
			rn.addKid(s, crn)
			over = append(lv.over[:0], override{s, nc})
		default:
			over = append(lv.over[:0], override{s, nc})
		}
		if lvl > 0 && rn.empty() {
			w.free(old)
			return rec{}, true, true
		}
		gm := uint(1) << (s >> 6)
		if *old == (rec{}) { // a new node: every group needs its leaves
			gm = 0xf
		}
		rn.pushedGroups(inh, &lv.val, gm)
		return w.encode(old, rn, &lv.val, over, gm), true, false
	}
	gm := groupsOf(o.idx)
	if *old == (rec{}) {
		gm = 0xf
	}
	rn.pushedGroups(inh, &lv.old, gm)
	if o.del {
		if !rn.delPfx(o.idx) {
			return *old, false, false
		}
		o.found = true
		if lvl > 0 && rn.empty() {
			w.free(old)
			return rec{}, true, true
		}
	} else {
		existed, changed := rn.setPfx(o.idx, o.v)
		o.found = existed
		if !changed {
			return *old, false, false
		}
	}
	rn.pushedGroups(inh, &lv.val, gm)
	return w.rewrite(old, rn, lvl, gm), true, false
}

// rewrite re-encodes node old after its slot values moved from lv.old to
// lv.val, pushing the new inherited value into every child whose slot
// value changed.
func (w *writer) rewrite(old *rec, rn *rnode, lvl int, gm uint) rec {
	lv := &w.sc.lv[lvl]
	over := lv.over[:0]
	r := 0
	for g := range 4 {
		if gm&(1<<g) == 0 {
			r += bits.OnesCount64(rn.kids[g])
			continue
		}
		for v := rn.kids[g]; v != 0; v &= v - 1 {
			s := uint(g)<<6 | uint(bits.TrailingZeros64(v))
			if lv.old[s] != lv.val[s] {
				crec := w.childRec(old, s)
				over = append(over, override{s, w.pushDown(&crec, rn.child[r], lvl+1, lv.old[s], lv.val[s])})
			}
			r++
		}
	}
	lv.over = over
	return w.encode(old, rn, &lv.val, over, gm)
}

// pushDown re-encodes the subtree old after its inherited value changed.
func (w *writer) pushDown(old *rec, rn *rnode, lvl int, was, now uint32) rec {
	lv := &w.sc.lv[lvl]
	rn.pushed(was, &lv.old)
	rn.pushed(now, &lv.val)
	return w.rewrite(old, rn, lvl, 0xf)
}

func (w *writer) get(p netip.Prefix) (uint32, bool) {
	f := family(p)
	if p.Bits() == 0 {
		return w.def[f], w.def[f] != NoValue
	}
	o := newOp(p, 0, false)
	rn := w.rib[f]
	for lvl := 0; lvl < o.target; lvl++ {
		s := uint(o.key[lvl])
		if !rn.hasKid(s) {
			return 0, false
		}
		rn = rn.child[rn.rank(s)]
	}
	i, ok := rn.findPfx(o.idx)
	if !ok {
		return 0, false
	}
	return uint32(rn.pfx[i]), true
}

// liveBytes is the size of the reachable part of nodes and leaves.
func (w *writer) liveBytes() int { return len(w.nodes)*8 + len(w.leaves)*4 - w.deadBytes() }

func (w *writer) deadBytes() int { return w.deadN*8 + w.deadL*4 }

// maybeCompact copies the live trie into fresh arrays once dead blocks
// outweigh live ones, so that the arrays stay within about twice the live
// size and the cost of copying is spread over many updates.
func (w *writer) maybeCompact() {
	if d := w.deadBytes(); d < 16<<10 || d < w.liveBytes() {
		return
	}
	w.compact()
}

func (w *writer) compact() {
	src := *w
	// Headroom for the dead blocks of the next updates spares a regrowth
	// copy of the whole array between compactions.
	ln, ll := len(src.nodes)-src.deadN, len(src.leaves)-src.deadL
	w.nodes = make([]uint64, 0, 2*ln+2*recWords)
	w.leaves = make([]uint32, 0, 2*ll+64)
	for f := range 2 {
		r := src.recAt(src.root[f])
		w.root[f] = w.writeRoot(w.copyRec(&src, &r))
	}
	w.deadN, w.deadL = 0, 0
}

// copyRec copies the subtree of r from src's arrays into w's, reserving
// each children block before filling it so that siblings stay contiguous.
func (w *writer) copyRec(src *writer, r *rec) rec {
	out := *r
	for g := range 4 {
		vec, lvec, b := r[g*grpWords], r[g*grpWords+1], r[g*grpWords+2]
		lb, cnt := uint32(b), uint32(bits.OnesCount64(lvec))
		nlb := uint32(0)
		if cnt > 0 {
			nlb = uint32(len(w.leaves))
			w.leaves = append(w.leaves, src.leaves[lb:lb+cnt]...)
		}
		ncb := uint32(0)
		if k := bits.OnesCount64(vec); k > 0 {
			ncb = uint32(len(w.nodes) / recWords)
			w.nodes = grow(w.nodes, k*recWords)
			cb := uint32(b >> 32)
			for i := range uint32(k) {
				c := src.recAt(cb + i)
				nc := w.copyRec(src, &c)
				copy(w.nodes[uint(ncb+i)*recWords:], nc[:])
			}
		}
		out[g*grpWords+2] = uint64(ncb)<<32 | uint64(nlb)
	}
	return out
}

// appendDouble is append that doubles a full array instead of growing it
// by Go's 1.25 for large slices: every regrowth copies the whole table, so
// it must be rare.
func appendDouble[T uint32 | uint64](s []T, x ...T) []T {
	if len(s)+len(x) > cap(s) {
		n := make([]T, len(s), 2*cap(s)+len(x)+64)
		copy(n, s)
		s = n
	}
	return append(s, x...)
}

// grow extends s by n words to be overwritten by the caller.
func grow(s []uint64, n int) []uint64 {
	s = slices.Grow(s, n)
	s = s[:len(s)+n]
	clear(s[len(s)-n:])
	return s
}

// build fills an empty writer with routes: first the route trie, then one
// encoding pass.
func (w *writer) build(routes []Route) error {
	for f := range 2 {
		w.rib[f] = &rnode{}
		w.def[f] = NoValue
	}
	for _, rt := range routes {
		p := rt.Prefix
		if !p.IsValid() {
			return errInvalid(p)
		}
		if rt.Value == NoValue {
			return errReserved(p)
		}
		p = p.Masked()
		f := family(p)
		if p.Bits() == 0 {
			if w.def[f] == NoValue {
				w.n[f]++
			}
			w.def[f] = rt.Value
			continue
		}
		o := newOp(p, rt.Value, false)
		rn := w.rib[f]
		for lvl := 0; lvl < o.target; lvl++ {
			s := uint(o.key[lvl])
			if !rn.hasKid(s) {
				c := &rnode{}
				rn.addKid(s, c)
				rn = c
				continue
			}
			rn = rn.child[rn.rank(s)]
		}
		if existed, _ := rn.setPfx(o.idx, rt.Value); !existed {
			w.n[f]++
		}
	}
	w.sc = scratchPool.Get().(*scratch)
	defer func() { scratchPool.Put(w.sc); w.sc = nil }()
	words, leaves := 0, 0
	for f := range 2 {
		nn, nl := countNodes(w.rib[f])
		words += nn * recWords
		leaves += nl
	}
	w.nodes = make([]uint64, 0, words+2*recWords)
	w.leaves = make([]uint32, 0, leaves)
	for f := range 2 {
		n := w.writeRoot(rec{})
		r := w.encodeAll(w.rib[f], 0, w.def[f])
		copy(w.nodes[uint(n)*recWords:], r[:])
		w.root[f] = n
	}
	return nil
}

// countNodes estimates the array sizes of a build: nodes exactly, leaves
// as an upper bound of one run per prefix end plus one per group.
func countNodes(rn *rnode) (nodes, leaves int) {
	nodes, leaves = 1, 4+2*len(rn.pfx)
	for _, c := range rn.child {
		a, b := countNodes(c)
		nodes += a
		leaves += b
	}
	return nodes, leaves
}

// encodeAll writes the subtree rn (inheriting inh) to fresh blocks and
// returns its record.
func (w *writer) encodeAll(rn *rnode, lvl int, inh uint32) rec {
	val := &w.sc.lv[lvl].val
	rn.pushed(inh, val)
	var out rec
	var runs [64]uint32
	r := 0
	for g := range 4 {
		nv := rn.kids[g]
		cb := uint32(0)
		if k := bits.OnesCount64(nv); k > 0 {
			cb = uint32(len(w.nodes) / recWords)
			w.nodes = grow(w.nodes, k*recWords)
			i := uint32(0)
			for v := nv; v != 0; v &= v - 1 {
				s := uint(g)<<6 | uint(bits.TrailingZeros64(v))
				c := w.encodeAll(rn.child[r], lvl+1, val[s])
				copy(w.nodes[uint(cb+i)*recWords:], c[:])
				i++
				r++
			}
		}
		var lv uint64
		cnt := 0
		have := false
		var last uint32
		for i := range 64 {
			if nv&(1<<i) != 0 {
				continue
			}
			v := val[g<<6|i]
			if !have || v != last {
				lv |= 1 << i
				runs[cnt] = v
				cnt++
				last, have = v, true
			}
		}
		lb := uint32(0)
		if cnt > 0 {
			lb = uint32(len(w.leaves))
			w.leaves = append(w.leaves, runs[:cnt]...)
		}
		out[g*grpWords] = nv
		out[g*grpWords+1] = lv
		out[g*grpWords+2] = uint64(cb)<<32 | uint64(lb)
	}
	return out
}

// walk yields every route in address order, shorter prefixes first.
func (w *writer) walk(yield func(netip.Prefix, uint32) bool) {
	for f := range 2 {
		var key [16]byte
		if w.def[f] != NoValue {
			if !yield(mkPrefix(f, key, 0), w.def[f]) {
				return
			}
		}
		if !walkNode(f, w.rib[f], 0, &key, yield) {
			return
		}
	}
}

func mkPrefix(f int, key [16]byte, l int) netip.Prefix {
	if f == 0 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(key[:4])), l)
	}
	return netip.PrefixFrom(netip.AddrFrom16(key), l)
}

func walkNode(f int, rn *rnode, lvl int, key *[16]byte, yield func(netip.Prefix, uint32) bool) bool {
	// Items sort by first slot, then length; a child counts as length 9.
	type item struct {
		start, l uint
		i        int
	}
	items := make([]item, 0, len(rn.pfx)+len(rn.child))
	for i, e := range rn.pfx {
		idx := uint(e >> 32)
		l := uint(bits.Len(idx) - 1)
		items = append(items, item{(idx - 1<<l) << (8 - l), l, i})
	}
	r := 0
	for g := range 4 {
		for v := rn.kids[g]; v != 0; v &= v - 1 {
			items = append(items, item{uint(g)<<6 | uint(bits.TrailingZeros64(v)), 9, r})
			r++
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.l, b.l)
	})
	for _, it := range items {
		key[lvl] = byte(it.start)
		if it.l == 9 {
			if !walkNode(f, rn.child[it.i], lvl+1, key, yield) {
				return false
			}
		} else if !yield(mkPrefix(f, *key, 8*lvl+int(it.l)), uint32(rn.pfx[it.i])) {
			return false
		}
		key[lvl] = 0
	}
	return true
}

func (w *writer) stats() Stats {
	s := Stats{
		Prefixes:    w.n[0] + w.n[1],
		LookupBytes: w.liveBytes(),
		DeadBytes:   w.deadBytes(),
	}
	for f := range 2 {
		s.RIBBytes += ribBytes(w.rib[f])
	}
	s.Bytes = cap(w.nodes)*8 + cap(w.leaves)*4 + s.RIBBytes + int(unsafe.Sizeof(Table{})+unsafe.Sizeof(Snapshot{}))
	return s
}

func ribBytes(rn *rnode) int {
	n := int(unsafe.Sizeof(*rn)) + cap(rn.pfx)*8 + cap(rn.child)*8
	for _, c := range rn.child {
		n += ribBytes(c)
	}
	return n
}
