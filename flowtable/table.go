package flowtable

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Flow is a session's forward key: the packet as the inside host sends it.
// For ICMP echo, InnerPort is the identifier and RemotePort is 0.
type Flow struct {
	Inner, Remote         uint32 // IPv4 addresses, host byte order
	InnerPort, RemotePort uint16
	VPC                   uint16
	Proto                 uint8
}

// Reply is a session's reverse key: the packet as it arrives from the remote
// end, addressed to the public address. For ICMP echo replies, PublicPort is
// the identifier and RemotePort is 0. Replies carry no VPC: the public
// address and port identify the session, which is why a public address:port
// is never given to two live sessions toward the same remote endpoint.
type Reply struct {
	Public, Remote         uint32
	PublicPort, RemotePort uint16
	Proto                  uint8
}

// Entry is a copy of a session, as lookups return it.
type Entry struct {
	Flow       Flow
	Public     uint32
	PublicPort uint16
	// Pool and Gen are the owner's tags (package nat: pool index and config
	// generation, low 24 bits).
	Pool  uint16
	Gen   uint32
	State State
	// Deadline is the second (of the callers' clock) at which the session
	// expires unless traffic refreshes it.
	Deadline uint32
	// Index identifies the session slot while it lives.
	Index uint32
}

// Reply returns the reverse key of e.
func (e *Entry) Reply() Reply {
	return Reply{Public: e.Public, Remote: e.Flow.Remote, PublicPort: e.PublicPort, RemotePort: e.Flow.RemotePort, Proto: e.Flow.Proto}
}

// Status says what Create did.
type Status uint8

const (
	// Created: a new session was inserted.
	Created Status = iota
	// Found: a live session already had this flow (another worker created it
	// first); it was refreshed.
	Found
	// Full: the table holds Capacity sessions (or the flow's stripe is out
	// of room); nothing changed.
	Full
	// NoPort: every candidate public port was in use toward this remote
	// endpoint; nothing changed.
	NoPort
)

func (s Status) String() string {
	return [...]string{"created", "found", "full", "no-port"}[s]
}

// Ports describes where Create may look for a public port: candidate i is
// Min + (Start + rand % Span) % Total, for at most Tries random draws. Total
// is the size of the whole port space (65536-Min for all ports above Min),
// Start and Span a host's block(s) inside it.
type Ports struct {
	Min                uint16
	Total, Start, Span uint32
	Tries              int
}

// Config sizes a table.
type Config struct {
	// Capacity is the maximum number of live sessions. Memory for all of
	// them is allocated by New.
	Capacity int
	Timeouts Timeouts
	// Seed keys the hash; 0 draws a random one (hash flooding protection).
	Seed uint64
	// Stripes is the number of lock stripes (a power of two); 0 picks one
	// from Capacity.
	Stripes int
}

const (
	slots      = 7
	noIndex    = math.MaxUint32
	loadFactor = 0.85
)

// bucket is one cache line. tag and idx are written with atomic stores under
// the stripe lock and read with atomic loads by the lock-free prefetch pass;
// ovf is only touched under the lock.
type bucket struct {
	tag [slots]uint32 // 0 = empty
	ovf uint32
	idx [slots]uint32
	_   uint32
}

// session is 32 bytes, pointer-free. Key fields are written only while the
// session is unreachable (before its index entries are published, under both
// stripe locks) and read under either stripe lock. state and deadline are
// atomics: both directions update them under different locks.
type session struct {
	inner, remote, public          uint32 // inner doubles as the free-list link
	innerPort, remotePort, pubPort uint16
	vpc, pool                      uint16
	proto                          uint8
	_                              uint8
	deadline                       uint32
	state                          uint32 // stXXX bits | gen<<genShift
}

type stripe struct {
	mu      sync.Mutex
	free    uint32 // free-list head
	created uint64 // the counters are under mu
	expired uint64
	full    uint64
	noPort  uint64
	killed  uint64
	_       [64]byte // keep two stripes' locks off one cache line
}

// Counters are the table's event totals since New.
type Counters struct {
	Live, Capacity                     uint64
	Created, Expired, Killed           uint64
	DroppedFull, DroppedPortsExhausted uint64
}

// Table is the session table. All methods are safe for concurrent use.
type Table struct {
	stripes  []stripe
	buckets  []bucket
	sessions []session
	shift    uint   // 64 - log2(stripes)
	nb       uint32 // buckets per stripe
	per      uint32 // session slots per stripe
	capacity int64
	live     atomic.Int64
	cursor   atomic.Uint64
	seed     [4]uint64
	to       secs
}

// New allocates a table for cfg.Capacity sessions.
func New(cfg Config) (*Table, error) {
	if cfg.Capacity <= 0 || cfg.Capacity > 1<<30 {
		return nil, fmt.Errorf("flowtable: capacity %d: must be between 1 and 2^30", cfg.Capacity)
	}
	to, err := cfg.Timeouts.secs()
	if err != nil {
		return nil, fmt.Errorf("flowtable: %w", err)
	}
	ns := cfg.Stripes
	if ns == 0 {
		ns = 1
		for ns < 256 && cfg.Capacity/(ns*2) >= 4096 {
			ns *= 2
		}
	}
	if ns <= 0 || ns&(ns-1) != 0 || ns > 1<<16 {
		return nil, fmt.Errorf("flowtable: %d stripes: must be a power of two up to 65536", ns)
	}
	// Each stripe gets its share plus four standard deviations, so the
	// table fills up to Capacity before any stripe runs out.
	share := float64(cfg.Capacity) / float64(ns)
	per := uint32(math.Ceil(share + 4*math.Sqrt(share) + 8))
	nb := uint32(math.Ceil(2 * float64(per) / (slots * loadFactor)))
	if uint64(per)*uint64(ns) >= noIndex {
		return nil, errors.New("flowtable: capacity too large")
	}
	t := &Table{
		stripes:  make([]stripe, ns),
		buckets:  make([]bucket, int(nb)*ns),
		sessions: make([]session, int(per)*ns),
		shift:    uint(64 - bits.TrailingZeros(uint(ns))),
		nb:       nb,
		per:      per,
		capacity: int64(cfg.Capacity),
		to:       to,
	}
	if ns == 1 {
		t.shift = 64
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("flowtable: hash seed: %w", err)
		}
		seed = binary.LittleEndian.Uint64(b[:])
	}
	for i := range t.seed {
		seed = splitmix(seed)
		t.seed[i] = seed
	}
	for s := range t.stripes {
		base := uint32(s) * per
		for i := uint32(0); i < per; i++ {
			t.sessions[base+i].inner = base + i + 1
		}
		t.sessions[base+per-1].inner = noIndex
		t.stripes[s].free = base
	}
	return t, nil
}

// Bytes is the memory the table holds, all of it allocated by New.
func (t *Table) Bytes() int {
	return len(t.stripes)*int(unsafe.Sizeof(stripe{})) + len(t.buckets)*int(unsafe.Sizeof(bucket{})) +
		len(t.sessions)*int(unsafe.Sizeof(session{}))
}

// Capacity returns the configured maximum of live sessions.
func (t *Table) Capacity() int { return int(t.capacity) }

// Len returns the number of live sessions (expired ones not yet swept
// included).
func (t *Table) Len() int { return int(t.live.Load()) }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// HashFlow returns the hash of a forward key.
func (t *Table) HashFlow(f *Flow) uint64 {
	w1 := uint64(f.Inner)<<32 | uint64(f.Remote)
	w2 := uint64(f.InnerPort)<<48 | uint64(f.RemotePort)<<32 | uint64(f.VPC)<<16 | uint64(f.Proto)<<8
	return mix(mix(w1^t.seed[0], w2^t.seed[1])^t.seed[2], t.seed[3])
}

// HashReply returns the hash of a reverse key.
func (t *Table) HashReply(r *Reply) uint64 {
	w1 := uint64(r.Public)<<32 | uint64(r.Remote)
	w2 := uint64(r.PublicPort)<<48 | uint64(r.RemotePort)<<32 | uint64(r.Proto)<<8 | 1
	return mix(mix(w1^t.seed[0], w2^t.seed[1])^t.seed[2], t.seed[3])
}

func (t *Table) stripeOf(h uint64) uint32 {
	if t.shift == 64 {
		return 0
	}
	return uint32(h >> t.shift)
}

func (t *Table) home(h uint64) uint32 { return uint32((h & math.MaxUint32) * uint64(t.nb) >> 32) }

func tagOf(h uint64) uint32 { return uint32(h>>24) | 1 }

func (t *Table) bucketAt(s, pos uint32) *bucket { return &t.buckets[s*t.nb+pos] }

// findFlow returns the session index of f in stripe s, or noIndex. Caller
// holds stripe s.
func (t *Table) findFlow(s uint32, h uint64, f *Flow) uint32 {
	tag, pos := tagOf(h), t.home(h)
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		for j := 0; j < slots; j++ {
			if b.tag[j] != tag {
				continue
			}
			i := b.idx[j]
			e := &t.sessions[i]
			if e.inner == f.Inner && e.remote == f.Remote && e.innerPort == f.InnerPort &&
				e.remotePort == f.RemotePort && e.vpc == f.VPC && e.proto == f.Proto {
				return i
			}
		}
		if b.ovf == 0 {
			break
		}
		if pos++; pos == t.nb {
			pos = 0
		}
	}
	return noIndex
}

// findReply is findFlow for a reverse key.
func (t *Table) findReply(s uint32, h uint64, r *Reply) uint32 {
	tag, pos := tagOf(h), t.home(h)
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		for j := 0; j < slots; j++ {
			if b.tag[j] != tag {
				continue
			}
			i := b.idx[j]
			e := &t.sessions[i]
			if e.public == r.Public && e.remote == r.Remote && e.pubPort == r.PublicPort &&
				e.remotePort == r.RemotePort && e.proto == r.Proto {
				return i
			}
		}
		if b.ovf == 0 {
			break
		}
		if pos++; pos == t.nb {
			pos = 0
		}
	}
	return noIndex
}

// insertSlot publishes index i under hash h in stripe s. Caller holds s.
func (t *Table) insertSlot(s uint32, h uint64, i uint32) bool {
	tag, pos := tagOf(h), t.home(h)
	start := pos
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		for j := 0; j < slots; j++ {
			if b.tag[j] == 0 {
				atomic.StoreUint32(&b.idx[j], i)
				atomic.StoreUint32(&b.tag[j], tag)
				for p := start; p != pos; {
					t.bucketAt(s, p).ovf++
					if p++; p == t.nb {
						p = 0
					}
				}
				return true
			}
		}
		if pos++; pos == t.nb {
			pos = 0
		}
	}
	return false
}

// removeSlot unpublishes index i under hash h in stripe s. Caller holds s.
func (t *Table) removeSlot(s uint32, h uint64, i uint32) {
	tag, pos := tagOf(h), t.home(h)
	start := pos
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		for j := 0; j < slots; j++ {
			if b.tag[j] == tag && b.idx[j] == i {
				atomic.StoreUint32(&b.tag[j], 0)
				for p := start; p != pos; {
					t.bucketAt(s, p).ovf--
					if p++; p == t.nb {
						p = 0
					}
				}
				return
			}
		}
		if pos++; pos == t.nb {
			pos = 0
		}
	}
	panic("flowtable: session index missing from its bucket chain")
}

// lockSecond locks stripe r while the caller holds stripe s, keeping the
// global order (lower stripe first). It reports whether s had to be released
// on the way, in which case anything read under s must be read again.
func (t *Table) lockSecond(s, r uint32) (relocked bool) {
	switch {
	case r == s:
		return false
	case r > s:
		t.stripes[r].mu.Lock()
		return false
	case t.stripes[r].mu.TryLock():
		return false
	}
	t.stripes[s].mu.Unlock()
	t.stripes[r].mu.Lock()
	t.stripes[s].mu.Lock()
	return true
}

func (t *Table) unlockSecond(s, r uint32) {
	if r != s {
		t.stripes[r].mu.Unlock()
	}
}

func (t *Table) entry(i uint32, st, dl uint32) Entry {
	e := &t.sessions[i]
	return Entry{
		Flow:   Flow{Inner: e.inner, Remote: e.remote, InnerPort: e.innerPort, RemotePort: e.remotePort, VPC: e.vpc, Proto: e.proto},
		Public: e.public, PublicPort: e.pubPort, Pool: e.pool,
		Gen: st >> genShift, State: State(st), Deadline: dl, Index: i,
	}
}

// touch folds one packet into session i's state and deadline and returns
// them. Caller holds one of the session's stripes.
func (t *Table) touch(i uint32, out bool, tcpFlags uint8, now uint32) (st, dl uint32) {
	e := &t.sessions[i]
	for {
		old := atomic.LoadUint32(&e.state)
		st = t.to.nextState(old, e.proto, out, tcpFlags, e.remotePort)
		if st == old || atomic.CompareAndSwapUint32(&e.state, old, st) {
			break
		}
	}
	dl = now + t.to.timeout(st, e.proto)
	if atomic.LoadUint32(&e.deadline) != dl {
		atomic.StoreUint32(&e.deadline, dl)
	}
	return st, dl
}

// LookupFlow finds the live session of forward key f (hash h), folds an
// outbound packet with tcpFlags into it and returns it. Expired sessions are
// not returned (Create replaces them).
func (t *Table) LookupFlow(f *Flow, h uint64, tcpFlags uint8, now int64) (Entry, bool) {
	s := t.stripeOf(h)
	sec := seconds(now)
	t.stripes[s].mu.Lock()
	i := t.findFlow(s, h, f)
	if i == noIndex {
		t.stripes[s].mu.Unlock()
		return Entry{}, false
	}
	e := &t.sessions[i]
	if expired(atomic.LoadUint32(&e.state), atomic.LoadUint32(&e.deadline), sec) {
		t.stripes[s].mu.Unlock()
		return Entry{}, false
	}
	st, dl := t.touch(i, true, tcpFlags, sec)
	ent := t.entry(i, st, dl)
	t.stripes[s].mu.Unlock()
	return ent, true
}

// LookupReply finds the live session of reverse key r (hash h). With touch,
// it folds an inbound packet with tcpFlags into it (ICMP errors look up
// without touching, RFC 5508 section 3).
func (t *Table) LookupReply(r *Reply, h uint64, tcpFlags uint8, touch bool, now int64) (Entry, bool) {
	s := t.stripeOf(h)
	sec := seconds(now)
	t.stripes[s].mu.Lock()
	i := t.findReply(s, h, r)
	if i == noIndex {
		t.stripes[s].mu.Unlock()
		return Entry{}, false
	}
	e := &t.sessions[i]
	st, dl := atomic.LoadUint32(&e.state), atomic.LoadUint32(&e.deadline)
	if expired(st, dl, sec) {
		t.stripes[s].mu.Unlock()
		return Entry{}, false
	}
	if touch {
		st, dl = t.touch(i, false, tcpFlags, sec)
	}
	ent := t.entry(i, st, dl)
	t.stripes[s].mu.Unlock()
	return ent, true
}

// PeekFlow prefetches what LookupFlow(h) will read: call it for a whole
// burst first. It takes no lock and changes nothing.
func (t *Table) PeekFlow(h uint64) { t.peek(h) }

// PeekReply is PeekFlow for reverse keys.
func (t *Table) PeekReply(h uint64) { t.peek(h) }

// PrefetchBucket starts loading the home bucket of h (first pass of a burst).
func (t *Table) PrefetchBucket(h uint64) {
	prefetch(uintptr(unsafe.Pointer(t.bucketAt(t.stripeOf(h), t.home(h)))))
}

func (t *Table) peek(h uint64) {
	b := t.bucketAt(t.stripeOf(h), t.home(h))
	tag := tagOf(h)
	for j := 0; j < slots; j++ {
		if atomic.LoadUint32(&b.tag[j]) == tag {
			i := atomic.LoadUint32(&b.idx[j])
			if i < uint32(len(t.sessions)) {
				prefetch(uintptr(unsafe.Pointer(&t.sessions[i])))
			}
			return
		}
	}
}

// Create looks forward key f (hash fh) up and, when no live session has it,
// creates one with public address pub and a port drawn from ports (rnd is the
// caller's random state), tagged with pool and gen. An expired session of f
// is replaced. It never blocks a stripe on another stripe out of order.
func (t *Table) Create(f *Flow, fh uint64, pub uint32, ports *Ports, rnd *uint64, pool uint16, gen uint32, tcpFlags uint8, now int64) (Entry, Status) {
	s := t.stripeOf(fh)
	sec := seconds(now)
	st := &t.stripes[s]
	for attempt := 0; ; attempt++ {
		st.mu.Lock()
		i := t.findFlow(s, fh, f)
		if i == noIndex {
			break
		}
		e := &t.sessions[i]
		if !expired(atomic.LoadUint32(&e.state), atomic.LoadUint32(&e.deadline), sec) {
			stt, dl := t.touch(i, true, tcpFlags, sec)
			ent := t.entry(i, stt, dl)
			st.mu.Unlock()
			return ent, Found
		}
		st.mu.Unlock()
		t.expire(i, sec, attempt > 2)
	}
	// st is held and f is absent.
	if t.live.Add(1) > t.capacity || st.free == noIndex {
		t.live.Add(-1)
		st.full++
		st.mu.Unlock()
		return Entry{}, Full
	}
	i := st.free
	e := &t.sessions[i]
	st.free = e.inner
	status := NoPort
	for try := 0; try < ports.Tries; try++ {
		x := *rnd
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		*rnd = x
		port := ports.Min + uint16((ports.Start+uint32((x>>32)*uint64(ports.Span)>>32))%ports.Total)
		r := Reply{Public: pub, Remote: f.Remote, PublicPort: port, RemotePort: f.RemotePort, Proto: f.Proto}
		rh := t.HashReply(&r)
		rs := t.stripeOf(rh)
		if t.lockSecond(s, rs) {
			if j := t.findFlow(s, fh, f); j != noIndex {
				// Another worker created it while s was released.
				t.unlockSecond(s, rs)
				e.inner = st.free
				st.free = i
				t.live.Add(-1)
				x := &t.sessions[j]
				ent := t.entry(j, atomic.LoadUint32(&x.state), atomic.LoadUint32(&x.deadline))
				st.mu.Unlock()
				return ent, Found
			}
		}
		if t.findReply(rs, rh, &r) != noIndex {
			t.unlockSecond(s, rs)
			continue
		}
		// The slot is free and unpublished: only state and deadline can be
		// read concurrently (by Sweep), and they stay zero until published.
		e.inner, e.remote, e.public = f.Inner, f.Remote, pub
		e.innerPort, e.remotePort, e.pubPort = f.InnerPort, f.RemotePort, port
		e.vpc, e.pool, e.proto = f.VPC, pool, f.Proto
		if !t.insertSlot(rs, rh, i) {
			t.unlockSecond(s, rs)
			status = Full
			break
		}
		if !t.insertSlot(s, fh, i) {
			t.removeSlot(rs, rh, i)
			t.unlockSecond(s, rs)
			status = Full
			break
		}
		stt := t.to.nextState(stLive|(gen&genMask)<<genShift, f.Proto, true, tcpFlags, f.RemotePort)
		dl := sec + t.to.timeout(stt, f.Proto)
		atomic.StoreUint32(&e.deadline, dl)
		atomic.StoreUint32(&e.state, stt)
		t.unlockSecond(s, rs)
		st.created++
		ent := t.entry(i, stt, dl)
		st.mu.Unlock()
		return ent, Created
	}
	// Out of ports, or (rarely) out of bucket room in a stripe.
	if status == Full {
		st.full++
	} else {
		st.noPort++
	}
	e.inner = st.free
	st.free = i
	t.live.Add(-1)
	st.mu.Unlock()
	return Entry{}, status
}

// expire deletes session i if it is still live and expired at second now
// (or, with force, whenever it is live and not refreshed meanwhile).
func (t *Table) expire(i uint32, now uint32, force bool) bool {
	s := i / t.per
	st := &t.stripes[s]
	st.mu.Lock()
	e := &t.sessions[i]
	state, dl := atomic.LoadUint32(&e.state), atomic.LoadUint32(&e.deadline)
	if state&stLive == 0 || !(force || expired(state, dl, now)) {
		st.mu.Unlock()
		return false
	}
	f := Flow{Inner: e.inner, Remote: e.remote, InnerPort: e.innerPort, RemotePort: e.remotePort, VPC: e.vpc, Proto: e.proto}
	r := Reply{Public: e.public, Remote: e.remote, PublicPort: e.pubPort, RemotePort: e.remotePort, Proto: e.proto}
	fh, rh := t.HashFlow(&f), t.HashReply(&r)
	rs := t.stripeOf(rh)
	if t.lockSecond(s, rs) {
		// s was released: the slot may hold another session now. Recheck.
		state2, dl2 := atomic.LoadUint32(&e.state), atomic.LoadUint32(&e.deadline)
		if state2 != state || dl2 != dl || e.inner != f.Inner || e.remote != f.Remote || e.innerPort != f.InnerPort || e.public != r.Public || e.pubPort != r.PublicPort {
			t.unlockSecond(s, rs)
			st.mu.Unlock()
			return false
		}
	}
	t.removeSlot(s, fh, i)
	t.removeSlot(rs, rh, i)
	atomic.StoreUint32(&e.state, 0)
	e.inner = st.free
	st.free = i
	t.live.Add(-1)
	if state&stKilled != 0 {
		st.killed++
	} else {
		st.expired++
	}
	t.unlockSecond(s, rs)
	st.mu.Unlock()
	return true
}

// Kill closes the session that Entry e describes if it still lives in its
// slot; it stops matching at once and is freed by the next Sweep over it.
func (t *Table) Kill(e *Entry) {
	s := e.Index / t.per
	st := &t.stripes[s]
	st.mu.Lock()
	x := &t.sessions[e.Index]
	for {
		old := atomic.LoadUint32(&x.state)
		if old&stLive == 0 || x.inner != e.Flow.Inner || x.remote != e.Flow.Remote || x.innerPort != e.Flow.InnerPort ||
			x.remotePort != e.Flow.RemotePort || x.vpc != e.Flow.VPC || x.proto != e.Flow.Proto {
			break
		}
		if atomic.CompareAndSwapUint32(&x.state, old, old|stClosed|stKilled) {
			break
		}
	}
	st.mu.Unlock()
}

// Revalidate retags a live session with generation gen (the owner checked it
// against the new configuration).
func (t *Table) Revalidate(e *Entry, gen uint32) {
	x := &t.sessions[e.Index]
	for {
		old := atomic.LoadUint32(&x.state)
		if old&stLive == 0 || old>>genShift != e.Gen {
			return
		}
		if atomic.CompareAndSwapUint32(&x.state, old, old&(1<<genShift-1)|(gen&genMask)<<genShift) {
			return
		}
	}
}

// Sweep examines the next n session slots (a cursor shared by all callers
// wraps around the table) and frees those expired at now. It returns how many
// it freed. Call it with a small n per burst, or from a background goroutine.
func (t *Table) Sweep(now int64, n int) int {
	if n <= 0 {
		return 0
	}
	total := uint64(len(t.sessions))
	start := t.cursor.Add(uint64(n)) - uint64(n)
	sec := seconds(now)
	freed := 0
	for k := uint64(0); k < uint64(n) && k < total; k++ {
		i := uint32((start + k) % total)
		e := &t.sessions[i]
		st := atomic.LoadUint32(&e.state)
		if st&stLive == 0 || !expired(st, atomic.LoadUint32(&e.deadline), sec) {
			continue
		}
		if t.expire(i, sec, false) {
			freed++
		}
	}
	return freed
}

// Slots is the number of session slots Sweep cycles through.
func (t *Table) Slots() int { return len(t.sessions) }

// Counters sums the stripes' counters.
func (t *Table) Counters() Counters {
	c := Counters{Live: uint64(t.live.Load()), Capacity: uint64(t.capacity)}
	for s := range t.stripes {
		st := &t.stripes[s]
		st.mu.Lock()
		c.Created += st.created
		c.Expired += st.expired
		c.Killed += st.killed
		c.DroppedFull += st.full
		c.DroppedPortsExhausted += st.noPort
		st.mu.Unlock()
	}
	return c
}

// Walk calls fn with a copy of every live, unexpired session, stripe by
// stripe, until fn returns false. fn runs with a stripe locked: it must not
// call back into the table. For listings, not for the hot path.
func (t *Table) Walk(now int64, fn func(*Entry) bool) {
	sec := seconds(now)
	for s := range t.stripes {
		st := &t.stripes[s]
		st.mu.Lock()
		base := uint32(s) * t.per
		for i := base; i < base+t.per; i++ {
			e := &t.sessions[i]
			state, dl := atomic.LoadUint32(&e.state), atomic.LoadUint32(&e.deadline)
			if state&stLive == 0 || expired(state, dl, sec) {
				continue
			}
			ent := t.entry(i, state, dl)
			if !fn(&ent) {
				st.mu.Unlock()
				return
			}
		}
		st.mu.Unlock()
	}
}
