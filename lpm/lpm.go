// Package lpm is a longest-prefix-match table for IPv4 and IPv6 prefixes
// with uint32 values, built for a packet hot path that reads from several
// goroutines while one control-plane goroutine changes routes.
//
// # Structure
//
// Both address families use the same multibit trie with 8-bit strides
// (4 levels for IPv4, 16 for IPv6). A node covers 256 slots and is stored
// as four poptrie groups (Asai & Ohara, SIGCOMM 2015) of 64 slots each:
//
//	vec     bit i set: slot i has a child node
//	leafvec bit i set: slot i starts a new run of equal leaf values
//	bases   child block index (high 32 bits) | leaf block index (low 32 bits)
//
// A group's children sit contiguously in one block, so the child for slot i
// is base+popcount(vec below i) and a lookup follows no pointer. Leaves are
// pushed: every slot that has no child holds the value of the longest prefix
// covering it, and runs of equal values are stored once (leafvec), which is
// what keeps a full Internet table small. Node records live in one flat
// []uint64 and leaf values in one flat []uint32: no Go pointers, so the
// garbage collector never scans them, and a lookup is a few dependent loads
// plus popcounts with no allocation.
//
// A family with many routes (16 384 or more, so a per-VPC table stays at a
// few kilobytes) also gets a direct-pointing table on its first 16 bits
// (poptrie's direct pointing, see direct.go): a lookup starts at level 2,
// an IPv4 lookup reads at most two nodes and one leaf. Lookup4Batch and
// Lookup6Batch walk a burst level by level without branching on loaded
// data, so the cache misses of the burst overlap.
//
// # Concurrency: copy-on-write snapshots
//
// Readers load an immutable snapshot through an atomic.Pointer and never
// lock. The single writer (writers are serialised by a mutex) never modifies
// a word that a published snapshot reads: an update appends new copies
// of the nodes on the touched path (and of subtrees whose inherited leaf
// value changed) to the end of the flat arrays, then publishes a new
// snapshot with the new root. (One exception: a snapshot with direct
// pointing never reads its family's root and level-1 records, so a level-1
// record that no snapshot without direct pointing reaches is overwritten in
// place, which spares copying its sibling block and the root; see
// writer.ownFrom.) Readers of the old snapshot keep reading the
// old words, which stay untouched; when an append has to grow an array, the
// old backing array stays alive for them through the garbage collector.
// Replaced blocks are never reused in place, because the writer cannot know
// when the last reader of an old snapshot has finished; instead, when the
// dead words reach twice the live ones, the writer copies the live trie into
// fresh arrays (compaction) and publishes that. Each lookup therefore sees
// the table either entirely before or entirely after any update.
//
// The routes themselves (needed for Delete, iteration and recomputing pushed
// leaves) are kept by the writer in per-node blocks of two more flat arrays
// (a 2-byte index and a 4-byte value per prefix), referenced from a spare
// word of each node record. Readers never touch them, so the writer edits
// them in place.
//
// An update costs a few microseconds on a full table: the touched path, the
// sibling blocks it sits in, and the pushed leaves of the covered range. A
// short prefix covering many routes (a default route) rewrites the leaves of
// its whole subtree. Large arrays are advised to use transparent huge pages
// on Linux, because random lookups over many megabytes otherwise miss the
// TLB. See BENCH.md for figures.
//
// # Values
//
// Values are uint32 below [NoValue]; NoValue marks "no route" inside leaves.
// IPv4-mapped IPv6 addresses and prefixes are IPv6 here, as in net/netip.
package lpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/peergate/peergate/internal/prefetch"
)

// NoValue is reserved: it marks "no route" in the lookup structure, so
// Insert rejects it as a value.
const NoValue = math.MaxUint32

const (
	recWords = 16 // words per node record: 4 groups of 4 words
	grpWords = 4  // vec, leafvec, bases, spare
)

// ErrReservedValue is returned by Insert for the value NoValue.
var ErrReservedValue = errors.New("lpm: value 0xffffffff is reserved")

// Route is one prefix and its value, the unit of Build and Load.
type Route struct {
	Prefix netip.Prefix
	Value  uint32
}

// Table maps prefixes to uint32 values. Lookups are lock-free and safe
// concurrently with one another and with Insert, Delete and Load. The zero
// Table is an empty table, but New is cheaper for the first lookup.
type Table struct {
	snap atomic.Pointer[Snapshot]
	mu   sync.Mutex // serialises writers and iteration
	w    writer
	// dpMin overrides defaultDirectMin (tests use 1 so that small tables
	// exercise direct pointing); 0 keeps the default.
	dpMin int
}

// Snapshot is an immutable view of a Table at one point in time. The hot
// path loads one per burst (Table.Snapshot) and looks up every packet of
// the burst in it.
type Snapshot struct {
	nodes  []uint64
	leaves []uint32
	root   [2]uint32 // node index of the IPv4 and IPv6 roots
	n      [2]int
	dp     [2][]uint32 // first-16-bit direct pointing (direct.go), nil when small
	dpTop  [2]uint32
	// walk: the batch lookups walk level by level (a large table, whose
	// lookups miss the caches); a small one is looked up address by
	// address (see walkMin).
	walk bool
}

// walkMin is the size of node and leaf arrays from which the batch lookups
// walk a burst level by level. The walk exists to overlap the cache misses
// of a burst's lookups; a table that small stays in the caches of a core
// that uses it (a VPC's own routes), and there the walk's bookkeeping
// (lists, prefetches, one pass per level) costs 2-3x what plain lookups
// one after the other do (BenchmarkBatchSmallTable).
const walkMin = 1 << 20

// New returns an empty table. An empty table takes well under a kilobyte.
func New() *Table {
	t := &Table{}
	t.w.init()
	t.publish()
	return t
}

// Build returns a table holding routes. It encodes the whole trie in one
// pass, which is much faster than inserting one route at a time; input in
// prefix order (address, then length) is fastest. A later duplicate prefix
// replaces an earlier one.
func Build(routes []Route) (*Table, error) {
	t := &Table{}
	if err := t.w.build(routes); err != nil {
		return nil, err
	}
	t.publish()
	return t, nil
}

// Load atomically replaces the whole content of t with routes: readers see
// either the old table or the new one. On error t is unchanged.
func (t *Table) Load(routes []Route) error {
	var w writer
	if err := w.build(routes); err != nil {
		return err
	}
	t.mu.Lock()
	t.w = w
	t.publish()
	t.mu.Unlock()
	return nil
}

// ready initialises a zero Table; the caller holds t.mu.
func (t *Table) ready() {
	if t.w.nodes == nil {
		t.w.init()
		t.publish()
	}
}

// snapshot returns the current snapshot, the empty one for a zero Table.
func (t *Table) snapshot() *Snapshot {
	if s := t.snap.Load(); s != nil {
		return s
	}
	t.mu.Lock()
	t.ready()
	t.mu.Unlock()
	return t.snap.Load()
}

func (t *Table) publish() {
	w := &t.w
	w.syncDP(t.dpMin)
	for f, d := range w.dp {
		if d == nil {
			// This snapshot reads the root and level-1 records: none of
			// the records it reaches may be overwritten from now on.
			w.ownFrom[f] = uint32(len(w.nodes) / recWords)
		}
	}
	walk := len(w.nodes)*8+len(w.leaves)*4 >= walkMin
	t.snap.Store(&Snapshot{nodes: w.nodes, leaves: w.leaves, root: w.root, n: w.n, dp: w.dp, dpTop: w.dpTop, walk: walk})
}

func family(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

// Insert adds p with value v, or replaces the value of p.
func (t *Table) Insert(p netip.Prefix, v uint32) error {
	if !p.IsValid() {
		return fmt.Errorf("lpm: insert: invalid prefix %v", p)
	}
	if v == NoValue {
		return fmt.Errorf("lpm: insert %v: %w", p, ErrReservedValue)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready()
	if t.w.update(p.Masked(), v, false) {
		t.publish()
	}
	return nil
}

// Delete removes p and reports whether it was present.
func (t *Table) Delete(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready()
	if !t.w.update(p.Masked(), 0, true) {
		return false
	}
	t.publish()
	return true
}

// Get returns the value stored for exactly p.
func (t *Table) Get(p netip.Prefix) (uint32, bool) {
	if !p.IsValid() {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready()
	return t.w.get(p.Masked())
}

// Snapshot returns the current immutable view of t.
func (t *Table) Snapshot() *Snapshot { return t.snapshot() }

// Len returns the number of prefixes in t.
func (t *Table) Len() int { s := t.snapshot(); return s.n[0] + s.n[1] }

// Len4 returns the number of IPv4 prefixes in t.
func (t *Table) Len4() int { return t.snapshot().n[0] }

// Len6 returns the number of IPv6 prefixes in t.
func (t *Table) Len6() int { return t.snapshot().n[1] }

// Lookup returns the value of the longest prefix containing a.
func (t *Table) Lookup(a netip.Addr) (uint32, bool) { return t.snapshot().Lookup(a) }

// Lookup4 looks up an IPv4 address given in host byte order.
func (t *Table) Lookup4(a uint32) (uint32, bool) { return t.snapshot().Lookup4(a) }

// Lookup6 looks up an IPv6 address given as its high and low 64 bits.
func (t *Table) Lookup6(hi, lo uint64) (uint32, bool) { return t.snapshot().Lookup6(hi, lo) }

// Lookup4Batch looks up addrs (IPv4, host byte order) in one snapshot and
// writes each result to vals, NoValue where no prefix matches. It returns
// the number of addresses that matched. vals must be at least as long as
// addrs.
func (t *Table) Lookup4Batch(addrs, vals []uint32) int {
	return t.snapshot().Lookup4Batch(addrs, vals)
}

// Lookup6Batch is Lookup4Batch for IPv6 addresses given as their high and
// low 64 bits (hi[i], lo[i]).
func (t *Table) Lookup6Batch(hi, lo []uint64, vals []uint32) int {
	return t.snapshot().Lookup6Batch(hi, lo, vals)
}

// Lookup returns the value of the longest prefix containing a.
func (s *Snapshot) Lookup(a netip.Addr) (uint32, bool) {
	if a.Is4() {
		b := a.As4()
		return s.Lookup4(binary.BigEndian.Uint32(b[:]))
	}
	if !a.IsValid() {
		return 0, false
	}
	b := a.As16()
	return s.Lookup6(binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]))
}

// Lookup4 looks up an IPv4 address given in host byte order.
func (s *Snapshot) Lookup4(a uint32) (uint32, bool) {
	if v := s.lookup4(a); v != NoValue {
		return v, true
	}
	return 0, false
}

// Lookup4Batch is Table.Lookup4Batch on this snapshot. It walks the
// addresses level by level, 32 at a time, instead of one address after the
// other: the node loads of different addresses do not depend on each other,
// and the walk has no branch on loaded data (the addresses that descend are
// compacted into a list with a conditional increment), so the CPU keeps
// many cache misses in flight instead of discarding them at every
// mispredicted branch. Leaves are loaded last, all 32 at once. A table
// below walkMin, which has no misses to overlap, is looked up address by
// address instead.
func (s *Snapshot) Lookup4Batch(addrs, vals []uint32) int {
	vals = vals[:len(addrs)]
	hits := 0
	if !s.walk {
		for i, a := range addrs {
			v := s.lookup4(a)
			vals[i] = v
			if v != NoValue {
				hits++
			}
		}
		return hits
	}
	for len(addrs) > 0 {
		n := min(len(addrs), batchSize)
		hits += s.batch4(addrs[:n], vals[:n])
		addrs, vals = addrs[n:], vals[n:]
	}
	return hits
}

const batchSize = 32

// batchState is one burst's walk: the node each pending address is at, the
// leaf index it would end on, and the list of addresses still descending.
type batchState struct {
	at, leaf [batchSize]uint32
	list     [batchSize]uint8
}

// step advances address i by one level at node at[i] with stride byte b
// and returns 1 if it descends further, 0 if it ended on a leaf. Both
// outcomes are computed and stored, so there is no data-dependent branch.
func (st *batchState) step(nodes []uint64, i uint8, b uint) uint32 {
	g := uint(st.at[i])*recWords + (b>>6)*grpWords
	grp := nodes[g : g+3 : g+3]
	bit := b & 63
	vec, base := grp[0], grp[2]
	st.at[i] = uint32(base>>32) + uint32(bits.OnesCount64(vec&(1<<bit-1)))
	st.leaf[i] = uint32(base) + uint32(bits.OnesCount64(grp[1]&(2<<bit-1))) - 1
	return uint32(vec>>bit) & 1
}

// groupAddr returns the address of the group that step reads for address
// i and stride byte b, for prefetching: the addresses of the whole level are
// computed and prefetched in one tight loop first, so all of the burst's
// cache misses are in flight before step's longer dependent sequence fills
// the reorder buffer. It does no bounds check (a prefetch of a bad address
// is harmless; step checks its loads).
func (st *batchState) groupAddr(nodes []uint64, i uint8, b uint) uintptr {
	g := uintptr(st.at[i&(batchSize-1)])*recWords + uintptr(b>>6)*grpWords
	return uintptr(unsafe.Pointer(unsafe.SliceData(nodes))) + g*8
}

// finish loads the leaf each address ended on into vals (all loads at the
// end, independent of each other) and returns how many matched.
func (st *batchState) finish(leaves, vals []uint32) int {
	var pf [batchSize]uintptr
	lb := uintptr(unsafe.Pointer(unsafe.SliceData(leaves)))
	for i := range vals {
		pf[i&(batchSize-1)] = lb + uintptr(st.leaf[i&(batchSize-1)])*4
	}
	prefetch.Lines(&pf[0], len(vals))
	hits := 0
	for i := range vals {
		v := leaves[st.leaf[i]]
		vals[i] = v
		if v != NoValue {
			hits++
		}
	}
	return hits
}

// start places the n addresses of a burst at node root.
func (st *batchState) start(root uint32, n int) {
	for i := range n {
		st.at[i] = root
		st.list[i] = uint8(i)
	}
}

// direct places address i at the node or leaf of its direct-pointing
// entry e and appends it to the pending list at k if it descends; it
// returns the new k.
func (st *batchState) direct(i int, e uint32, k int) int {
	st.at[i], st.leaf[i] = e>>1, e>>1
	st.list[k&(batchSize-1)] = uint8(i)
	return k + int(e&dpLeaf^1)
}

func (s *Snapshot) batch4(addrs, vals []uint32) int {
	nodes, leaves := s.nodes, s.leaves
	var st batchState
	vals = vals[:len(addrs)]
	shift := uint(24)
	n := len(addrs)
	if d := s.dp[0]; d != nil {
		k := 0
		top := d[s.dpTop[0]:][:chunk]
		for i, a := range addrs {
			k = st.direct(i, d[uint(top[a>>24])+uint(a>>16&0xff)], k)
		}
		n, shift = k, 8
	} else {
		st.start(s.root[0], n)
	}
	for ; n > 0; shift -= 8 {
		var pf [batchSize]uintptr
		for j, i := range st.list[:n] {
			pf[j] = st.groupAddr(nodes, i, uint(addrs[i&(batchSize-1)]>>shift)&0xff)
		}
		prefetch.Lines(&pf[0], n)
		k := uint32(0)
		for _, i := range st.list[:n] {
			more := st.step(nodes, i, uint(addrs[i&(batchSize-1)]>>shift)&0xff)
			st.list[k&(batchSize-1)] = i
			k += more
		}
		n = int(k)
		if shift == 0 {
			break // unreachable for a well-formed trie: the last level has no children
		}
	}
	return st.finish(leaves, vals)
}

// Lookup6Batch looks up IPv6 addresses given as their high and low 64 bits
// (hi[i], lo[i]) in this snapshot, as Lookup4Batch does for IPv4, and
// writes each result to vals, NoValue where no prefix matches. It returns
// the number of addresses that matched. lo and vals must be at least as
// long as hi.
func (s *Snapshot) Lookup6Batch(hi, lo []uint64, vals []uint32) int {
	lo, vals = lo[:len(hi)], vals[:len(hi)]
	hits := 0
	if !s.walk {
		for i := range hi {
			v, ok := s.Lookup6(hi[i], lo[i])
			if !ok {
				v = NoValue
			}
			vals[i] = v
			if ok {
				hits++
			}
		}
		return hits
	}
	for len(hi) > 0 {
		n := min(len(hi), batchSize)
		hits += s.batch6(hi[:n], lo[:n], vals[:n])
		hi, lo, vals = hi[n:], lo[n:], vals[n:]
	}
	return hits
}

func (s *Snapshot) batch6(hi, lo []uint64, vals []uint32) int {
	nodes, leaves := s.nodes, s.leaves
	var st batchState
	lo, vals = lo[:len(hi)], vals[:len(hi)]
	lvl := 0
	n := len(hi)
	if d := s.dp[1]; d != nil {
		k := 0
		top := d[s.dpTop[1]:][:chunk]
		for i, a := range hi {
			k = st.direct(i, d[uint(top[a>>56])+uint(a>>48&0xff)], k)
		}
		n, lvl = k, 2
	} else {
		st.start(s.root[1], n)
	}
	for ; n > 0 && lvl < 16; lvl++ {
		k := uint32(0)
		shift := uint(56 - 8*(lvl&7))
		src := hi
		if lvl >= 8 {
			src = lo
		}
		var pf [batchSize]uintptr
		for j, i := range st.list[:n] {
			pf[j] = st.groupAddr(nodes, i, uint(src[i&(batchSize-1)]>>shift)&0xff)
		}
		prefetch.Lines(&pf[0], n)
		for _, i := range st.list[:n] {
			more := st.step(nodes, i, uint(src[i&(batchSize-1)]>>shift)&0xff)
			st.list[k&(batchSize-1)] = i
			k += more
		}
		n = int(k)
	}
	return st.finish(leaves, vals)
}

// lookup4 walks at most four nodes (two after direct pointing). At each
// node the address byte picks a group (top 2 bits) and a slot in it (low 6
// bits); a set vec bit means descend, otherwise the slot's leaf run is the
// answer.
func (s *Snapshot) lookup4(a uint32) uint32 {
	nodes := s.nodes
	n := uint(s.root[0])
	shift := uint(24)
	if d := s.dp[0]; d != nil {
		e := d[uint(d[uint(s.dpTop[0])+uint(a>>24)])+uint(a>>16&0xff)]
		if e&dpLeaf != 0 {
			return s.leaves[e>>1]
		}
		n, shift = uint(e>>1), 8
	}
	for ; ; shift -= 8 {
		b := uint(a>>shift) & 0xff
		g := n*recWords + (b>>6)*grpWords
		grp := nodes[g : g+3 : g+3]
		bit := b & 63
		vec := grp[0]
		if vec&(1<<bit) != 0 {
			n = uint(grp[2]>>32) + uint(bits.OnesCount64(vec&(1<<bit-1)))
			continue
		}
		return s.leaves[uint(uint32(grp[2]))+uint(bits.OnesCount64(grp[1]&(2<<bit-1)))-1]
	}
}

// Lookup6 looks up an IPv6 address given as its high and low 64 bits.
func (s *Snapshot) Lookup6(hi, lo uint64) (uint32, bool) {
	nodes := s.nodes
	n := uint(s.root[1])
	k := hi
	i := 0
	if d := s.dp[1]; d != nil {
		e := d[uint(d[uint(s.dpTop[1])+uint(hi>>56)])+uint(hi>>48&0xff)]
		if e&dpLeaf != 0 {
			return s.found(e >> 1)
		}
		n, k, i = uint(e>>1), hi<<16, 2
	}
	for ; i < 16; i++ {
		if i == 8 {
			k = lo
		}
		b := uint(k >> 56)
		k <<= 8
		g := n*recWords + (b>>6)*grpWords
		grp := nodes[g : g+3 : g+3]
		bit := b & 63
		vec := grp[0]
		if vec&(1<<bit) != 0 {
			n = uint(grp[2]>>32) + uint(bits.OnesCount64(vec&(1<<bit-1)))
			continue
		}
		return s.found(uint32(grp[2]) + uint32(bits.OnesCount64(grp[1]&(2<<bit-1))) - 1)
	}
	return 0, false // unreachable: the last level has no children
}

// found returns the value of leaf li and whether it is a route.
func (s *Snapshot) found(li uint32) (uint32, bool) {
	if v := s.leaves[li]; v != NoValue {
		return v, true
	}
	return 0, false
}

// All returns the prefixes of t and their values, IPv4 first, each family
// in address order with shorter prefixes before longer ones at the same
// address. It holds t's writer lock while iterating: the loop body must not
// modify t.
func (t *Table) All() iter.Seq2[netip.Prefix, uint32] {
	return func(yield func(netip.Prefix, uint32) bool) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.ready()
		t.w.walk(yield)
	}
}

// Walk calls fn for each prefix of t in the order of All until fn returns
// false. fn must not modify t.
func (t *Table) Walk(fn func(netip.Prefix, uint32) bool) {
	for p, v := range t.All() {
		if !fn(p, v) {
			return
		}
	}
}

// Stats describes the memory a table holds, in bytes.
type Stats struct {
	Prefixes    int // routes stored
	LookupBytes int // live node records, leaves and direct-pointing chunks that lookups read
	RIBBytes    int // the writer's route trie (Delete, iteration, updates)
	DeadBytes   int // replaced blocks awaiting compaction
	Bytes       int // everything the table references (capacity included)
}

// Stats reports the memory held by t.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready()
	return t.w.stats()
}

// Bytes returns the total memory held by t, as Stats().Bytes.
func (t *Table) Bytes() int { return t.Stats().Bytes }
