package pipeline

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// Neighbour and VTEP learning live in one table keyed by (scope, address):
//   - scopeVPC|vpc: an IP neighbour inside a VPC (ARP/ND on its attachment);
//   - scopePort|port: an underlay neighbour (remote VTEP) on a port;
//   - scopeVTEP|vpc: which remote VTEP sits behind an inner MAC (address
//     holds the MAC in its first 6 bytes).
//
// Each worker has its own fixed-size open-addressing cache (no map, no lock
// on the hot path); learning also writes a shared table under a mutex so
// other workers find on a miss what one worker learned.
const (
	scopeVPC  = 0 << 24
	scopePort = 1 << 24
	scopeVTEP = 2 << 24
)

// neighKey holds the address as two words (big-endian halves of the
// 16-byte form; IPv4 as ::ffff:a.b.c.d), so building and hashing a key is a
// few register operations rather than byte stores and wide reloads.
type neighKey struct {
	scope  uint32
	hi, lo uint64
}

// addr returns the key's address in 16-byte form.
func (k *neighKey) addr() (a [16]byte) {
	binary.BigEndian.PutUint64(a[0:], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	return a
}

// is4 reports whether the key holds an IPv4 address.
func (k *neighKey) is4() bool { return k.hi == 0 && k.lo>>32 == 0xffff }

type neighEntry struct {
	key  neighKey
	mac  [6]byte
	used bool
	// resolved: mac (or vtep) is valid; otherwise a request is outstanding.
	resolved bool
	vtep     uint32
	// updated is when the entry was learned; requested when the last
	// request went out.
	updated, requested int64
	// own: this worker learned mac and vtep itself (and bumped learnGen
	// then); false for a copy of the shared entry, which syncNeigh must not
	// take as proof that the worker already dropped what it had built on an
	// older value.
	own bool
}

const (
	neighCacheSize = 4096 // per worker, power of two
	neighProbe     = 8
	// neighLifetime: a learned entry is trusted this long without refresh.
	neighLifetime = int64(20 * 60 * 1e9)
	// arpRetry: at most one request per neighbour per interval.
	arpRetry = int64(1e9)
)

type neighCache struct {
	e [neighCacheSize]neighEntry
}

func neighHash(k *neighKey) uint32 {
	h := (uint64(k.scope) ^ k.hi) * 0x9e3779b97f4a7c15
	h = (h ^ k.lo) * 0xff51afd7ed558ccd
	return uint32(h >> 32)
}

// get returns the entry for k or nil.
func (c *neighCache) get(k *neighKey) *neighEntry {
	i := neighHash(k)
	for n := uint32(0); n < neighProbe; n++ {
		e := &c.e[(i+n)&(neighCacheSize-1)]
		if e.used && e.key == *k {
			return e
		}
	}
	return nil
}

// slot returns the entry for k, creating it (evicting the oldest of the
// probe window) when absent.
func (c *neighCache) slot(k *neighKey) *neighEntry {
	i := neighHash(k)
	var victim *neighEntry
	for n := uint32(0); n < neighProbe; n++ {
		e := &c.e[(i+n)&(neighCacheSize-1)]
		if e.used && e.key == *k {
			return e
		}
		if !e.used {
			if victim == nil || victim.used {
				victim = e
			}
		} else if victim == nil || (victim.used && e.updated < victim.updated) {
			victim = e
		}
	}
	*victim = neighEntry{key: *k, used: true}
	return victim
}

// drop forgets k (a slot freed in a probe window does not hide the
// others: get and slot look at every slot of the window).
func (c *neighCache) drop(k *neighKey) {
	i := neighHash(k)
	for n := uint32(0); n < neighProbe; n++ {
		if e := &c.e[(i+n)&(neighCacheSize-1)]; e.used && e.key == *k {
			*e = neighEntry{}
			return
		}
	}
}

// sharedNeigh is the cross-worker table, touched only on learning and on
// cache misses.
//
// Each worker answers from its own copies of the entries it used, so a
// neighbour that moves (a MAC behind another VTEP: a migrated VM; a new
// MAC for an address) must reach the workers that did not see the move:
// put records the keys whose MAC or VTEP changed in a ring (changed, seq
// counting them), and each worker drops its copies of those keys at its
// next burst (Worker.syncNeigh), or all of them when it fell more than the
// ring behind. New entries need no notice: a worker's miss finds them here.
type sharedNeigh struct {
	mu      sync.Mutex
	m       map[neighKey]neighEntry
	changed [neighChanges]neighKey
	seq     atomic.Uint64
}

// neighChanges is the length of sharedNeigh's ring of changed keys.
const neighChanges = 256

func (s *sharedNeigh) put(e *neighEntry) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[neighKey]neighEntry{}
	}
	if old, ok := s.m[e.key]; ok && old.resolved && (old.mac != e.mac || old.vtep != e.vtep) {
		n := s.seq.Load()
		s.changed[n%neighChanges] = e.key
		s.seq.Store(n + 1)
	}
	s.m[e.key] = *e
	s.mu.Unlock()
}

// syncNeigh drops the worker's copies of the neighbours another worker saw
// change since its last burst, and invalidates what was derived from them
// (adjacencies, the learning memo: learnGen). One atomic load when nothing
// changed. A copy that is already the shared entry and that the worker
// learned itself stays, and if every changed key is such a copy (the worker
// bumped learnGen when it learned them) nothing is invalidated. A key the
// worker holds no copy of still invalidates, as an adjacency may outlive
// the copy it was built from; so does a copy taken from the shared table
// (own false), which may have replaced an evicted older one that the
// worker built on.
func (w *Worker) syncNeigh() {
	s := &w.p.neigh
	if s.seq.Load() == w.neighSeq {
		return
	}
	s.mu.Lock()
	seq := s.seq.Load()
	clear, stale := seq-w.neighSeq > neighChanges, false
	if !clear {
		for i := w.neighSeq; i < seq; i++ {
			k := &s.changed[i%neighChanges]
			se, ok := s.m[*k]
			if e := w.neigh.get(k); e != nil && ok && e.resolved && e.own && e.mac == se.mac && e.vtep == se.vtep {
				continue
			}
			w.neigh.drop(k)
			stale = true
		}
	}
	s.mu.Unlock()
	if clear {
		w.neigh = neighCache{}
	}
	w.neighSeq = seq
	if clear || stale {
		w.learnGen++
	}
}

func (s *sharedNeigh) get(k *neighKey) (neighEntry, bool) {
	s.mu.Lock()
	e, ok := s.m[*k]
	s.mu.Unlock()
	return e, ok
}

// lookup returns a resolved, fresh entry for k, consulting the shared table
// on a local miss.
func (w *Worker) lookupNeigh(k *neighKey) *neighEntry {
	e := w.neigh.get(k)
	if e != nil && e.resolved && w.now-e.updated < neighLifetime {
		return e
	}
	if se, ok := w.p.neigh.get(k); ok && se.resolved && w.now-se.updated < neighLifetime {
		e = w.neigh.slot(k)
		*e = se
		e.own = false
		return e
	}
	return nil
}

// learn records mac (and vtep) for k and reports whether it changed anything
// (a new entry, a new MAC or VTEP, or a resolution). An entry confirmed
// after half its lifetime gets the new time but changes nothing: what was
// derived from it (adjacencies, memos) stays right, and expires by its own
// time (an adjacency's until) to pick the new one up. Only a change bumps
// learnGen, which drops everything the worker derived from any entry.
func (w *Worker) learn(k *neighKey, mac [6]byte, vtep uint32) bool {
	e := w.neigh.get(k)
	live := e != nil && e.resolved && e.mac == mac && e.vtep == vtep && w.now-e.updated < neighLifetime
	if live && w.now-e.updated < neighLifetime/2 {
		return false
	}
	e = w.neigh.slot(k)
	e.mac, e.vtep, e.resolved, e.updated = mac, vtep, true, w.now
	w.p.neigh.put(e)
	if live {
		return false
	}
	e.own = true
	w.learnGen++
	return true
}

// learnMemo is a slot of the worker's record of what VXLAN packets taught
// it lately: the inner MAC mac of VPC vpc sits behind VTEP outer, whose
// underlay MAC is outerMAC, learned (or found unchanged) at learnGen gen,
// until until. A packet matching a valid slot has nothing to learn, and
// takes the fast path.
type learnMemo struct {
	outer    uint32
	mac      [6]byte
	outerMAC [6]byte
	vpc      uint16
	gen      uint64
	until    int64
}

// learnMemoSets and learnMemoWays size the worker's learning memo: a
// 4-way set-associative record of recent senders (40 bytes each, 160 KiB).
// A VPC's clients each have their own inner MAC; a memo of one sender made
// every packet of a burst from many of them learn again (two
// neighbour-table probes each), and a direct-mapped one of 1024 slots lost
// a third of 1024 senders to collisions
// (BenchmarkPipelineVXLANNATManySources: 1024 clients, their own MACs).
const (
	learnMemoSets = 1024
	learnMemoWays = 4
)

type learnSet [learnMemoWays]learnMemo

func (w *Worker) learnSetOf(outer uint32, mac [6]byte, vpc int) *learnSet {
	m := uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
	h := (m ^ uint64(outer)<<16 ^ uint64(vpc)<<48) * 0x9e3779b97f4a7c15
	return &w.learned[h>>32&(learnMemoSets-1)]
}

// holds reports whether m is valid and records mac of vpc behind outer,
// reached at outerMAC. The underlay MAC is part of the key: a VTEP whose
// next hop changed must be learned again from the next packet of any of
// its senders.
func (m *learnMemo) holds(outer uint32, outerMAC, mac [6]byte, vpc int, gen uint64, now int64) bool {
	return m.outer == outer && m.mac == mac && m.outerMAC == outerMAC && int(m.vpc) == vpc && m.gen == gen && now < m.until
}

// recentlyLearned reports whether a VXLAN packet from inner MAC mac of VPC
// vpc behind VTEP outer (underlay MAC outerMAC) has nothing to teach the
// worker: the last sender first (a burst's train), then the set.
func (w *Worker) recentlyLearned(outer uint32, outerMAC, mac [6]byte, vpc int) bool {
	return w.lastLearned.holds(outer, outerMAC, mac, vpc, w.learnGen, w.now) || w.learnedLately(outer, outerMAC, mac, vpc)
}

func (w *Worker) learnedLately(outer uint32, outerMAC, mac [6]byte, vpc int) bool {
	set := w.learnSetOf(outer, mac, vpc)
	for i := range set {
		if m := &set[i]; m.holds(outer, outerMAC, mac, vpc, w.learnGen, w.now) {
			w.lastLearned = *m
			return true
		}
	}
	return false
}

// rememberLearned records that the worker learned from (or found nothing
// new in) a packet of mac behind outer (at outerMAC), in place of the set's
// entry that expires first.
func (w *Worker) rememberLearned(outer uint32, outerMAC, mac [6]byte, vpc int) {
	set := w.learnSetOf(outer, mac, vpc)
	old := &set[0]
	for i := range set {
		m := &set[i]
		if m.outer == outer && m.mac == mac && int(m.vpc) == vpc || m.gen != w.learnGen {
			old = m
			break
		}
		if m.until < old.until {
			old = m
		}
	}
	*old = learnMemo{outer: outer, mac: mac, outerMAC: outerMAC, vpc: uint16(vpc), gen: w.learnGen, until: w.now + int64(1e9)}
	w.lastLearned = *old
}

// adjacency caches a fully resolved delivery (next hop MAC, remote VTEP and
// its MAC) so the common case costs one probe instead of three. Any change
// learned, and any new snapshot, invalidates every entry (learnGen).
type adjacency struct {
	key     neighKey
	gen     uint64
	until   int64
	mac     [6]byte
	vtepMAC [6]byte
	vtep    uint32
	// VXLAN attachments: the headers pushL2 would write (outer Ethernet,
	// IPv4, UDP, VXLAN, inner Ethernet) with the outer IPv4 checksum summed
	// over its constant words (tsum); per packet only the lengths, the ID,
	// the checksum, the UDP source port and the inner EtherType change.
	tmpl    [vxlanHdrs]byte
	tsum    uint32
	hasTmpl bool
}

// validFor reports whether a is the worker's current adjacency for k.
func (a *adjacency) validFor(k *neighKey, gen uint64, now int64) bool {
	return a.gen == gen && a.key == *k && now < a.until
}

// DefaultAdjacencySlots is the adjacency cache's default size per worker
// (128 bytes a slot, 512 KiB): direct-mapped by the next hop's hash, it
// must hold the next hops a burst train cycles through, e.g. a server
// answering a thousand clients (BenchmarkPipelineVXLANNATManyClientsReturn:
// 256 slots missed on almost every packet, 235-244 ns/pkt against 147-185
// with 4096).
const DefaultAdjacencySlots = 4096

// maxAdjacencySlots caps Config.AdjacencySlots (128 MiB a worker).
const maxAdjacencySlots = 1 << 20

// shouldRequest reports whether a request for k may go out now, and records
// that it does.
func (w *Worker) shouldRequest(k *neighKey) bool {
	e := w.neigh.slot(k)
	if e.resolved && w.now-e.updated < neighLifetime {
		return false
	}
	if e.requested != 0 && w.now-e.requested < arpRetry {
		return false
	}
	e.resolved = false
	e.requested = w.now
	if e.requested == 0 {
		e.requested = 1
	}
	return true
}

func key4(scope uint32, a uint32) neighKey {
	return neighKey{scope: scope, lo: 0xffff<<32 | uint64(a)}
}

func key16(scope uint32, a [16]byte) neighKey {
	return neighKey{scope: scope, hi: binary.BigEndian.Uint64(a[0:]), lo: binary.BigEndian.Uint64(a[8:])}
}

func keyMAC(vpc uint16, mac [6]byte) neighKey {
	return neighKey{scope: scopeVTEP | uint32(vpc), hi: uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 |
		uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])}
}
