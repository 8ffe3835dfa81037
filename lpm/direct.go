package lpm

import "math/bits"

// Direct pointing (poptrie §3.3): a large family also gets a table indexed
// by the first 16 address bits, so a lookup skips the root and level-1
// nodes (two loads, two popcounts and a branch each) and starts at level 2.
// It costs 1 KiB per root slot with children (~230 KiB on the full table,
// 0.2 B/route), so only families with many routes get one: a per-VPC table
// with ten routes stays at a few kilobytes.
//
// The table is two-level so that an update writes 2 KiB, not 256 KiB. Both
// levels live in one flat []uint32 pool per family, append-only like the
// node array (no Go pointers, so nothing for the garbage collector to scan
// or barrier): a top chunk of 256 offsets, one per first byte, each the
// offset of a chunk of 256 entries for the second byte. An entry is
// idx<<1|1 for a leaf (idx into Snapshot.leaves) or idx<<1 for a level-2
// node (idx into Snapshot.nodes records). An update appends new chunks for
// the root slots it touched and a new top chunk, and publishes the new top
// offset with the new snapshot; published words are never written again.
// When the pool is full, its live chunks are copied into a fresh one (old
// snapshots keep the old array).
//
// Entries of untouched slots keep pointing at the records and leaf blocks
// they were computed from. Those may have been replaced by identical copies
// in the update (a copied sibling block), but replaced blocks stay intact
// until compaction, and compaction recomputes every chunk.

const (
	// defaultDirectMin is the route count of a family from which it gets a
	// direct-pointing table. A family turns it off again below half of it,
	// so a table hovering around the threshold does not rebuild it at every
	// update.
	defaultDirectMin = 16384
	dpLeaf           = 1
	chunk            = 256
)

// dpEntry returns the direct-pointing entry of slot s of record r.
func dpEntry(r *rec, s uint) uint32 {
	g := (s >> 6) * grpWords
	bit := s & 63
	vec, base := r[g], r[g+2]
	if vec&(1<<bit) != 0 {
		return (uint32(base>>32) + uint32(bits.OnesCount64(vec&(1<<bit-1)))) << 1
	}
	return (uint32(base)+uint32(bits.OnesCount64(r[g+1]&(2<<bit-1)))-1)<<1 | dpLeaf
}

// fillChunk writes the entries of every slot of record r to c, as dpEntry
// would, counting children and leaf runs as it goes instead of a popcount
// per slot: it runs once per update.
func fillChunk(c *[256]uint32, r *rec) {
	for g := range 4 {
		vec, lv, base := r[g*grpWords], r[g*grpWords+1], r[g*grpWords+2]
		child := uint32(base>>32) << 1
		// Leaf runs start at set lv bits (never at a child slot), so the
		// slot's run is base + (lv bits up to it) - 1; the -1 wraps until
		// the first run starts, which is at or before the first leaf slot.
		leaf := (uint32(base)-1)<<1 | dpLeaf
		out := c[g*64 : g*64+64]
		for i := range out {
			// Branch-free select: children and leaves alternate
			// unpredictably.
			leaf += uint32(lv>>i&1) << 1
			isChild := uint32(vec >> i & 1)
			out[i] = leaf ^ (leaf^child)&-isChild
			child += isChild << 1
		}
	}
}

// touch marks root slots [lo, hi) of family f as needing new chunks.
func (w *writer) touch(f int, lo, hi uint) {
	d := &w.dirty[f]
	if d[0] >= d[1] {
		d[0], d[1] = uint16(lo), uint16(hi)
		return
	}
	d[0], d[1] = min(d[0], uint16(lo)), max(d[1], uint16(hi))
}

// touchAll marks every chunk of both families stale, after every record
// moved (compaction, build).
func (w *writer) touchAll() {
	w.touch(0, 0, 256)
	w.touch(1, 0, 256)
}

// syncDP brings the direct-pointing tables up to date with the trie before
// a publish: it enables or drops them by route count (threshold minRoutes)
// and writes new chunks for the touched root slots.
func (w *writer) syncDP(minRoutes int) {
	if minRoutes <= 0 {
		minRoutes = defaultDirectMin
	}
	for f := range 2 {
		d := w.dirty[f]
		w.dirty[f] = [2]uint16{}
		on := w.n[f] >= minRoutes || (w.dp[f] != nil && w.n[f] >= minRoutes/2)
		switch {
		case !on:
			w.dp[f] = nil
		case w.dp[f] == nil || (d[0] == 0 && d[1] == chunk):
			w.dpRebuild(f)
		case d[0] < d[1]:
			w.dpUpdate(f, uint(d[0]), uint(d[1]))
		}
	}
}

// dpRebuild computes every chunk of family f into a fresh pool: exactly
// sized for a table that gets its first one (Build), with dpUpdate's
// headroom when it replaces one (compaction, a new default route), since
// that table is being updated and an exact pool would be copied again by
// the next update.
func (w *writer) dpRebuild(f int) {
	root := w.recAt(w.root[f])
	var es, top [chunk]uint32
	// Leaf-only root slots in one run share a chunk: on the full table most
	// IPv6 root slots are one run of "no route".
	n := 1 // the top chunk
	for s := range uint(chunk) {
		es[s] = dpEntry(&root, s)
		if s == 0 || es[s]&dpLeaf == 0 || es[s] != es[s-1] {
			n++
		}
	}
	size := n * chunk
	if w.dp[f] != nil {
		size += dpRoom(size)
	}
	pool := make([]uint32, 0, size)
	adviseHuge(pool)
	for s, e := range es {
		if s > 0 && e&dpLeaf != 0 && e == es[s-1] {
			top[s] = top[s-1]
			continue
		}
		top[s] = uint32(len(pool))
		pool = w.appendChunk(pool, e)
	}
	w.dpTop[f] = uint32(len(pool))
	w.dp[f] = append(pool, top[:]...)
	w.dpLive[f] = len(w.dp[f])
}

// appendChunk appends the chunk of a root slot whose entry is e.
func (w *writer) appendChunk(pool []uint32, e uint32) []uint32 {
	pool = append(pool, make([]uint32, chunk)...)
	c := (*[chunk]uint32)(pool[len(pool)-chunk:])
	if e&dpLeaf != 0 {
		for i := range c {
			c[i] = e
		}
		return pool
	}
	r := w.recAt(e >> 1)
	fillChunk(c, &r)
	return pool
}

// dpRoom is the headroom given to a pool of live words for the chunks of
// the next updates: 16 times the live chunks, at least 512 chunks. On the
// full table that is ~3.7 MiB and lasts ~2000 updates, longer than the
// ~1300 between two compactions, which rebuild the pool with fresh
// headroom: a table under steady updates never copies its pool outside a
// compaction, so pool copies add no slow updates of their own (with 8
// times, one update in ~1000 copied it: 0.1 % of updates at 100+ µs, a
// tenth of the slowest 1 %).
func dpRoom(live int) int { return max(16*live, 512*chunk) }

// dpUpdate appends new chunks for root slots [lo, hi) of family f and a new
// top chunk.
func (w *writer) dpUpdate(f int, lo, hi uint) {
	pool := w.dp[f]
	var top [chunk]uint32
	copy(top[:], pool[w.dpTop[f]:])
	need := int(hi-lo+1) * chunk
	if len(pool)+need > cap(pool) {
		// Copy the live chunks into a fresh pool with room for many
		// updates: the old array stays intact for old snapshots.
		// Each copy is an update far slower than the others, so the
		// headroom is large (dpRoom). A built table's pool is exact; only
		// tables that are updated grow one.
		np := make([]uint32, 0, w.dpLive[f]+dpRoom(w.dpLive[f])+need)
		adviseHuge(np)
		moved := make(map[uint32]uint32, chunk)
		for s, off := range top {
			if n, ok := moved[off]; ok {
				top[s] = n
				continue
			}
			moved[off] = uint32(len(np))
			top[s] = uint32(len(np))
			np = append(np, pool[off:off+chunk]...)
		}
		pool = np
		w.dpLive[f] = len(np) + chunk
	}
	root := w.recAt(w.root[f])
	for s := lo; s < hi; s++ {
		top[s] = uint32(len(pool))
		pool = w.appendChunk(pool, dpEntry(&root, s))
	}
	w.dpTop[f] = uint32(len(pool))
	w.dp[f] = append(pool, top[:]...)
}
