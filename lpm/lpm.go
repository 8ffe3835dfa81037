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
// # Concurrency: copy-on-write snapshots
//
// Readers load an immutable snapshot through an atomic.Pointer and never
// lock. The single writer (writers are serialised by a mutex) never modifies
// a word that a published snapshot can reach: an update appends new copies
// of the nodes on the touched path (and of subtrees whose inherited leaf
// value changed) to the end of the flat arrays, then publishes a new
// snapshot with the new root. Readers of the old snapshot keep reading the
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
}

// Snapshot is an immutable view of a Table at one point in time. The hot
// path loads one per burst (Table.Snapshot) and looks up every packet of
// the burst in it.
type Snapshot struct {
	nodes  []uint64
	leaves []uint32
	root   [2]uint32 // node index of the IPv4 and IPv6 roots
	n      [2]int
}

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
	t.snap.Store(&Snapshot{nodes: w.nodes, leaves: w.leaves, root: w.root, n: w.n})
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
// so the CPU overlaps their cache misses.
func (s *Snapshot) Lookup4Batch(addrs, vals []uint32) int {
	vals = vals[:len(addrs)]
	hits := 0
	for len(addrs) > 0 {
		n := min(len(addrs), 32)
		hits += s.batch4(addrs[:n], vals[:n])
		addrs, vals = addrs[n:], vals[n:]
	}
	return hits
}

func (s *Snapshot) batch4(addrs, vals []uint32) int {
	nodes, leaves := s.nodes, s.leaves
	var at [32]uint32
	vals = vals[:len(addrs)]
	root := s.root[0]
	for i := range addrs {
		at[i] = root
	}
	pending := uint64(1)<<len(addrs) - 1
	for shift := uint(24); pending != 0; shift -= 8 {
		for p := pending; p != 0; p &= p - 1 {
			i := bits.TrailingZeros64(p) & 31
			b := uint(addrs[i]>>shift) & 0xff
			g := uint(at[i])*recWords + (b>>6)*grpWords
			grp := nodes[g : g+3 : g+3]
			bit := b & 63
			vec := grp[0]
			if vec&(1<<bit) != 0 {
				at[i] = uint32(grp[2]>>32) + uint32(bits.OnesCount64(vec&(1<<bit-1)))
				continue
			}
			vals[i] = leaves[uint(uint32(grp[2]))+uint(bits.OnesCount64(grp[1]&(2<<bit-1)))-1]
			pending &^= 1 << i
		}
	}
	hits := 0
	for _, v := range vals {
		if v != NoValue {
			hits++
		}
	}
	return hits
}

// lookup4 walks at most four nodes. At each node the address byte picks a
// group (top 2 bits) and a slot in it (low 6 bits); a set vec bit means
// descend, otherwise the slot's leaf run is the answer.
func (s *Snapshot) lookup4(a uint32) uint32 {
	nodes := s.nodes
	n := uint(s.root[0])
	for shift := uint(24); ; shift -= 8 {
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
	for i := 0; i < 16; i++ {
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
		if v := s.leaves[uint(uint32(grp[2]))+uint(bits.OnesCount64(grp[1]&(2<<bit-1)))-1]; v != NoValue {
			return v, true
		}
		return 0, false
	}
	return 0, false // unreachable: the last level has no children
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
	LookupBytes int // live node records and leaves that lookups read
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
