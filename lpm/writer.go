package lpm

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"unsafe"
)

// rec is one node record as stored in the flat node array. Word 3 (the
// spare word of group 0) holds the node's route block reference, which only
// the writer reads: offset (32 bits) | length << 32 | capacity << 48.
type rec = [recWords]uint64

const ribWord = 3

// Prefixes that end inside a node's stride are stored in the node's route
// block. A prefix of relative length l (1..8) whose l stride bits are b has
// the index 1<<l | b, so sorting by index sorts by length first, which is
// the order leaf pushing needs (longer prefixes overwrite shorter ones).

func ribRef(r *rec) (off, n, c uint32) {
	w := r[ribWord]
	return uint32(w), uint32(w>>32) & 0xffff, uint32(w >> 48)
}

func setRibRef(r *rec, off, n, c uint32) {
	r[ribWord] = uint64(off) | uint64(n)<<32 | uint64(c)<<48
}

func kidsOf(r *rec) [4]uint64 {
	return [4]uint64{r[0], r[grpWords], r[2*grpWords], r[3*grpWords]}
}

func noKids(k *[4]uint64) bool { return k[0]|k[1]|k[2]|k[3] == 0 }

// ribStore holds every node's route block: indices and values in two
// parallel arrays. Readers never see it, so the writer edits it in place
// and reuses freed power-of-two blocks at once.
type ribStore struct {
	idx  []uint16
	val  []uint32
	free [10][]uint32 // free block offsets by log2 capacity
	dead int          // entries in freed blocks that are not reusable
}

func (s *ribStore) alloc(c uint32) uint32 {
	k := bits.Len32(c - 1)
	if c == 1<<k {
		if l := s.free[k]; len(l) > 0 {
			off := l[len(l)-1]
			s.free[k] = l[:len(l)-1]
			return off
		}
	}
	off := uint32(len(s.idx))
	s.idx = appendDouble(s.idx, make([]uint16, c)...)
	s.val = appendDouble(s.val, make([]uint32, c)...)
	return off
}

func (s *ribStore) release(off, c uint32) {
	if c == 0 {
		return
	}
	if k := bits.Len32(c - 1); c == 1<<k {
		s.free[k] = append(s.free[k], off)
		return
	}
	s.dead += int(c)
}

func (s *ribStore) find(r *rec, idx uint32) (int, bool) {
	off, n, _ := ribRef(r)
	return slices.BinarySearch(s.idx[off:off+n], uint16(idx))
}

// set stores v at idx in r's block (growing it if needed) and reports
// whether idx existed and whether anything changed.
func (s *ribStore) set(r *rec, idx, v uint32) (existed, changed bool) {
	off, n, c := ribRef(r)
	i, ok := slices.BinarySearch(s.idx[off:off+n], uint16(idx))
	if ok {
		if s.val[off+uint32(i)] == v {
			return true, false
		}
		s.val[off+uint32(i)] = v
		return true, true
	}
	if n == c {
		nc := uint32(1) << bits.Len32(n) // next power of two above n
		noff := s.alloc(nc)
		copy(s.idx[noff:noff+n], s.idx[off:off+n])
		copy(s.val[noff:noff+n], s.val[off:off+n])
		s.release(off, c)
		off, c = noff, nc
	}
	at := off + uint32(i)
	copy(s.idx[at+1:off+n+1], s.idx[at:off+n])
	copy(s.val[at+1:off+n+1], s.val[at:off+n])
	s.idx[at], s.val[at] = uint16(idx), v
	setRibRef(r, off, n+1, c)
	return false, true
}

func (s *ribStore) del(r *rec, idx uint32) bool {
	off, n, c := ribRef(r)
	i, ok := slices.BinarySearch(s.idx[off:off+n], uint16(idx))
	if !ok {
		return false
	}
	at := off + uint32(i)
	copy(s.idx[at:off+n-1], s.idx[at+1:off+n])
	copy(s.val[at:off+n-1], s.val[at+1:off+n])
	if n == 1 {
		s.release(off, c)
		setRibRef(r, 0, 0, 0)
		return true
	}
	setRibRef(r, off, n-1, c)
	return true
}

// slotRange returns the slots [lo, hi) a prefix index covers.
func slotRange(idx uint32) (lo, hi uint) {
	l := uint(bits.Len32(idx) - 1)
	lo = (uint(idx) - 1<<l) << (8 - l)
	return lo, lo + 1<<(8-l)
}

// pushed writes to val the value every slot of the groups in gmask gets
// from the node's prefixes, inh where none covers it.
func (s *ribStore) pushed(r *rec, inh uint32, val *[256]uint32, gmask uint) {
	off, n, _ := ribRef(r)
	pushValues(s.idx[off:off+n], s.val[off:off+n], inh, val, gmask)
}

func pushValues(idx []uint16, vals []uint32, inh uint32, val *[256]uint32, gmask uint) {
	if gmask == 0xf {
		for i := range val {
			val[i] = inh
		}
		for j, x := range idx {
			lo, hi := slotRange(uint32(x))
			fill := val[lo:hi]
			for i := range fill {
				fill[i] = vals[j]
			}
		}
		return
	}
	// Only some groups: per length, binary-search the prefixes that
	// overlap the group, so a node with hundreds of prefixes costs little.
	for g := uint(0); g < 4; g++ {
		if gmask&(1<<g) == 0 {
			continue
		}
		gv := val[g<<6 : g<<6+64]
		for i := range gv {
			gv[i] = inh
		}
		for l := uint(1); l <= 8; l++ {
			first, last := 1<<l|(g<<6)>>(8-l), 1<<l|(g<<6+63)>>(8-l)
			j, _ := slices.BinarySearch(idx, uint16(first))
			for ; j < len(idx) && uint(idx[j]) <= last; j++ {
				lo, hi := slotRange(uint32(idx[j]))
				fill := val[max(lo, g<<6):min(hi, g<<6+64)]
				for i := range fill {
					fill[i] = vals[j]
				}
			}
		}
	}
}

// covering returns the value slot s gets from r's prefixes, inh if none.
func (s *ribStore) covering(r *rec, slot uint, inh uint32) uint32 {
	off, n, _ := ribRef(r)
	if n == 0 {
		return inh
	}
	idx, val := s.idx[off:off+n], s.val[off:off+n]
	for l := uint(8); l >= 1; l-- {
		if i, ok := slices.BinarySearch(idx, uint16(1<<l|slot>>(8-l))); ok {
			return val[i]
		}
	}
	return inh
}

// groupsOf returns the mask of groups that the prefix at idx spans.
func groupsOf(idx uint32) uint {
	lo, hi := slotRange(idx)
	m := uint(0)
	for g := lo >> 6; g <= (hi-1)>>6; g++ {
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
	def    [2]uint32 // value of 0.0.0.0/0 and ::/0, NoValue if absent
	n      [2]int
	deadN  int // words of replaced blocks in nodes
	deadL  int // entries of replaced blocks in leaves
	rib    ribStore
	sc     *scratch
	dp     [2][]uint32  // direct-pointing pools (direct.go), nil for small families
	dpTop  [2]uint32    // offset of the current top chunk in dp
	dpLive [2]int       // words of dp the current top reaches (at most)
	dirty  [2][2]uint16 // root slots [lo, hi) whose dp chunks are stale
	// ownFrom[f] is the first node record that no published snapshot
	// without direct pointing for family f can reach. Snapshots with it
	// never read a family's root and level-1 records (the direct-pointing
	// entries point at level 2), so the writer overwrites such level-1
	// records in place instead of copying their whole sibling block (up
	// to 64 records) and the root: about half the words of an update.
	ownFrom [2]uint32
	// copyAll turns the in-place overwrite off (benchmarks compare).
	copyAll bool
}

func (w *writer) init() {
	w.nodes = make([]uint64, 0, 2*recWords)
	w.leaves = make([]uint32, 0, 8)
	var val [256]uint32
	for i := range val {
		val[i] = NoValue
	}
	for f := range 2 {
		w.def[f] = NoValue
		w.root[f] = w.writeRoot(w.encode(&rec{}, [4]uint64{}, &val, nil, 0xf))
	}
}

func errInvalid(p netip.Prefix) error { return fmt.Errorf("lpm: invalid prefix %v", p) }

func errReserved(p netip.Prefix) error { return fmt.Errorf("lpm: prefix %v: %w", p, ErrReservedValue) }

// appendDouble is append that doubles a full array instead of growing it
// by Go's 1.25 for large slices: every regrowth copies the whole table, so
// it must be rare.
func appendDouble[T uint16 | uint32 | uint64](s []T, x ...T) []T {
	if len(s)+len(x) > cap(s) {
		n := make([]T, len(s), 2*cap(s)+len(x)+64)
		adviseHuge(n)
		copy(n, s)
		s = n
	}
	return append(s, x...)
}

// grow extends s by n zero words for the caller to fill.
func grow(s []uint64, n int) []uint64 {
	s = slices.Grow(s, n)
	s = s[:len(s)+n]
	clear(s[len(s)-n:])
	return s
}

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

// free counts the blocks of a record that is being dropped as dead and
// releases its route block.
func (w *writer) free(r *rec) {
	for g := range 4 {
		w.deadN += bits.OnesCount64(r[g*grpWords]) * recWords
		w.deadL += bits.OnesCount64(r[g*grpWords+1])
	}
	off, _, c := ribRef(r)
	w.rib.release(off, c)
}

// encode returns the record of a node whose children are kids, given its
// slot values and the records of the children that changed (over, in slot
// order); every other child is copied from old's blocks. Only the groups
// in gmask are rebuilt, the others are kept from old; blocks whose content
// did not change are reused. A nil val keeps the leaves of gmask's groups,
// which is right when their children are the same slots as before.
func (w *writer) encode(old *rec, kids [4]uint64, val *[256]uint32, over []override, gmask uint) rec {
	out := *old
	var runs [64]uint32
	oi := 0
	for g := range 4 {
		if gmask&(1<<g) == 0 {
			continue
		}
		ov, ol, ob := old[g*grpWords], old[g*grpWords+1], old[g*grpWords+2]
		nv := kids[g]
		cb := uint32(ob >> 32)
		touched := oi < len(over) && over[oi].slot>>6 == uint(g)
		switch {
		case nv == 0:
			cb = 0
			w.deadN += bits.OnesCount64(ov) * recWords
		case nv == ov && !touched:
			// same children, same records: keep the block
		case nv == ov: // same children, some replaced: copy the block at once
			w.deadN += bits.OnesCount64(ov) * recWords
			cb = uint32(len(w.nodes) / recWords)
			ocb := uint(ob >> 32)
			w.nodes = appendDouble(w.nodes, w.nodes[ocb*recWords:(ocb+uint(bits.OnesCount64(ov)))*recWords]...)
			for ; oi < len(over) && over[oi].slot>>6 == uint(g); oi++ {
				i := over[oi].slot & 63
				r := uint(cb) + uint(bits.OnesCount64(ov&(1<<i-1)))
				copy(w.nodes[r*recWords:(r+1)*recWords], over[oi].rec[:])
			}
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
		out[g*grpWords] = nv
		out[g*grpWords+2] = uint64(cb)<<32 | uint64(uint32(ob))
		if val == nil {
			continue // same children, so the same leaf runs
		}
		lv, cnt := leafRuns(nv, val[g<<6:g<<6+64], &runs)
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

// leafRuns compresses one group's slot values into runs. Child slots are
// skipped, so a child does not split a run.
func leafRuns(kids uint64, val []uint32, runs *[64]uint32) (lv uint64, cnt int) {
	have := false
	var last uint32
	for i := range 64 {
		if kids&(1<<i) != 0 {
			continue
		}
		if v := val[i]; !have || v != last {
			lv |= 1 << i
			runs[cnt] = v
			cnt++
			last, have = v, true
		}
	}
	return lv, cnt
}

// op is one prefix change walking down the trie.
type op struct {
	key    [16]byte
	target int    // level whose stride holds the prefix
	idx    uint32 // index of the prefix in the target node
	v      uint32
	del    bool
	found  bool // the prefix existed before
	// ownFrom is writer.ownFrom of the prefix's family: a level-1 record
	// at or above it is overwritten in place (inPlace reports it).
	ownFrom uint32
	inPlace bool
}

func newOp(p netip.Prefix, v uint32, del bool) op {
	o := op{v: v, del: del}
	if p.Addr().Is4() {
		a := p.Addr().As4()
		copy(o.key[:], a[:])
	} else {
		o.key = p.Addr().As16()
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
		nr = w.pushDown(&old, 0, was, nv)
		w.touch(f, 0, 256)
	} else {
		o := newOp(p, v, del)
		o.ownFrom = w.ownFrom[f]
		if w.copyAll {
			o.ownFrom = math.MaxUint32
		}
		r, changed, _ := w.modify(&old, 0, w.def[f], &o)
		if !changed {
			return false
		}
		switch {
		case !o.found:
			w.n[f]++
		case del:
			w.n[f]--
		}
		nr = r
		if o.target == 0 {
			lo, hi := slotRange(o.idx)
			w.touch(f, lo, hi)
		} else {
			w.touch(f, uint(o.key[0]), uint(o.key[0])+1)
		}
		if o.inPlace {
			// The root is unchanged: only its child was overwritten.
			w.maybeCompact()
			return true
		}
	}
	w.deadN += recWords
	w.root[f] = w.writeRoot(nr)
	w.maybeCompact()
	return true
}

// modify applies o below the node old, whose inherited value is inh. It
// returns the new record, whether anything changed, and whether the node
// became empty and should be dropped.
func (w *writer) modify(old *rec, lvl int, inh uint32, o *op) (rec, bool, bool) {
	lv := &w.sc.lv[lvl]
	fresh := *old == rec{} // a new node: every group needs its leaves
	if lvl < o.target {
		s := uint(o.key[lvl])
		kids := kidsOf(old)
		bit := uint64(1) << (s & 63)
		var crec rec
		has := kids[s>>6]&bit != 0
		if has {
			crec = w.childRec(old, s)
		} else if o.del {
			return *old, false, false
		}
		nc, changed, empty := w.modify(&crec, lvl+1, w.rib.covering(old, s, inh), o)
		if !changed {
			return *old, false, false
		}
		if lvl == 0 && has && !empty {
			// A level-1 record no snapshot without direct pointing
			// reaches: overwrite it, the root stays as it is.
			g := s >> 6
			c := uint32(old[g*grpWords+2]>>32) + uint32(bits.OnesCount64(old[g*grpWords]&(bit-1)))
			if c >= o.ownFrom {
				copy(w.nodes[uint(c)*recWords:(uint(c)+1)*recWords], nc[:])
				o.inPlace = true
				return *old, true, false
			}
		}
		var over []override
		if empty {
			kids[s>>6] &^= bit
		} else {
			kids[s>>6] |= bit
			over = append(lv.over[:0], override{s, nc})
		}
		if _, n, _ := ribRef(old); lvl > 0 && n == 0 && noKids(&kids) {
			w.free(old)
			return rec{}, true, true
		}
		gm := uint(1) << (s >> 6)
		if has && !empty {
			return w.encode(old, kids, nil, over, gm), true, false
		}
		if fresh {
			gm = 0xf
		}
		w.rib.pushed(old, inh, &lv.val, gm)
		return w.encode(old, kids, &lv.val, over, gm), true, false
	}
	gm := groupsOf(o.idx)
	if fresh {
		gm = 0xf
	}
	w.rib.pushed(old, inh, &lv.old, gm)
	cur := *old
	if o.del {
		if !w.rib.del(&cur, o.idx) {
			return *old, false, false
		}
		o.found = true
		kids := kidsOf(old)
		if _, n, _ := ribRef(&cur); lvl > 0 && n == 0 && noKids(&kids) {
			w.free(&cur) // its route block is already released
			return rec{}, true, true
		}
	} else {
		existed, changed := w.rib.set(&cur, o.idx, o.v)
		o.found = existed
		if !changed {
			return *old, false, false
		}
	}
	w.rib.pushed(&cur, inh, &lv.val, gm)
	return w.rewrite(&cur, lvl, gm), true, false
}

// rewrite re-encodes node old after its slot values moved from lv.old to
// lv.val (in the groups of gm), pushing the new inherited value into every
// child whose slot value changed.
func (w *writer) rewrite(old *rec, lvl int, gm uint) rec {
	lv := &w.sc.lv[lvl]
	over := lv.over[:0]
	kids := kidsOf(old)
	for g := range 4 {
		if gm&(1<<g) == 0 {
			continue
		}
		for v := kids[g]; v != 0; v &= v - 1 {
			s := uint(g)<<6 | uint(bits.TrailingZeros64(v))
			if lv.old[s] != lv.val[s] {
				crec := w.childRec(old, s)
				over = append(over, override{s, w.pushDown(&crec, lvl+1, lv.old[s], lv.val[s])})
			}
		}
	}
	lv.over = over
	return w.encode(old, kids, &lv.val, over, gm)
}

// pushDown re-encodes the subtree old after its inherited value changed.
func (w *writer) pushDown(old *rec, lvl int, was, now uint32) rec {
	lv := &w.sc.lv[lvl]
	w.rib.pushed(old, was, &lv.old, 0xf)
	w.rib.pushed(old, now, &lv.val, 0xf)
	return w.rewrite(old, lvl, 0xf)
}

func (w *writer) get(p netip.Prefix) (uint32, bool) {
	f := family(p)
	if p.Bits() == 0 {
		return w.def[f], w.def[f] != NoValue
	}
	o := newOp(p, 0, false)
	r := w.recAt(w.root[f])
	for lvl := 0; lvl < o.target; lvl++ {
		s := uint(o.key[lvl])
		if r[(s>>6)*grpWords]&(1<<(s&63)) == 0 {
			return 0, false
		}
		r = w.childRec(&r, s)
	}
	i, ok := w.rib.find(&r, o.idx)
	if !ok {
		return 0, false
	}
	off, _, _ := ribRef(&r)
	return w.rib.val[off+uint32(i)], true
}

// liveBytes is the size of the reachable part of nodes and leaves.
func (w *writer) liveBytes() int { return len(w.nodes)*8 + len(w.leaves)*4 - w.deadBytes() }

func (w *writer) deadBytes() int { return w.deadN*8 + w.deadL*4 }

// maybeCompact copies the live trie into fresh arrays once dead blocks
// reach twice the live ones, so that the arrays stay within about three
// times the live size and the cost of copying (O(live)) is spread over at least as many
// updates as it takes to produce that much garbage.
func (w *writer) maybeCompact() {
	// Each array is compacted before its dead part outgrows twice its live part,
	// which is also before it outgrows the capacity compact gave it.
	liveN, liveL := len(w.nodes)-w.deadN, len(w.leaves)-w.deadL
	waste := len(w.rib.idx) - w.ribLive()
	if (w.deadBytes() >= 16<<10 && (w.deadN >= 2*liveN || w.deadL >= 2*liveL)) ||
		(waste >= 4096 && waste > 2*w.ribLive()) {
		w.compact()
	}
}

// ribLive is the number of route block entries in use.
func (w *writer) ribLive() int {
	n := w.n[0] + w.n[1]
	for _, d := range w.def {
		if d != NoValue {
			n--
		}
	}
	return n
}

func (w *writer) compact() {
	src := *w
	// Headroom for the dead blocks of the next updates spares a regrowth
	// copy of the whole array between compactions.
	ln, ll := len(src.nodes)-src.deadN, len(src.leaves)-src.deadL
	w.nodes = make([]uint64, 0, 3*ln+ln/4+2*recWords)
	w.leaves = make([]uint32, 0, 3*ll+ll/4+64)
	adviseHuge(w.nodes)
	adviseHuge(w.leaves)
	w.rib = ribStore{}
	if live := w.ribLive(); len(src.rib.idx)-live > live/4 {
		// Route blocks are copied too when many are unused.
		w.rib.idx = make([]uint16, 0, live)
		w.rib.val = make([]uint32, 0, live)
	} else {
		w.rib = src.rib
		src.rib = ribStore{}
	}
	for f := range 2 {
		w.root[f] = w.writeRoot(w.copyRec(&src, src.root[f]))
	}
	w.deadN, w.deadL = 0, 0
	w.ownFrom = [2]uint32{} // fresh arrays no snapshot has seen yet
	w.touchAll()            // every record moved
}

// copyRec copies the subtree of record n from src's arrays into w's, reserving
// each children block before filling it so that siblings stay contiguous.
// Route blocks move too when src still owns them.
func (w *writer) copyRec(src *writer, n uint32) rec {
	// By index, not by *rec: a pointer to a local record passed down the
	// recursion escapes, which cost one heap allocation per copied node
	// (~95 per update, amortized) and the GC work that goes with them.
	r := src.recAt(n)
	out := r
	if src.rib.idx != nil {
		off, cnt, _ := ribRef(&r)
		noff := uint32(len(w.rib.idx))
		w.rib.idx = append(w.rib.idx, src.rib.idx[off:off+cnt]...)
		w.rib.val = append(w.rib.val, src.rib.val[off:off+cnt]...)
		setRibRef(&out, noff, cnt, cnt)
	}
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
				nc := w.copyRec(src, cb+i)
				copy(w.nodes[uint(ncb+i)*recWords:], nc[:])
			}
		}
		out[g*grpWords+2] = uint64(ncb)<<32 | uint64(nlb)
	}
	return out
}

// bnode is a node of the temporary trie Build fills before encoding.
type bnode struct {
	pfx   []uint64 // index<<32 | value, sorted by index
	kids  [4]uint64
	child []*bnode // in slot order
}

func (b *bnode) rank(s uint) int {
	n := 0
	for g := uint(0); g < s>>6; g++ {
		n += bits.OnesCount64(b.kids[g])
	}
	return n + bits.OnesCount64(b.kids[s>>6]&(1<<(s&63)-1))
}

// build fills an empty writer with routes: first a temporary trie, then
// one encoding pass into exactly sized arrays.
func (w *writer) build(routes []Route) error {
	var roots [2]bnode
	w.def = [2]uint32{NoValue, NoValue}
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
		b := &roots[f]
		for lvl := 0; lvl < o.target; lvl++ {
			s := uint(o.key[lvl])
			i := b.rank(s)
			if b.kids[s>>6]&(1<<(s&63)) == 0 {
				b.kids[s>>6] |= 1 << (s & 63)
				b.child = slices.Insert(b.child, i, &bnode{})
			}
			b = b.child[i]
		}
		e := uint64(o.idx)<<32 | uint64(rt.Value)
		i, ok := slices.BinarySearchFunc(b.pfx, o.idx, func(e uint64, idx uint32) int {
			return cmp.Compare(uint32(e>>32), idx)
		})
		if ok {
			b.pfx[i] = e
			continue
		}
		b.pfx = slices.Insert(b.pfx, i, e)
		w.n[f]++
	}
	w.sc = scratchPool.Get().(*scratch)
	defer func() { scratchPool.Put(w.sc); w.sc = nil }()
	var nodes, leaves int
	for f := range roots {
		nn, nl := countNodes(&roots[f])
		nodes += nn
		leaves += nl
	}
	n := w.n[0] + w.n[1]
	w.nodes = make([]uint64, 0, nodes*recWords)
	w.leaves = make([]uint32, 0, leaves)
	adviseHuge(w.nodes)
	adviseHuge(w.leaves)
	w.rib.idx = make([]uint16, 0, n)
	w.rib.val = make([]uint32, 0, n)
	for f := range roots {
		root := w.writeRoot(rec{})
		r := w.encodeAll(&roots[f], 0, w.def[f])
		copy(w.nodes[uint(root)*recWords:], r[:])
		w.root[f] = root
	}
	if cap(w.leaves)-len(w.leaves) > len(w.leaves)/32 {
		w.leaves = slices.Clone(w.leaves) // the estimate was loose
		adviseHuge(w.leaves)
	}
	return nil
}

// countNodes sizes a build: nodes exactly, leaves as an upper bound of one
// run per group plus two per prefix.
func countNodes(b *bnode) (nodes, leaves int) {
	nodes, leaves = 1, 4+2*len(b.pfx)
	for _, c := range b.child {
		x, y := countNodes(c)
		nodes += x
		leaves += y
	}
	return nodes, leaves
}

// encodeAll writes the subtree b (inheriting inh) to fresh blocks and
// returns its record.
func (w *writer) encodeAll(b *bnode, lvl int, inh uint32) rec {
	var out rec
	off := uint32(len(w.rib.idx))
	for _, e := range b.pfx {
		w.rib.idx = append(w.rib.idx, uint16(e>>32))
		w.rib.val = append(w.rib.val, uint32(e))
	}
	n := uint32(len(b.pfx))
	if n == 0 {
		off = 0
	}
	setRibRef(&out, off, n, n)
	val := &w.sc.lv[lvl].val
	pushValues(w.rib.idx[off:off+n], w.rib.val[off:off+n], inh, val, 0xf)
	b.pfx = nil // the route block has it now
	var runs [64]uint32
	r := 0
	for g := range 4 {
		nv := b.kids[g]
		cb := uint32(0)
		if k := bits.OnesCount64(nv); k > 0 {
			cb = uint32(len(w.nodes) / recWords)
			w.nodes = grow(w.nodes, k*recWords)
			i := uint32(0)
			for v := nv; v != 0; v &= v - 1 {
				s := uint(g)<<6 | uint(bits.TrailingZeros64(v))
				c := w.encodeAll(b.child[r], lvl+1, val[s])
				b.child[r] = nil
				copy(w.nodes[uint(cb+i)*recWords:], c[:])
				i++
				r++
			}
		}
		lv, cnt := leafRuns(nv, val[g<<6:g<<6+64], &runs)
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
		r := w.recAt(w.root[f])
		if !w.walkNode(f, &r, 0, &key, yield) {
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

func (w *writer) walkNode(f int, r *rec, lvl int, key *[16]byte, yield func(netip.Prefix, uint32) bool) bool {
	// Items sort by first slot, then length; a child counts as length 9.
	type item struct {
		start, l uint
		v        uint32
	}
	off, n, _ := ribRef(r)
	kids := kidsOf(r)
	items := make([]item, 0, int(n)+4)
	for i := off; i < off+n; i++ {
		idx := uint(w.rib.idx[i])
		l := uint(bits.Len(idx) - 1)
		items = append(items, item{(idx - 1<<l) << (8 - l), l, w.rib.val[i]})
	}
	for g := range 4 {
		for v := kids[g]; v != 0; v &= v - 1 {
			items = append(items, item{uint(g)<<6 | uint(bits.TrailingZeros64(v)), 9, 0})
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
			c := w.childRec(r, it.start)
			if !w.walkNode(f, &c, lvl+1, key, yield) {
				return false
			}
		} else if !yield(mkPrefix(f, *key, 8*lvl+int(it.l)), it.v) {
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
		RIBBytes:    cap(w.rib.idx)*2 + cap(w.rib.val)*4,
	}
	for _, l := range w.rib.free {
		s.RIBBytes += cap(l) * 4
	}
	s.Bytes = cap(w.nodes)*8 + cap(w.leaves)*4 + s.RIBBytes + int(unsafe.Sizeof(Table{})+unsafe.Sizeof(Snapshot{}))
	for f, d := range w.dp { // direct pointing: lookup structure too
		if d != nil {
			s.LookupBytes += w.dpLive[f] * 4
			s.Bytes += cap(d) * 4
		}
	}
	return s
}
