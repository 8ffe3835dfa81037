package flowtable

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/peergate/peergate/internal/prefetch"
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

func (p *Ports) pick(x uint64) uint16 {
	return p.Min + uint16((p.Start+uint32((x>>32)*uint64(p.Span)>>32))%p.Total)
}

// nextRand is one xorshift64 step (RFC 6056 wants ports hard to guess, not
// cryptographic).
func nextRand(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
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

// bucket is one cache line. Every field is written with atomic stores under
// the stripe lock (bracketed by the stripe's sequence count) and read with
// atomic loads, so lookups can run without the lock.
type bucket struct {
	tag [slots]uint32 // 0 = empty
	ovf uint32
	idx [slots]uint32
	_   uint32
}

// session is 32 bytes in four atomic words, pointer-free:
//
//	w0: inner | remote<<32        (inner is the free-list link of a free slot)
//	w1: public | innerPort<<32 | remotePort<<48
//	w2: pubPort | vpc<<16 | pool<<32 | proto<<48
//	w3: deadline | state<<32      (state: stXXX bits | gen<<genShift)
//
// w0-w2 change only while the slot is unpublished; w3 changes by CAS from
// both directions, which run under different stripes (or none).
type session struct {
	w [4]uint64
}

func (e *session) load(k int) uint64 { return atomic.LoadUint64(&e.w[k]) }

// store is for the stripe lock's holder (see storeRel64).
func (e *session) store(k int, v uint64) { storeRel64(&e.w[k], v) }

func flowWords(f *Flow) (w0, w1hi, w2m uint64) {
	return uint64(f.Inner) | uint64(f.Remote)<<32,
		uint64(f.InnerPort) | uint64(f.RemotePort)<<16,
		uint64(f.VPC)<<16 | uint64(f.Proto)<<48
}

const (
	flowMask2  = 0xffff<<16 | 0xff<<48
	replyMask1 = 0xffffffff | 0xffff<<48
	replyMask2 = 0xffff | 0xff<<48
)

func replyWords(r *Reply) (remote uint32, w1m, w2m uint64) {
	return r.Remote, uint64(r.Public) | uint64(r.RemotePort)<<48, uint64(r.PublicPort) | uint64(r.Proto)<<48
}

type stripe struct {
	mu spinLock
	// seq is odd while the stripe's buckets change; lock-free readers
	// retry (or take the lock) when it moved under them. Written under mu
	// only (bump), loaded atomically.
	seq uint32
	// free is the free-list head: written under mu, loaded without it only
	// to prefetch the slot the next Create takes.
	free    uint32
	created uint64 // the counters are under mu
	expired uint64
	full    uint64
	noPort  uint64
	killed  uint64
	_       [64]byte // keep two stripes' locks off one cache line
}

func (st *stripe) loadSeq() uint32 { return atomic.LoadUint32(&st.seq) }

// bump moves seq on by one (odd: a change starts; even: it is done). The
// caller holds mu, so a release store is enough.
func (st *stripe) bump() { storeRel32(&st.seq, st.seq+1) }

func (st *stripe) loadFree() uint32 { return atomic.LoadUint32(&st.free) }

// setFree sets the free-list head; the caller holds mu.
func (st *stripe) setFree(i uint32) { storeRel32(&st.free, i) }

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
	seed     [4]uint64
	to       secs
	// The two counters every worker writes sit on their own cache line:
	// next to the read-mostly fields above, each write would take the
	// line away from the other workers' lookups.
	_      [64]byte
	live   atomic.Int64
	cursor atomic.Uint64
	_      [64]byte
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
	adviseHuge(unsafe.Pointer(&t.buckets[0]), uintptr(len(t.buckets))*unsafe.Sizeof(bucket{}))
	adviseHuge(unsafe.Pointer(&t.sessions[0]), uintptr(len(t.sessions))*unsafe.Sizeof(session{}))
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
		for i := uint32(0); i < per-1; i++ {
			t.sessions[base+i].w[0] = uint64(base + i + 1)
		}
		t.sessions[base+per-1].w[0] = noIndex
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

// Slots is the number of session slots Sweep cycles through.
func (t *Table) Slots() int { return len(t.sessions) }

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
	w1, w2 := flowKey(f)
	return hashKey(w1, w2, &t.seed)
}

// HashReply returns the hash of a reverse key.
func (t *Table) HashReply(r *Reply) uint64 {
	w1, w2 := replyKey(r)
	return hashKey(w1, w2, &t.seed)
}

// flowKey and replyKey are the two words a key hashes as (the low bit of
// the second tells the directions apart); small enough to inline, with
// hashKey, into LookupBurst's loops.
func flowKey(f *Flow) (uint64, uint64) {
	return uint64(f.Inner)<<32 | uint64(f.Remote),
		uint64(f.InnerPort)<<48 | uint64(f.RemotePort)<<32 | uint64(f.VPC)<<16 | uint64(f.Proto)<<8
}

func replyKey(r *Reply) (uint64, uint64) {
	return uint64(r.Public)<<32 | uint64(r.Remote),
		uint64(r.PublicPort)<<48 | uint64(r.RemotePort)<<32 | uint64(r.Proto)<<8 | 1
}

func hashKey(w1, w2 uint64, seed *[4]uint64) uint64 {
	return mix(mix(w1^seed[0], w2^seed[1])^seed[2], seed[3])
}

// stripeOf is the top bits of h; a one-stripe table has shift 64, which Go
// defines to give 0.
func (t *Table) stripeOf(h uint64) uint32 { return uint32(h >> t.shift) }

func (t *Table) home(h uint64) uint32 { return uint32((h & math.MaxUint32) * uint64(t.nb) >> 32) }

func tagOf(h uint64) uint32 { return uint32(h>>24) | 1 }

func (t *Table) bucketAt(s, pos uint32) *bucket { return &t.buckets[s*t.nb+pos] }

// matcher is a key in the form the probe compares: a session matches when
// each of its first three words, masked, equals the matcher's word. Forward
// keys compare w0, the high half of w1 and w2's vpc and proto; reverse keys
// the high half of w0 (remote), w1's public address and remote port, and
// w2's public port and proto. One branch-free compare for both directions.
type matcher struct {
	v0, v1, v2 uint64
	m0, m1, m2 uint64
}

// setFlow and setReply fill m in place, word by word: building a matcher
// by value made the compiler copy it through a template with overlapping
// wide and narrow stores, a store-forwarding stall per lookup.
func (m *matcher) setFlow(f *Flow) {
	w0, w1hi, w2m := flowWords(f)
	m.v0, m.v1, m.v2 = w0, w1hi<<32, w2m
	m.m0, m.m1, m.m2 = math.MaxUint64, math.MaxUint32<<32, flowMask2
}

func (m *matcher) setReply(r *Reply) {
	remote, w1m, w2m := replyWords(r)
	m.v0, m.v1, m.v2 = uint64(remote)<<32, w1m, w2m
	m.m0, m.m1, m.m2 = math.MaxUint32<<32, replyMask1, replyMask2
}

func (m *matcher) match(e *session) bool {
	return (e.load(0)&m.m0^m.v0)|(e.load(1)&m.m1^m.v1)|(e.load(2)&m.m2^m.v2) == 0
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// hits returns a bit per slot of b whose tag is tag. Branch-free: the slot a
// key sits in is random, so a scan that stops at it would mispredict once
// per lookup.
func (b *bucket) hits(tag uint32) uint32 {
	var m uint32
	for j := 0; j < slots; j++ {
		m |= b2u(atomic.LoadUint32(&b.tag[j]) == tag) << j
	}
	return m
}

// find returns the index of the session matching m in stripe s, or noIndex.
// It reads with atomic loads only: under the stripe lock it is exact; without
// it the caller validates the stripe's sequence count around it.
func (t *Table) find(s uint32, h uint64, m *matcher) uint32 {
	tag, pos := tagOf(h), t.home(h)
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		for hs := b.hits(tag); hs != 0; hs &= hs - 1 {
			i := atomic.LoadUint32(&b.idx[bits.TrailingZeros32(hs)])
			if i < uint32(len(t.sessions)) && m.match(&t.sessions[i]) {
				return i
			}
		}
		if atomic.LoadUint32(&b.ovf) == 0 {
			break
		}
		if pos++; pos == t.nb {
			pos = 0
		}
	}
	return noIndex
}

// insertSlot publishes index i under hash h in stripe s. Caller holds s.
// The free slot is found from a mask of the bucket's empty tags, not by a
// scan that stops at it: where that is is random, and a stopping scan
// mispredicts once per insertion.
func (t *Table) insertSlot(s uint32, h uint64, i uint32) bool {
	tag, pos := tagOf(h), t.home(h)
	start := pos
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		if free := b.hits(0); free != 0 {
			j := bits.TrailingZeros32(free)
			st := &t.stripes[s]
			if pos == start {
				publish(&st.seq, &b.idx[j], &b.tag[j], i, tag)
				return true
			}
			st.bump()
			storeRel32(&b.idx[j], i)
			storeRel32(&b.tag[j], tag)
			for p := start; p != pos; {
				o := &t.bucketAt(s, p).ovf
				storeRel32(o, *o+1)
				if p++; p == t.nb {
					p = 0
				}
			}
			st.bump()
			return true
		}
		if pos++; pos == t.nb {
			pos = 0
		}
	}
	return false
}

// removeSlot unpublishes index i under hash h in stripe s. Caller holds s.
// Like insertSlot, it looks through a mask of the slots with i's tag.
func (t *Table) removeSlot(s uint32, h uint64, i uint32) {
	tag, pos := tagOf(h), t.home(h)
	start := pos
	for n := uint32(0); n < t.nb; n++ {
		b := t.bucketAt(s, pos)
		for hs := b.hits(tag); hs != 0; hs &= hs - 1 {
			j := bits.TrailingZeros32(hs)
			if b.idx[j] != i {
				continue
			}
			st := &t.stripes[s]
			if pos == start {
				unpublish(&st.seq, &b.tag[j])
				return
			}
			st.bump()
			storeRel32(&b.tag[j], 0)
			for p := start; p != pos; {
				o := &t.bucketAt(s, p).ovf
				storeRel32(o, *o-1)
				if p++; p == t.nb {
					p = 0
				}
			}
			st.bump()
			return
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

func unpack(i uint32, w0, w1, w2, w3 uint64) Entry {
	var e Entry
	e.set(i, w0, w1, w2, w3)
	return e
}

func (e *Entry) set(i uint32, w0, w1, w2, w3 uint64) {
	st := uint32(w3 >> 32)
	e.Flow.Inner, e.Flow.Remote = uint32(w0), uint32(w0>>32)
	e.Flow.InnerPort, e.Flow.RemotePort = uint16(w1>>32), uint16(w1>>48)
	e.Flow.VPC, e.Flow.Proto = uint16(w2>>16), uint8(w2>>48)
	e.Public, e.PublicPort, e.Pool = uint32(w1), uint16(w2), uint16(w2>>32)
	e.Gen, e.State, e.Deadline, e.Index = st>>genShift, State(st), uint32(w3), i
}

// victim is a session Sweep or Create means to expire: its slot, the key
// words it was seen with and their two hashes (valid when known), so that
// expire hashes nothing again when the slot still holds them.
type victim struct {
	i          uint32
	known      bool
	w0, w1, w2 uint64
	fh, rh     uint64
}

// see records the key words of session i and their hashes, computed from
// the words directly (flowKey and replyKey of the session they hold).
func (t *Table) see(v *victim, i uint32, w0, w1, w2 uint64) {
	v.i, v.known, v.w0, v.w1, v.w2 = i, true, w0, w1, w2
	port, proto := w1>>48<<32, w2>>48&0xff<<8
	v.fh = hashKey(bits.RotateLeft64(w0, 32), w1>>32&0xffff<<48|port|w2&0xffff0000|proto, &t.seed)
	v.rh = hashKey(w1<<32|w0>>32, w2<<48|port|proto|1, &t.seed)
}

// use folds one packet into session i (found matching under its stripe's
// lock, so it cannot be freed meanwhile) and returns it; ok is false when
// it is expired or dead.
func (t *Table) use(i uint32, out, touch bool, tcpFlags uint8, now uint32, ent *Entry) bool {
	e := &t.sessions[i]
	w0, w1, w2 := e.load(0), e.load(1), e.load(2)
	for {
		w3 := e.load(3)
		n3, ok := t.step(w1, w2, w3, out, touch, tcpFlags, now)
		if !ok {
			return false
		}
		if n3 == w3 || atomic.CompareAndSwapUint64(&e.w[3], w3, n3) {
			ent.set(i, w0, w1, w2, n3)
			return true
		}
	}
}

// step computes a session's next w3 after one packet; ok is false when the
// session is dead or expired.
func (t *Table) step(w1, w2, w3 uint64, out, touch bool, tcpFlags uint8, now uint32) (uint64, bool) {
	st := uint32(w3 >> 32)
	if st&stLive == 0 || expired(st, uint32(w3), now) {
		return 0, false
	}
	if !touch {
		return w3, true
	}
	proto := uint8(w2 >> 48)
	nst := st
	// Most packets change no state bits: only TCP SYN, FIN, RST and UDP
	// replies (DNS) can.
	if tcpFlags&(TCPSyn|TCPFin|TCPRst) != 0 || (proto == ProtoUDP && !out) {
		nst = t.to.nextState(st, proto, out, tcpFlags, uint16(w1>>48))
	}
	return uint64(nst)<<32 | uint64(now+t.to.timeout(nst, proto)), true
}

// lookup is LookupFlow and LookupReply. The fast path takes no lock: it
// reads the stripe's sequence count, finds the session, snapshots it and
// checks the count again (a session can only be freed and reused after its
// index entries are removed, which moves the count); it then CASes the new
// state in. Any interference sends it to the locked path.
func (t *Table) lookup(m *matcher, h uint64, out, touch bool, tcpFlags uint8, now int64, ent *Entry) bool {
	s := t.stripeOf(h)
	sec := seconds(now)
	sq := &t.stripes[s]
	if v := sq.loadSeq(); v&1 == 0 {
		i := t.find(s, h, m)
		if i == noIndex {
			if sq.loadSeq() == v {
				return false
			}
		} else {
			e := &t.sessions[i]
			w3 := e.load(3)
			w0, w1, w2 := e.load(0), e.load(1), e.load(2)
			// A dead slot may be a session being expired or put back:
			// ask under the lock.
			if sq.loadSeq() == v && w3>>32&stLive != 0 {
				n3, ok := t.step(w1, w2, w3, out, touch, tcpFlags, sec)
				if !ok {
					return false
				}
				if n3 == w3 || atomic.CompareAndSwapUint64(&e.w[3], w3, n3) {
					ent.set(i, w0, w1, w2, n3)
					return true
				}
			}
		}
	}
	st := &t.stripes[s]
	st.mu.Lock()
	i := t.find(s, h, m)
	found := i != noIndex && t.use(i, out, touch, tcpFlags, sec, ent)
	st.mu.Unlock()
	return found
}

// LookupFlow finds the live session of forward key f (hash h), copies it to
// ent and, with touch, folds an outbound packet with tcpFlags into it. Expired sessions are
// not returned (Create replaces them). It takes no lock unless a writer
// changes f's stripe at the same moment.
func (t *Table) LookupFlow(f *Flow, h uint64, tcpFlags uint8, touch bool, now int64, ent *Entry) bool {
	var m matcher
	m.setFlow(f)
	return t.lookup(&m, h, true, touch, tcpFlags, now, ent)
}

// LookupReply finds the live session of reverse key r (hash h). With touch,
// it folds an inbound packet with tcpFlags into it (ICMP errors look up
// without touching, RFC 5508 section 3).
func (t *Table) LookupReply(r *Reply, h uint64, tcpFlags uint8, touch bool, now int64, ent *Entry) bool {
	var m matcher
	m.setReply(r)
	return t.lookup(&m, h, false, touch, tcpFlags, now, ent)
}

// Query is one key of a burst lookup (LookupBurst).
type Query struct {
	// Flow is the key of an outbound query, Reply the key of an inbound
	// one (Reverse).
	Flow    Flow
	Reply   Reply
	Reverse bool
	// Touch folds the packet, with TCPFlags, into the session (see
	// LookupFlow and LookupReply).
	Touch    bool
	TCPFlags uint8
	// Hash is set by LookupBurst: HashFlow or HashReply of the key.
	Hash uint64
	// Found and Entry are the result, as LookupFlow and LookupReply give it.
	Found bool
	Entry Entry
	cand  uint32 // session whose tag the peek pass saw, absent, or noIndex
	seq   uint32 // the stripe's sequence count before that peek
	next  uint32 // overflow bucket the peek pass continues in, or noIndex
}

// absent is the candidate of a query whose bucket chain ended without its
// tag (session indexes stay below 2^31).
const absent = noIndex - 1

// burstMax is how many queries LookupBurst keeps in flight: enough misses to
// fill the core's miss buffers, few enough that the lines of the first are
// still in L1 when the last is issued.
const burstMax = 32

// LookupBurst looks up every query of qs, burstMax at a time, in three
// passes: hash every key and prefetch its home bucket; read the stripe's
// sequence count and the bucket's tags and prefetch the candidate session;
// then check the candidate against the key and the sequence count (the
// lock-free path of LookupFlow, without its second bucket scan). A query
// whose candidate fails (tag collision, overflow bucket, concurrent writer,
// absent key) falls back to LookupFlow or LookupReply. No allocation, no
// lock unless a writer is in the stripe.
func (t *Table) LookupBurst(qs []Query, now int64) {
	sec := seconds(now)
	// Prefetch addresses are gathered and issued by one assembly call per
	// group (prefetch.Lines): a call per key cost more than the rest of the pass.
	var pf [burstMax]uintptr
	for len(qs) > 0 {
		b := qs[:min(len(qs), burstMax)]
		qs = qs[len(b):]
		for k := range b {
			q := &b[k]
			var w1, w2 uint64
			if q.Reverse {
				w1, w2 = replyKey(&q.Reply)
			} else {
				w1, w2 = flowKey(&q.Flow)
			}
			h := hashKey(w1, w2, &t.seed)
			q.Hash = h
			pf[k] = uintptr(unsafe.Pointer(t.bucketAt(t.stripeOf(h), t.home(h))))
		}
		prefetch.Lines(&pf[0], len(b))
		// Sessions are prefetched eight keys at a time, so that the first
		// are on their way before the pass ends.
		g := 0
		for k := range b {
			q := &b[k]
			s := t.stripeOf(q.Hash)
			q.seq = t.stripes[s].loadSeq()
			q.cand = noIndex
			pf[k] = t.peekFirst(q, s, t.home(q.Hash))
			if k&7 == 7 {
				prefetch.Lines(&pf[g], k+1-g)
				g = k + 1
			}
		}
		if g < len(b) {
			prefetch.Lines(&pf[g], len(b)-g)
		}
		// About one key in ten overflowed its home bucket (load factor
		// 0.85, 7 slots): follow the chains here, prefetched, rather than
		// miss on them in the lookup pass.
		for round, more := 0, true; more && round < 3; round++ {
			more = false
			for k := range b {
				if q := &b[k]; q.next != noIndex {
					more = t.peekBucket(q, t.stripeOf(q.Hash), q.next) || more
				}
			}
		}
		for k := range b {
			q := &b[k]
			var m matcher
			if q.Reverse {
				m.setReply(&q.Reply)
			} else {
				m.setFlow(&q.Flow)
			}
			if !t.lookupCand(&m, q, sec) {
				q.Found = t.lookup(&m, q.Hash, !q.Reverse, q.Touch, q.TCPFlags, now, &q.Entry)
			}
		}
	}
}

// peekFirst is peekBucket for a key's home bucket, returning the address
// to prefetch (the candidate session or the next bucket) instead of
// prefetching it.
func (t *Table) peekFirst(q *Query, s, pos uint32) uintptr {
	q.next = noIndex
	bk := t.bucketAt(s, pos)
	if hs := bk.hits(tagOf(q.Hash)); hs != 0 {
		if i := atomic.LoadUint32(&bk.idx[bits.TrailingZeros32(hs)]); i < uint32(len(t.sessions)) {
			q.cand = i
			return uintptr(unsafe.Pointer(&t.sessions[i]))
		}
		return uintptr(unsafe.Pointer(q))
	}
	if atomic.LoadUint32(&bk.ovf) == 0 {
		q.cand = absent
		return uintptr(unsafe.Pointer(q))
	}
	if pos++; pos == t.nb {
		pos = 0
	}
	q.next = pos
	return uintptr(unsafe.Pointer(t.bucketAt(s, pos)))
}

// peekBucket looks for q's tag in bucket pos of stripe s. On a hit it
// records the session as q's candidate and prefetches it; when the key may
// sit further on, it prefetches the next bucket, records it in q.next and
// reports true.
func (t *Table) peekBucket(q *Query, s, pos uint32) bool {
	q.next = noIndex
	bk := t.bucketAt(s, pos)
	if hs := bk.hits(tagOf(q.Hash)); hs != 0 {
		if i := atomic.LoadUint32(&bk.idx[bits.TrailingZeros32(hs)]); i < uint32(len(t.sessions)) {
			q.cand = i
			prefetch.Line(uintptr(unsafe.Pointer(&t.sessions[i])))
		}
		return false
	}
	if atomic.LoadUint32(&bk.ovf) == 0 {
		q.cand = absent
		return false
	}
	if pos++; pos == t.nb {
		pos = 0
	}
	q.next = pos
	prefetch.Line(uintptr(unsafe.Pointer(t.bucketAt(s, pos))))
	return true
}

// lookupCand completes q from the candidate its peek found: valid when the
// candidate matches the key, is live, and the stripe's sequence count did
// not move since before the peek (the bucket still published it, so its key
// words cannot have changed). It reports false when the caller must look up
// the long way.
func (t *Table) lookupCand(m *matcher, q *Query, sec uint32) bool {
	i := q.cand
	if q.seq&1 != 0 {
		return false
	}
	if i == absent {
		// The chain ended without the tag: absent, unless a writer moved
		// the stripe since (a new flow's burst ends here).
		if t.stripes[t.stripeOf(q.Hash)].loadSeq() != q.seq {
			return false
		}
		q.Found = false
		return true
	}
	if i >= uint32(len(t.sessions)) {
		return false
	}
	e := &t.sessions[i]
	if !m.match(e) {
		return false
	}
	w3 := e.load(3)
	w0, w1, w2 := e.load(0), e.load(1), e.load(2)
	if t.stripes[t.stripeOf(q.Hash)].loadSeq() != q.seq || w3>>32&stLive == 0 {
		return false
	}
	n3, ok := t.step(w1, w2, w3, !q.Reverse, q.Touch, q.TCPFlags, sec)
	if !ok {
		q.Found = false
		return true
	}
	if n3 != w3 && !atomic.CompareAndSwapUint64(&e.w[3], w3, n3) {
		return false
	}
	q.Found = true
	q.Entry.set(i, w0, w1, w2, n3)
	return true
}

// PrefetchBucket starts loading the home bucket of h: the first pass over a
// burst.
func (t *Table) PrefetchBucket(h uint64) {
	prefetch.Line(uintptr(unsafe.Pointer(t.bucketAt(t.stripeOf(h), t.home(h)))))
}

// PeekFlow prefetches the session a lookup of h will probably compare: the
// second pass over a burst, after PrefetchBucket. It changes nothing.
func (t *Table) PeekFlow(h uint64) { t.peek(h) }

// PeekReply is PeekFlow for reverse keys.
func (t *Table) PeekReply(h uint64) { t.peek(h) }

func (t *Table) peek(h uint64) {
	b := t.bucketAt(t.stripeOf(h), t.home(h))
	if hs := b.hits(tagOf(h)); hs != 0 {
		if i := atomic.LoadUint32(&b.idx[bits.TrailingZeros32(hs)]); i < uint32(len(t.sessions)) {
			prefetch.Line(uintptr(unsafe.Pointer(&t.sessions[i])))
		}
	}
}

// PrefetchCreate starts loading the reply bucket of the first port Create(f,
// pub, ports, rnd) will try, which is free almost always: call it for the
// new flows of a burst before creating them so their misses overlap.
func (t *Table) PrefetchCreate(f *Flow, pub uint32, ports *Ports, rnd uint64) {
	t.PrefetchNew(f, t.HashFlow(f), pub, ports, rnd)
}

// PrefetchNew is PrefetchCreate for a caller that has f's hash fh already
// (it saves hashing f again).
func (t *Table) PrefetchNew(f *Flow, fh uint64, pub uint32, ports *Ports, rnd uint64) {
	var d Draw
	t.PrepareNew(&d, f, fh, pub, ports, rnd)
}

// Draw is the first port draw of a new session, made and prefetched by
// PrepareNew and consumed by CreateDrawn, so that the creation neither draws
// nor hashes it again nor prefetches what PrepareNew did. It records what it
// was drawn from; CreateDrawn ignores a draw made for other arguments.
type Draw struct {
	from, x uint64 // the random state before and after the draw
	ports   Ports
	r       Reply
	rh      uint64
	ok      bool
}

// PrepareNew is PrefetchNew that also keeps in d the port draw and reply
// hash it computed, for CreateDrawn(f, fh, pub, ports, &rnd, d, ...).
func (t *Table) PrepareNew(d *Draw, f *Flow, fh uint64, pub uint32, ports *Ports, rnd uint64) {
	d.ok = false
	if i := t.stripes[t.stripeOf(fh)].loadFree(); i < uint32(len(t.sessions)) {
		prefetch.Line(uintptr(unsafe.Pointer(&t.sessions[i])))
	}
	if ports.Tries > 0 && ports.Total > 0 && ports.Span > 0 {
		d.from, d.ports = rnd, *ports
		d.x = nextRand(rnd)
		firstReply(&d.r, f, pub, ports.pick(d.x))
		d.rh = t.HashReply(&d.r)
		d.ok = true
		t.PrefetchBucket(d.rh)
	}
}

// fits reports whether d is the first draw Create(f, pub, ports, rnd) makes.
func (d *Draw) fits(f *Flow, pub uint32, ports *Ports, rnd uint64) bool {
	return d.ok && d.from == rnd && d.ports == *ports && d.r.Public == pub &&
		d.r.Remote == f.Remote && d.r.RemotePort == f.RemotePort && d.r.Proto == f.Proto
}

// firstReply fills r, field by field (a composite literal is built in a
// temporary and read back with wide loads: a store-forwarding stall), with
// the reverse key of f on public address pub and port.
func firstReply(r *Reply, f *Flow, pub uint32, port uint16) {
	r.Public, r.Remote, r.PublicPort, r.RemotePort, r.Proto = pub, f.Remote, port, f.RemotePort, f.Proto
}

// copyReplyKey copies a reverse key field by field (see firstReply).
func copyReplyKey(dst, src *Reply) {
	dst.Public, dst.Remote, dst.PublicPort, dst.RemotePort, dst.Proto = src.Public, src.Remote, src.PublicPort, src.RemotePort, src.Proto
}

// Create looks forward key f (hash fh) up and, when no live session has it,
// creates one with public address pub and a port drawn from ports (rnd is the
// caller's random state), tagged with pool and gen. An expired session of f
// is replaced. It never blocks on a stripe out of order.
func (t *Table) Create(f *Flow, fh uint64, pub uint32, ports *Ports, rnd *uint64, pool uint16, gen uint32, tcpFlags uint8, now int64) (Entry, Status) {
	var ent Entry
	st := t.CreateDrawn(&ent, f, fh, pub, ports, rnd, nil, pool, gen, tcpFlags, now)
	return ent, st
}

// CreateDrawn is Create with the first port draw PrepareNew made (d, which
// may be nil or made for other arguments: then Create draws it), returning
// the session in ent (set only when Created or Found). With a fitting draw
// it prefetches nothing: PrepareNew did, and the caller's lookup loaded f's
// bucket.
func (t *Table) CreateDrawn(ent *Entry, f *Flow, fh uint64, pub uint32, ports *Ports, rnd *uint64, d *Draw, pool uint16, gen uint32, tcpFlags uint8, now int64) Status {
	s := t.stripeOf(fh)
	sec := seconds(now)
	st := &t.stripes[s]
	var fm matcher
	fm.setFlow(f)
	tries := ports.Tries
	if ports.Total == 0 || ports.Span == 0 {
		tries = 0
	}
	x := *rnd
	var r Reply
	var rh uint64
	if d != nil && tries > 0 && d.fits(f, pub, ports, x) {
		x, rh = d.x, d.rh
		copyReplyKey(&r, &d.r)
	} else {
		// The first port draw is hashed once, before the lock: its reply
		// bucket is prefetched with the forward bucket and the free slot
		// (no-ops when the caller prefetched the burst), and the first try
		// below uses it.
		if tries > 0 {
			x = nextRand(x)
			firstReply(&r, f, pub, ports.pick(x))
			rh = t.HashReply(&r)
			t.PrefetchBucket(rh)
		}
		t.PrefetchBucket(fh)
		if i := st.loadFree(); i < uint32(len(t.sessions)) {
			prefetch.Line(uintptr(unsafe.Pointer(&t.sessions[i])))
		}
	}
	for attempt := 0; ; attempt++ {
		st.mu.Lock()
		i := t.find(s, fh, &fm)
		if i == noIndex {
			break
		}
		if t.use(i, true, true, tcpFlags, sec, ent) {
			st.mu.Unlock()
			return Found
		}
		st.mu.Unlock()
		v := victim{i: i}
		t.expire(&v, sec, attempt > 2)
	}
	// st is held and f is absent.
	if t.live.Add(1) > t.capacity || st.loadFree() == noIndex {
		t.live.Add(-1)
		st.full++
		st.mu.Unlock()
		return Full
	}
	i := st.loadFree()
	e := &t.sessions[i]
	st.setFree(uint32(e.load(0)))
	status := NoPort
	fw0, _, _ := flowWords(f)
	for try := 0; try < tries; try++ {
		if try > 0 {
			x = nextRand(*rnd)
			firstReply(&r, f, pub, ports.pick(x))
			rh = t.HashReply(&r)
		}
		*rnd = x
		port := r.PublicPort
		rs := t.stripeOf(rh)
		if t.lockSecond(s, rs) {
			if j := t.find(s, fh, &fm); j != noIndex {
				// Another worker created it while s was released.
				t.unlockSecond(s, rs)
				e.store(0, uint64(st.loadFree()))
				st.setFree(i)
				t.live.Add(-1)
				x := &t.sessions[j]
				ent.set(j, x.load(0), x.load(1), x.load(2), x.load(3))
				st.mu.Unlock()
				return Found
			}
		}
		var rm matcher
		rm.setReply(&r)
		if t.find(rs, rh, &rm) != noIndex {
			t.unlockSecond(s, rs)
			continue
		}
		// The slot is unpublished: nothing reads w0-w2 until insertSlot
		// publishes it (a stale lock-free reader that still holds its old
		// index fails its sequence check).
		stt := t.to.nextState(stLive|(gen&genMask)<<genShift, f.Proto, true, tcpFlags, f.RemotePort)
		w3 := uint64(stt)<<32 | uint64(sec+t.to.timeout(stt, f.Proto))
		w1 := uint64(pub) | uint64(f.InnerPort)<<32 | uint64(f.RemotePort)<<48
		w2 := uint64(port) | uint64(f.VPC)<<16 | uint64(pool)<<32 | uint64(f.Proto)<<48
		store4(&e.w, fw0, w1, w2, w3)
		if !t.insertSlot(rs, rh, i) {
			e.store(3, 0)
			t.unlockSecond(s, rs)
			status = Full
			break
		}
		if !t.insertSlot(s, fh, i) {
			t.removeSlot(rs, rh, i)
			e.store(3, 0)
			t.unlockSecond(s, rs)
			status = Full
			break
		}
		t.unlockSecond(s, rs)
		st.created++
		ent.set(i, fw0, w1, w2, w3)
		st.mu.Unlock()
		return Created
	}
	// Out of ports, or (rarely) out of bucket room in a stripe.
	if status == Full {
		st.full++
	} else {
		st.noPort++
	}
	e.store(0, uint64(st.loadFree()))
	st.setFree(i)
	t.live.Add(-1)
	st.mu.Unlock()
	return status
}

// expire deletes session v.i if it is still live and expired at second now
// (or, with force, whenever it is live). The hashes in v are used when the
// slot still holds the key words they were computed from.
func (t *Table) expire(v *victim, now uint32, force bool) bool {
	s := v.i / t.per
	st := &t.stripes[s]
	st.mu.Lock()
	ok := t.expireLocked(v, s, now, force)
	if ok {
		t.live.Add(-1)
	}
	st.mu.Unlock()
	return ok
}

// expireLocked is expire for a caller that holds v.i's stripe s; it may
// release and retake s on the way (lockSecond). It frees the slot but
// leaves the live count to the caller.
func (t *Table) expireLocked(v *victim, s, now uint32, force bool) bool {
	i := v.i
	st := &t.stripes[s]
	e := &t.sessions[i]
	w3 := e.load(3)
	state := uint32(w3 >> 32)
	if state&stLive == 0 || !(force || expired(state, uint32(w3), now)) {
		return false
	}
	// w0-w2 of a live slot change only under s, which is held.
	w0, w1, w2 := e.load(0), e.load(1), e.load(2)
	if !v.known || v.w0 != w0 || v.w1 != w1 || v.w2 != w2 {
		t.see(v, i, w0, w1, w2)
	}
	fh, rh := v.fh, v.rh
	rs := t.stripeOf(rh)
	if t.lockSecond(s, rs) {
		// s was released: the slot may hold another session now.
		if e.load(0) != w0 || e.load(1) != w1 || e.load(2) != w2 || e.load(3)>>32&stLive == 0 {
			t.unlockSecond(s, rs)
			return false
		}
	}
	// Stop the session for lock-free users first: a CAS in use() after this
	// fails on the live bit.
	for {
		w3 = e.load(3)
		if atomic.CompareAndSwapUint64(&e.w[3], w3, 0) {
			break
		}
	}
	state = uint32(w3 >> 32)
	if !force && !expired(state, uint32(w3), now) {
		// Refreshed between the check and the CAS: put it back.
		e.store(3, w3)
		t.unlockSecond(s, rs)
		return false
	}
	t.removeSlot(s, fh, i)
	t.removeSlot(rs, rh, i)
	e.store(0, uint64(st.loadFree()))
	st.setFree(i)
	if state&stKilled != 0 {
		st.killed++
	} else {
		st.expired++
	}
	t.unlockSecond(s, rs)
	return true
}

// Kill closes the session that Entry e describes if it still lives in its
// slot; it stops matching at once and is freed by the next Sweep over it.
func (t *Table) Kill(e *Entry) {
	x := &t.sessions[e.Index]
	var fm matcher
	fm.setFlow(&e.Flow)
	for {
		w3 := x.load(3)
		st := uint32(w3 >> 32)
		if st&stLive == 0 || !fm.match(x) || uint16(x.load(2)) != e.PublicPort {
			return
		}
		if atomic.CompareAndSwapUint64(&x.w[3], w3, w3|uint64(stClosed|stKilled)<<32) {
			return
		}
	}
}

// Revalidate retags a live session with generation gen (the owner checked it
// against the new configuration).
func (t *Table) Revalidate(e *Entry, gen uint32) {
	x := &t.sessions[e.Index]
	for {
		w3 := x.load(3)
		st := uint32(w3 >> 32)
		if st&stLive == 0 || st>>genShift != e.Gen {
			return
		}
		nst := st&(1<<genShift-1) | (gen&genMask)<<genShift
		if atomic.CompareAndSwapUint64(&x.w[3], w3, uint64(nst)<<32|w3&math.MaxUint32) {
			return
		}
	}
}

// sweepBatch is how many expired sessions Sweep gathers before freeing
// them: their two buckets each are prefetched together, so the misses
// overlap.
const sweepBatch = 16

// Sweep examines the next n session slots (a cursor shared by all callers
// wraps around the table) and frees those expired at now. It returns how many
// it freed. Call it with a small n per burst, or from a background goroutine.
// Expired sessions are gathered sweepBatch at a time and their buckets
// prefetched (one call for the batch) before any is freed, so their cache
// misses overlap; consecutive slots share their stripe, whose lock a batch
// takes once per run of them.
func (t *Table) Sweep(now int64, n int) int {
	if n <= 0 {
		return 0
	}
	total := uint64(len(t.sessions))
	start := t.cursor.Add(uint64(n)) - uint64(n)
	sec := seconds(now)
	freed := 0
	var batch [sweepBatch]victim
	var pf [2 * sweepBatch]uintptr
	nb := 0
	for k := uint64(0); k < uint64(n) && k < total; k++ {
		i := uint32((start + k) % total)
		e := &t.sessions[i]
		w3 := e.load(3)
		st := uint32(w3 >> 32)
		if st&stLive == 0 || !expired(st, uint32(w3), sec) {
			continue
		}
		// Read without the lock: expire checks the words again under it.
		v := &batch[nb]
		t.see(v, i, e.load(0), e.load(1), e.load(2))
		pf[2*nb] = uintptr(unsafe.Pointer(t.bucketAt(t.stripeOf(v.fh), t.home(v.fh))))
		pf[2*nb+1] = uintptr(unsafe.Pointer(t.bucketAt(t.stripeOf(v.rh), t.home(v.rh))))
		if nb++; nb == len(batch) {
			freed += t.expireBatch(&pf, batch[:nb], sec)
			nb = 0
		}
	}
	if nb > 0 {
		freed += t.expireBatch(&pf, batch[:nb], sec)
	}
	return freed
}

// expireBatch prefetches the buckets of vs (pf holds their addresses, two
// per victim) and expires them, holding each forward stripe once for a run
// of victims in it and updating the live count once per run.
func (t *Table) expireBatch(pf *[2 * sweepBatch]uintptr, vs []victim, sec uint32) int {
	prefetch.Lines(&pf[0], 2*len(vs))
	freed := 0
	for k := 0; k < len(vs); {
		s := vs[k].i / t.per
		st := &t.stripes[s]
		st.mu.Lock()
		run := 0
		for ; k < len(vs) && vs[k].i/t.per == s; k++ {
			if t.expireLocked(&vs[k], s, sec, false) {
				run++
			}
		}
		if run > 0 {
			t.live.Add(int64(-run))
		}
		st.mu.Unlock()
		freed += run
	}
	return freed
}

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
			w3 := e.load(3)
			state := uint32(w3 >> 32)
			if state&stLive == 0 || expired(state, uint32(w3), sec) {
				continue
			}
			ent := unpack(i, e.load(0), e.load(1), e.load(2), w3)
			if !fn(&ent) {
				st.mu.Unlock()
				return
			}
		}
		st.mu.Unlock()
	}
}
