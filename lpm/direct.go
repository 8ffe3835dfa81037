package lpm

import "math/bits"

// Direct pointing (poptrie §3.3): a large family also gets a table indexed
// by the first 16 address bits, so a lookup skips the root and level-1
// nodes (two loads, two popcounts and a branch each) and starts at level 2.
// It costs 1 KiB per root slot with children (~230 KiB on the full table,
// 0.2 B/route), so only families with many routes get one: a per-VPC table
// with ten routes stays at a few kilobytes.
//
// The table is two-level so that an update copies 3 KiB, not 256 KiB:
// dpTable[first byte] is a chunk of 256 entries for the second byte. An
// entry is idx<<1|1 for a leaf (idx into Snapshot.leaves) or idx<<1 for a
// level-2 node (idx into Snapshot.nodes records). Chunks are immutable once
// published; an update builds new chunks for the root slots it touched and
// a new top array, and publishes them with the new snapshot.
//
// Entries of untouched slots keep pointing at the records and leaf blocks
// they were computed from. Those may have been replaced by identical copies
// in the update (a copied sibling block), but replaced blocks stay intact
// until compaction, and compaction recomputes every chunk.

type dpTable [256]*[256]uint32

const (
	// defaultDirectMin is the route count of a family from which it gets a
	// direct-pointing table. A family turns it off again below half of it,
	// so a table hovering around the threshold does not rebuild it at every
	// update.
	defaultDirectMin = 16384
	dpLeaf           = 1
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
// a publish: it enables or drops them by route count (threshold min) and
// rebuilds the chunks of touched root slots.
func (w *writer) syncDP(minRoutes int) {
	if minRoutes <= 0 {
		minRoutes = defaultDirectMin
	}
	for f := range 2 {
		d := w.dirty[f]
		w.dirty[f] = [2]uint16{}
		on := w.n[f] >= minRoutes || (w.dp[f] != nil && w.n[f] >= minRoutes/2)
		if !on {
			w.dp[f] = nil
			continue
		}
		if w.dp[f] == nil {
			d = [2]uint16{0, 256}
		}
		if d[0] >= d[1] {
			continue
		}
		nt := new(dpTable)
		if w.dp[f] != nil {
			*nt = *w.dp[f]
		}
		root := w.recAt(w.root[f])
		// Leaf-only root slots in one run share a chunk: on the full
		// table most IPv6 root slots are one run of "no route".
		var last *[256]uint32
		lastE := uint32(0)
		for s := uint(d[0]); s < uint(d[1]); s++ {
			e := dpEntry(&root, s)
			if e&dpLeaf != 0 {
				if last == nil || lastE != e {
					last, lastE = new([256]uint32), e
					for i := range last {
						last[i] = e
					}
				}
				nt[s] = last
				continue
			}
			c := new([256]uint32)
			r := w.recAt(e >> 1)
			for i := range c {
				c[i] = dpEntry(&r, uint(i))
			}
			nt[s] = c
		}
		w.dp[f] = nt
	}
}
