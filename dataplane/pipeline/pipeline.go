package pipeline

import (
	"math/bits"
	"sync"
	"time"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/flowtable"
	"github.com/peergate/peergate/nat"
)

// Config tunes a Pipeline. The zero value works.
type Config struct {
	// StatefulNAT, when set, replaces the pipeline's own stateful NAT for
	// packets of stateful-NAT actions (snat_pool, reverse_pool). Nil (the
	// usual case): the pipeline builds a nat.Stateful at the first snapshot
	// with NAT pools, reconfigures it at every new snapshot and sweeps it
	// a little per burst; see NAT, Sessions and NATCounters.
	StatefulNAT StatefulNAT
	// NATSessions is the session table's capacity (default 1 M sessions,
	// about 57 bytes each, allocated when the first pool appears).
	NATSessions int
	// NATTimeouts: zero means flowtable.DefaultTimeouts().
	NATTimeouts flowtable.Timeouts
	// NATMSS clamps the MSS of TCP SYNs crossing the stateful NAT; 0 derives
	// it from the snapshot (smallest VPC MTU, less the VXLAN overhead on
	// VXLAN attachments, less 40).
	NATMSS uint16
	// NATSeed keys the NAT's hashes and port choice (0: random); tests set
	// it for reproducible ports.
	NATSeed uint64
	// HoldQueue is how many packets per worker may wait for a neighbour
	// (default 64); HoldTimeout how long (default 3s).
	HoldQueue   int
	HoldTimeout time.Duration
	// DefaultTTL of packets the gateway originates (default 64).
	DefaultTTL uint8
	// ICMPFiltered answers packets an ingress filter drops with an ICMP
	// destination unreachable, administratively prohibited (RFC 1812 5.2.7.1);
	// off by default, as firewalls usually drop silently.
	ICMPFiltered bool
	// ICMPErrorRate caps the ICMP errors each worker sends per second
	// (token bucket, burst of a tenth of the rate; default 1000, like
	// Linux's icmp_ratelimit). Packets over the rate are still dropped and
	// counted, just not answered.
	ICMPErrorRate int
	// AdjacencySlots sizes each worker's adjacency cache (resolved next
	// hops: MACs and VXLAN headers; 128 bytes a slot), rounded up to a
	// power of two, at most 1 M; default 4096 (see DefaultAdjacencySlots).
	AdjacencySlots int
}

// Pipeline is shared by all workers of one dataplane.
type Pipeline struct {
	fib   *fib.Holder
	cfg   Config
	neigh sharedNeigh

	mu      sync.Mutex
	workers []*Worker
	nat     natState
}

// New returns a pipeline reading its tables from h.
func New(h *fib.Holder, cfg Config) *Pipeline {
	if cfg.HoldQueue <= 0 {
		cfg.HoldQueue = 64
	}
	if cfg.AdjacencySlots <= 0 {
		cfg.AdjacencySlots = DefaultAdjacencySlots
	}
	cfg.AdjacencySlots = 1 << bits.Len(uint(min(cfg.AdjacencySlots, maxAdjacencySlots)-1))
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = 3 * time.Second
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = 64
	}
	if cfg.ICMPErrorRate <= 0 {
		cfg.ICMPErrorRate = 1000
	}
	if cfg.NATSessions <= 0 {
		cfg.NATSessions = 1 << 20
	}
	return &Pipeline{fib: h, cfg: cfg}
}

// Counters sums the counters every worker last published (every
// publishEvery bursts and at every Tick), safely from any goroutine. A
// worker's own goroutine reads its exact counters in Worker.C.
func (p *Pipeline) Counters() Counters {
	var c Counters
	p.mu.Lock()
	for _, w := range p.workers {
		w.pubMu.Lock()
		c.Add(&w.pub)
		w.pubMu.Unlock()
	}
	p.mu.Unlock()
	return c
}

// publishEvery is how many bursts a worker processes between two copies of
// its counters for Pipeline.Counters.
const publishEvery = 64

// publish copies C for readers, never waiting for them: if one holds the
// lock, the next burst tries again.
func (w *Worker) publish() {
	if w.pubMu.TryLock() {
		w.pub = w.C
		copy(w.traffic.pubVPC, w.traffic.vpc)
		copy(w.traffic.pubPeer, w.traffic.peer)
		w.pubMu.Unlock()
		w.bursts = 0
	}
}

// MaxBurst is the largest burst ProcessBurst takes at once without growing
// its scratch space (larger bursts are processed in chunks).
const MaxBurst = 256

// Worker processes bursts on one goroutine. Its fields are its own: no
// locks, no atomics per packet.
type Worker struct {
	p     *Pipeline
	id    int
	alloc Allocator
	// C are this worker's counters, written by its goroutine only.
	C Counters
	// pub is the copy of C that Pipeline.Counters reads.
	pubMu  sync.Mutex
	pub    Counters
	bursts int

	snap *fib.Snapshot
	now  int64
	out  *Output
	ipID uint16

	neigh neighCache
	// neighSeq is how many of the shared table's changes (sharedNeigh.seq)
	// the worker has applied to neigh.
	neighSeq uint64
	hold     holdQueue
	// adj is the adjacency cache, direct-mapped by neighHash & adjMask.
	adj     []adjacency
	adjMask uint32
	// learnGen changes whenever learning changed an entry or the snapshot
	// changed: it validates adj and the learning memo.
	learnGen uint64
	lastSnap *fib.Snapshot
	// learned skips re-learning from VXLAN packets of an inner MAC behind
	// a VTEP learned less than a second ago (see recentlyLearned).
	learned     *[learnMemoSets]learnSet
	lastLearned learnMemo
	// Last VXLAN classification (valid while lastGen == learnGen, which a
	// new snapshot changes).
	lastVNI  uint32
	lastPort uint16
	lastVPC  int
	lastGen  uint64

	// ICMP error token bucket: tokens in milli-tokens, refilled from now.
	icmpTokens int64
	icmpLast   int64

	// nat is the pipeline's own stateful NAT as of the last snapshot change
	// (nil without pools or with Config.StatefulNAT).
	nat     *nat.Stateful
	natReqs []NATRequest
	natCtx  []natPending

	// IPv4 packets of the current chunk waiting for their route lookups
	// (batching is set while the chunk is parsed).
	batching bool
	npend    int
	pend     [MaxBurst]pend4
	addrs    [MaxBurst]uint32
	uvals    [MaxBurst]uint32
	vals     [MaxBurst]uint32
	slot     [MaxBurst]uint8
	uslot    [MaxBurst]uint8
	// resolved: resolve4 did the delivery lookups of the pending packets
	// (pend4.g2), valid until flush4 returns.
	resolved bool
	// next is the pending packet after the one route4 is routing (nil:
	// none, or route4 called for a packet alone): route4 makes a
	// forwarding memo only when it would serve that packet, or when there
	// is none (the next burst may use it). A burst of many flows would
	// otherwise make one per packet, never used, at a tenth of the
	// packet's cost.
	next       *pend4
	snat4      snatMemo
	localMemo4 localMemo
	fwd4       fwdMemo4

	// noFast sends every packet through processOne (tests compare the two
	// paths).
	noFast bool

	// traffic counts packets per VPC and per peering (under pubMu for
	// the published part).
	traffic trafficCounters
}

// NewWorker returns worker id; alloc serves slow-path packets.
func (p *Pipeline) NewWorker(id int, alloc Allocator) *Worker {
	n := p.cfg.AdjacencySlots
	w := &Worker{p: p, id: id, alloc: alloc, adj: make([]adjacency, n), adjMask: uint32(n - 1), learned: new([learnMemoSets]learnSet),
		neighSeq: p.neigh.seq.Load()}
	w.hold.init(p.cfg.HoldQueue)
	w.natReqs = make([]NATRequest, 0, MaxBurst)
	w.natCtx = make([]natPending, 0, MaxBurst)
	p.mu.Lock()
	p.workers = append(p.workers, w)
	p.mu.Unlock()
	return w
}

// ProcessBurst sets the verdict of every buffer of in and appends generated
// or released packets to out.Extra. now is monotonic nanoseconds.
func (w *Worker) ProcessBurst(now int64, in []*Buf, out *Output) {
	w.snap = w.p.fib.Load()
	if w.snap != w.lastSnap {
		w.newSnapshot()
	}
	w.syncNeigh()
	w.now = now
	w.out = out
	if w.hold.n > 0 {
		w.serviceHold()
	}
	for len(in) > 0 {
		n := len(in)
		if n > MaxBurst {
			n = MaxBurst
		}
		w.batching = true
		if w.snap != nil && !w.noFast {
			// fast4's packets are counted per run, in registers: their
			// port and VPC (w.lastPort, w.lastVPC) change only in
			// processOne, and Counters are read after the burst.
			var np, nb, ni int
			for _, b := range in[:n] {
				if k := w.fast4(b); k > 0 {
					np, nb, ni = np+1, nb+b.Len, ni+k
					continue
				}
				if np > 0 {
					w.countFast(np, nb, ni)
					np, nb, ni = 0, 0, 0
				}
				w.processOne(b)
			}
			if np > 0 {
				w.countFast(np, nb, ni)
			}
		} else {
			for _, b := range in[:n] {
				w.processOne(b)
			}
		}
		w.batching = false
		if w.npend > 0 {
			w.flush4()
		}
		if len(w.natReqs) > 0 {
			w.finishStateful()
		}
		in = in[n:]
	}
	w.out = nil
	if w.bursts++; w.bursts >= publishEvery {
		w.publish()
	}
}

// newSnapshot runs once per worker and snapshot, off the per-packet path:
// it invalidates the caches, configures the stateful NAT for the snapshot
// and starts the snapshot's per-VPC and per-peering counters.
func (w *Worker) newSnapshot() {
	w.lastSnap = w.snap
	w.learnGen++
	w.p.syncNAT(w.snap)
	w.nat = w.p.nat.s.Load()
	w.rollTraffic(w.snap)
}

// Tick ages the hold queue and sweeps the stateful NAT when no traffic
// arrives.
func (w *Worker) Tick(now int64, out *Output) {
	w.snap = w.p.fib.Load()
	if w.snap != w.lastSnap {
		w.newSnapshot()
	}
	w.syncNeigh()
	w.now = now
	w.out = out
	if w.hold.n > 0 {
		w.serviceHold()
	}
	if w.nat != nil {
		w.nat.Sweep(now, natSweepIdle)
		w.p.nat.now.Store(now)
	}
	w.out = nil
	w.publish()
}

func (w *Worker) drop(b *Buf, r DropReason) {
	b.Verdict = VerdictDrop
	w.C.Drops[r]++
	w.C.Verdicts[VerdictDrop]++
}

// tx marks b for transmission on port and counts it.
func (w *Worker) tx(b *Buf, port uint16) {
	b.Verdict = VerdictTx
	b.OutPort = port
	w.C.Verdicts[VerdictTx]++
	pc := &w.C.Ports[portSlot(port)]
	pc.TxPackets++
	pc.TxBytes += uint64(b.Len)
}

// emit sends a packet the pipeline generated or released (not one of the
// burst's own buffers).
func (w *Worker) emit(b *Buf, port uint16) {
	b.Verdict = VerdictTx
	b.OutPort = port
	pc := &w.C.Ports[portSlot(port)]
	pc.TxPackets++
	pc.TxBytes += uint64(b.Len)
	w.out.Extra = append(w.out.Extra, b)
}

// icmpAllowed takes a token from the ICMP error bucket.
func (w *Worker) icmpAllowed() bool {
	rate := int64(w.p.cfg.ICMPErrorRate)
	burst := max(rate/10, 1) * 1000
	if el := w.now - w.icmpLast; w.icmpLast == 0 || el >= 1e9 {
		w.icmpTokens = burst
	} else if el > 0 {
		w.icmpTokens = min(burst, w.icmpTokens+el*rate/1e6)
	}
	w.icmpLast = w.now
	if w.icmpTokens < 1000 {
		w.C.Events[EvICMPRateLimited]++
		return false
	}
	w.icmpTokens -= 1000
	return true
}
