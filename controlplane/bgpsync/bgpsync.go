// Package bgpsync is the glue between the controlplane's configuration
// (package server) and its embedded BGP speaker (package bgp). It owns
// three loops of one goroutine:
//
//   - configuration -> speaker: on every accepted generation the speaker
//     runs with the Gateway's ASN and router ID (restarted when they
//     change, stopped without a Gateway ASN) and its neighbours are exactly
//     the bgp.neighbors of the VPCs with external: true;
//   - speaker -> compiler: learned-route events are coalesced (a full table
//     arrives in many batches) and handed to server.UpdateLearned, one
//     incremental compilation at a time (a transfer's large batches paced,
//     and one large against its table held until the stream pauses, see
//     delay), server.SetLearned only when the server refuses;
//   - compiled tables -> speaker: each external VPC's neighbours are told
//     what that VPC reaches through the gateway (see Advertised).
//
// It decides nothing about forwarding: filtering, metrics and best paths
// are the compiler's, sessions and route storage the speaker's.
package bgpsync

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/peergate/peergate/controlplane/bgp"
	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Defaults of Options.
const (
	// DefaultQuiet is how long learned routes must stay unchanged before
	// they are compiled: long enough to gather the many batches of a
	// table transfer, short enough for a single update to go live well
	// under 50 ms. An update that ends a quiet spell of that length is
	// not held back by it (see leadMax).
	DefaultQuiet = 5 * time.Millisecond
	// DefaultMaxDelay bounds how long a steady stream of updates can
	// postpone a compilation.
	DefaultMaxDelay = 200 * time.Millisecond
)

// Server is what the glue needs of package server.
type Server interface {
	Changed() <-chan struct{}
	Config() *manifest.Config
	Tables() *tablesv1.Tables
	SetLearned(compile.Learned) error
	UpdateLearned(vpc string, add, withdraw []compile.LearnedRoute) error
}

// largeBatch is the number of pending route changes from which a
// compilation is paced (see delay): a table transfer or a session going
// down. Such batches are still compiled incrementally (the dataplanes get
// deltas, and the compiler resolves a table whole when a batch is large
// against it), but each costs up to a resolution of the whole table, so
// they are spaced by their own duration: the
// batches of a transfer grow with the table and their total work stays
// a small multiple of one complete compilation, instead of one
// resolution per fixed-size slice of the stream.
const largeBatch = 2048

// relativeMin is the number of pending changes of one VPC from which a
// batch that is large against the VPC's table (more than an eighth of it:
// compile.Compiler.UpdateLearned then resolves the VPC's own table whole)
// is also paced, and held until the stream pauses (see delay). Below it
// the tables are small and a compilation is cheap either way.
const relativeMin = 512

// leadMax is the most pending changes that are compiled at once, without
// the quiet window, when they arrive after a quiet spell: a lone BGP
// update (one UPDATE message carries a few prefixes) goes live without
// waiting. The rest of a burst arrives while that compilation runs and is
// gathered by the speaker's dispatcher and the quiet window as before; a
// table transfer's first batch is larger, or the table still empty, and
// compiles for next to nothing.
const leadMax = 16

// changeKey orders route changes so that the changes of one route (one
// neighbour's prefix) are adjacent, oldest first: the prefix's address,
// then meta = IPv6 bit, neighbour, prefix length and the change's
// sequence number, high to low.
type changeKey struct {
	hi, lo uint64
	meta   uint64
}

func makeChangeKey(p netip.Prefix, nbr uint64, seq uint32) changeKey {
	a := p.Addr().As16()
	var v6 uint64
	if p.Addr().Is6() {
		v6 = 1
	}
	return changeKey{
		hi:   binary.BigEndian.Uint64(a[:8]),
		lo:   binary.BigEndian.Uint64(a[8:]),
		meta: v6<<63 | nbr<<40 | uint64(p.Bits())<<32 | uint64(seq),
	}
}

// sortKeys sorts keys by (hi, lo, meta): a least-significant-digit radix
// sort by bytes, skipping the bytes every key has alike (the high bytes of
// the sequence numbers, the zero halves of IPv4 and short IPv6 prefixes).
// On a table transfer's million changes it takes about a third of a
// comparison sort's time, which the dataplanes wait for.
func sortKeys(keys []changeKey) {
	if len(keys) < 256 {
		slices.SortFunc(keys, changeKey.compare)
		return
	}
	// digit d: byte d%8 (from the least significant) of word d/8, the
	// words from the least significant: meta, lo, hi.
	word := func(k *changeKey, w int) uint64 {
		switch w {
		case 0:
			return k.meta
		case 1:
			return k.lo
		}
		return k.hi
	}
	var counts [24][256]int
	for i := range keys {
		k := &keys[i]
		for w := range 3 {
			x := word(k, w)
			for b := range 8 {
				counts[w*8+b][byte(x>>(8*b))]++
			}
		}
	}
	src, dst := keys, make([]changeKey, len(keys))
	for d := range 24 {
		c := &counts[d]
		if slices.Contains(c[:], len(keys)) {
			continue // every key has this byte alike
		}
		var at [256]int
		sum := 0
		for v, n := range c {
			at[v] = sum
			sum += n
		}
		w, shift := d/8, 8*(d%8)
		for i := range src {
			v := byte(word(&src[i], w) >> shift)
			dst[at[v]] = src[i]
			at[v]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// compare orders keys by (hi, lo, meta), the order sortKeys sorts in.
func (k changeKey) compare(o changeKey) int {
	return cmp.Or(cmp.Compare(k.hi, o.hi), cmp.Compare(k.lo, o.lo), cmp.Compare(k.meta, o.meta))
}

// prefix is the prefix k was made from.
func (k changeKey) prefix() netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	addr := netip.AddrFrom16(a)
	if k.meta>>63 == 0 {
		addr = addr.Unmap()
	}
	return netip.PrefixFrom(addr, int(k.meta>>32&0xff))
}

// sameRoute reports whether k and o are changes of the same route.
func (k changeKey) sameRoute(o changeKey) bool {
	return k.hi == o.hi && k.lo == o.lo && k.meta>>32 == o.meta>>32
}

// Options configure a Syncer.
type Options struct {
	// ListenPort is the speaker's TCP port for incoming sessions; -1 (or
	// 0) does not listen: the gateway only connects out.
	ListenPort int32
	// ConnectRetry is the pause between attempts to reach a neighbour that
	// is down (0 = the speaker's default, 5 s).
	ConnectRetry time.Duration
	// HoldTime proposed to neighbours (0 = 90 s).
	HoldTime time.Duration
	// Quiet and MaxDelay shape the coalescing of learned routes (0 = the
	// defaults above).
	Quiet, MaxDelay time.Duration
	Logger          *slog.Logger
	// AroundFlush, when set, is called with the number of pending changes
	// before they are turned into learned routes and compiled, when the
	// stream they came in has ended (End-of-RIB, or no change for the
	// transfer's quiet pause; not for the batches of a stream still
	// flowing), and the function it returns once the new generation went
	// out to the dataplanes (a server with AfterSent) or the compilation
	// failed. cmd/controlplane pauses the collector around the large ones
	// (package gcpause): with the stream still flowing, gobgp's garbage
	// would fill the pause's memory headroom and the collector would then
	// run flat out to stay under it.
	AroundFlush func(changes int) (done func())
	// DuringTransfer, when set, is called when pending changes become a
	// table transfer's batch (large against their VPC's table, held for
	// the stream to pause), and the function it returns when that batch is
	// flushed. cmd/controlplane runs the collector by memory meanwhile
	// (gcpause.Pauser.Transfer).
	DuringTransfer func() (done func())
}

// Syncer runs the speaker for a server. Create it with New, then Run.
type Syncer struct {
	srv  Server
	opts Options
	log  *slog.Logger

	// Owned by Run's goroutine.
	sp         *bgp.Speaker
	global     bgp.Global
	events     <-chan bgp.Event
	unsub      func()
	cfg        *manifest.Config
	advVPCs    map[string]bool // VPCs we told something (to withdraw when they go)
	learned    compile.Learned // what the last SetLearned held
	dirty      map[string]bool // VPCs whose learned routes changed since
	firstDirty time.Time
	lastEvent  time.Time // the last route event noted
	// transferEnd ends DuringTransfer's call for the batch held now.
	transferEnd func()
	// lead: the pending changes began after a quiet spell (no event for
	// Quiet): compile them at once while they are few.
	lead bool
	// pending holds the route changes per VPC since the last compilation,
	// in order (pendingRoutes.final reduces them); large: they are many enough
	// to be paced.
	pending  map[string]*pendingRoutes
	npending int
	large    bool
	// whole: a VPC's pending changes are large against its table (more
	// than an eighth of the routes the speaker holds for it, pending
	// ones included), which compile.Compiler resolves whole; tableDone:
	// such a VPC's neighbour has since sent its whole table
	// (bgp.InitialTableDone), so the batch compiles at once.
	whole, tableDone bool
	external         []string // external VPCs of the live configuration
	// The last compilation's end and duration pace the next one.
	lastEnd  time.Time
	lastTook time.Duration

	// mu guards what BGPStatus reads from other goroutines.
	mu          sync.Mutex
	cur         *bgp.Speaker
	curGlobal   bgp.Global
	lastCompile time.Time
	lastCount   int
}

// New returns a syncer for srv; nothing runs until Run.
func New(srv Server, opts Options) *Syncer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ListenPort == 0 {
		opts.ListenPort = -1
	}
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	return &Syncer{
		srv: srv, opts: opts, log: opts.Logger.With("component", "bgpsync"),
		advVPCs: map[string]bool{}, learned: compile.Learned{}, dirty: map[string]bool{},
		pending: map[string]*pendingRoutes{},
	}
}

// Run follows the server until ctx ends, then stops the speaker.
func (s *Syncer) Run(ctx context.Context) error {
	defer s.stopSpeaker()
	defer s.endTransfer()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var timerC <-chan time.Time
	// Changed is taken before the state it announces is read, so no
	// generation slips between the two.
	changed := s.srv.Changed()
	s.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			changed = s.srv.Changed()
			s.reconcile(ctx)
		case ev, ok := <-s.events:
			if !ok {
				s.events = nil
				continue
			}
			if s.note(ev) {
				if d := s.delay(); d > 0 {
					timer.Reset(d)
					timerC = timer.C
				} else {
					timer.Stop()
					timerC = nil
					s.flush()
				}
			}
		case <-timerC:
			timerC = nil
			s.flush()
		}
	}
}

// delay is how long to wait before compiling: Quiet after the last
// event, but never later than MaxDelay after the first uncompiled one;
// and, when the pending changes are many (a table streaming in), not
// before as long as the last compilation took has passed since it ended:
// with a full table a compilation of such a batch can take a second or
// more, and this keeps compiling to at most a third of the time (see
// paceFactor), leaving the CPU to receiving the table, while the batches
// grow with the table;
// once the stream pauses (transferQuiet), the batch compiles at once.
// Single updates are never held back so: a few changes after a quiet
// spell compile at once (lead).
func (s *Syncer) delay() time.Duration {
	if s.tableDone || s.lead && !s.large && s.npending <= leadMax {
		return 0
	}
	if s.whole && time.Since(s.firstDirty) < wholeMaxHold {
		// A batch this large against its VPC's table is compiled by
		// resolving the table whole, and so is the batch that ends the
		// transfer: each one before the end is a resolution of the whole
		// table more, which competes with receiving the rest for the
		// cores (a full table went live in 14-18 s so, 4-5 s of it one
		// such compilation in the middle of the stream). Wait for the
		// stream to pause (the timer is set again at every event), up to
		// wholeMaxHold, so that a slow stream still goes live in steps.
		return transferQuiet
	}
	d := s.opts.Quiet
	if left := s.opts.MaxDelay - time.Since(s.firstDirty); left < d {
		d = max(left, 0)
	}
	if pace := time.Until(s.lastEnd.Add(paceFactor * s.lastTook)); s.large && pace > d {
		// ... unless the stream pauses: the pace leaves the CPU to
		// receiving a table, and once nothing more arrives there is
		// nothing to leave it to (the timer is set again at every event,
		// so this fires transferQuiet after the last one).
		d = max(d, min(pace, transferQuiet))
	}
	return d
}

// wholeMaxHold bounds how long a table transfer's batch that is large
// against its table waits for the stream to pause (see delay): a slower
// stream goes live in steps this far apart. Each step resolves the table
// whole while the stream still competes for the cores: at 10 s (before
// 2026-12-07) a full table that took gobgp 9-10 s to receive was cut once,
// and the cut cost ~5 s, a third of the transfer.
const wholeMaxHold = 20 * time.Second

// transferQuiet is the pause in a stream of route changes after which a
// paced compilation runs at once: the end of a table transfer. Shorter
// pauses happen inside a transfer on a loaded machine (the watch
// goroutine waits for a core), and each would cost a compilation of the
// whole table.
const transferQuiet = 250 * time.Millisecond

// paceFactor spaces the compilations of large batches: after one that
// took d, the next waits paceFactor*d (or the end of the stream), so
// compiling takes at most a third of the time of a transfer, which
// competes with gobgp for the same cores.
const paceFactor = 2

// note records which VPC's learned routes changed; it reports whether
// a compilation is due.
func (s *Syncer) note(ev bgp.Event) bool {
	if ev.Kind == bgp.InitialTableDone && s.whole && s.dirty[ev.VPC] {
		// The transfer held for its stream to pause is complete, as the
		// neighbour's End-of-RIB markers say: no need to wait for the
		// pause (transferQuiet).
		s.tableDone = true
		return true
	}
	if ev.Kind != bgp.RoutesChanged || len(ev.Updates) == 0 {
		return false
	}
	now := time.Now()
	if len(s.dirty) == 0 {
		s.firstDirty = now
		s.lead = now.Sub(s.lastEvent) >= s.opts.Quiet
	}
	s.lastEvent = now
	s.dirty[ev.VPC] = true
	p := s.pending[ev.VPC]
	if p == nil {
		p = &pendingRoutes{}
		s.pending[ev.VPC] = p
	}
	p.add(ev.Updates)
	s.npending += len(ev.Updates)
	m := p.len()
	vsTable := s.sp != nil && m*8 > s.sp.RouteCount(ev.VPC) // large against the VPC's table
	if s.lead && vsTable {
		// compile.Compiler.UpdateLearned resolves the VPC's own table
		// whole for a batch that large against it (the first routes of
		// an empty external): gather the whole burst into one such
		// compilation rather than lead with a few.
		s.lead = false
	}
	if m >= relativeMin && vsTable {
		if !s.whole && s.opts.DuringTransfer != nil && s.transferEnd == nil {
			s.transferEnd = s.opts.DuringTransfer()
		}
		s.large, s.whole = true, true
	}
	if s.npending > largeBatch {
		s.large = true
	}
	return true
}

// dropPending forgets the pending changes and what was derived from them.
// A new map: a transfer's batch may have held hundreds of thousands of
// changes.
func (s *Syncer) dropPending() {
	s.pending = map[string]*pendingRoutes{}
	s.npending, s.large, s.whole, s.tableDone = 0, false, false, false
}

// flush hands the changes to the compiler incrementally: only the
// affected routes are recompiled and the dataplanes get a delta, however
// many they are. Only when the server refuses (no incremental compiler,
// or one out of step) is the complete learned set compiled.
func (s *Syncer) flush() {
	if len(s.dirty) == 0 || s.sp == nil {
		return
	}
	start := time.Now()
	n := s.npending
	if s.opts.AroundFlush != nil && (s.tableDone || start.Sub(s.lastEvent) >= transferQuiet) {
		defer s.afterFlush(s.opts.AroundFlush(n))
	}
	s.endTransfer() // after the pause began: the collector stays off
	ok := true
	vpcs := make([]string, 0, len(s.pending))
	for vpc := range s.pending {
		vpcs = append(vpcs, vpc)
	}
	sort.Strings(vpcs)
	for _, vpc := range vpcs {
		add, wd := s.pending[vpc].final()
		if err := s.srv.UpdateLearned(vpc, add, wd); err != nil {
			s.log.Debug("incremental compilation refused, compiling everything", "vpc", vpc, "err", err)
			ok = false
			break
		}
	}
	if !ok {
		s.flushFull()
		return
	}
	s.dropPending()
	clear(s.dirty)
	s.lastEnd = time.Now()
	s.lastTook = s.lastEnd.Sub(start)
	total := s.compiledCount()
	s.mu.Lock()
	s.lastCompile, s.lastCount = s.lastEnd, total
	s.mu.Unlock()
	s.log.Debug("learned routes updated", "changes", n, "took", s.lastTook)
}

// endTransfer ends what DuringTransfer began, if anything.
func (s *Syncer) endTransfer() {
	if s.transferEnd != nil {
		s.transferEnd()
		s.transferEnd = nil
	}
}

// sentWaiter is implemented by a server that tells when its dataplanes
// were sent a generation (package server does).
type sentWaiter interface {
	Generation() uint64
	AfterSent(gen uint64, f func())
}

// afterFlush calls done once the server's dataplanes were sent what the
// flush published (see server.AfterSent), or at once.
func (s *Syncer) afterFlush(done func()) {
	if w, ok := s.srv.(sentWaiter); ok {
		w.AfterSent(w.Generation(), done)
		return
	}
	done()
}

// learnedCounter is implemented by a server that tells how many learned
// routes its live tables were compiled from (package server does).
type learnedCounter interface{ LearnedCount() int }

// compiledCount is what BGPStatus reports as compiled: the server's own
// count when it has one, else what the speaker holds (which may include
// routes whose events are still on their way).
func (s *Syncer) compiledCount() int {
	if c, ok := s.srv.(learnedCounter); ok {
		return c.LearnedCount()
	}
	total := 0
	for _, vpc := range s.external {
		total += s.sp.RouteCount(vpc)
	}
	return total
}

// flushFull compiles with the speaker's current routes of every external
// VPC. It reads the speaker's store rather than replaying events: the
// store is the truth.
func (s *Syncer) flushFull() {
	s.dropPending()
	next := make(compile.Learned, len(s.external))
	total := 0
	for _, vpc := range s.external {
		out := bgp.AppendRoutes(s.sp, nil, vpc, func(r bgp.Route) compile.LearnedRoute {
			return compile.LearnedRoute{Prefix: r.Prefix, NextHop: r.NextHop, MED: r.MED, Neighbor: r.Neighbor, ASPathLen: r.ASPathLen}
		})
		if len(out) == 0 {
			delete(next, vpc)
			continue
		}
		next[vpc] = out
	}
	for _, rs := range next {
		total += len(rs)
	}
	clear(s.dirty)
	start := time.Now()
	if err := s.srv.SetLearned(next); err != nil {
		// Persisting may fail after the tables went live; compiling fails
		// only with a configuration that does not compile, and the next
		// apply compiles the learned routes the server still holds.
		s.log.Error("learned routes not compiled", "routes", total, "err", err)
	}
	s.learned = next
	s.lastEnd = time.Now()
	s.lastTook = s.lastEnd.Sub(start)
	s.mu.Lock()
	s.lastCompile, s.lastCount = time.Now(), total
	s.mu.Unlock()
	s.log.Debug("learned routes compiled (complete)", "routes", total, "took", time.Since(start))
}

// reconcile brings the speaker in line with the live configuration and
// tables.
func (s *Syncer) reconcile(ctx context.Context) {
	cfg, tables := s.srv.Config(), s.srv.Tables()
	if cfg != s.cfg {
		s.cfg = cfg
		if err := s.applyConfig(ctx, cfg); err != nil {
			s.log.Error("bgp configuration", "err", err)
		}
	}
	if s.sp == nil || tables == nil {
		return
	}
	if err := s.advertise(ctx, tables); err != nil {
		s.log.Error("bgp advertisements", "err", err)
	}
}

// applyConfig starts, restarts or stops the speaker and sets its
// neighbours.
func (s *Syncer) applyConfig(ctx context.Context, cfg *manifest.Config) error {
	m, _, errs := validate.Check(cfg)
	if len(errs) > 0 {
		// The server only publishes configurations that compile; a stored
		// one that does not is left alone until an apply fixes it.
		return fmt.Errorf("configuration does not validate (%d errors); BGP unchanged", len(errs))
	}
	var g bgp.Global
	if m.Gateway != nil && m.Gateway.ASN != 0 && m.Gateway.RouterID.Is4() {
		g = bgp.Global{ASN: m.Gateway.ASN, RouterID: m.Gateway.RouterID, ListenPort: s.opts.ListenPort,
			ConnectRetry: s.opts.ConnectRetry, HoldTime: s.opts.HoldTime}
	}
	var ns []bgp.Neighbor
	s.external = s.external[:0]
	for _, x := range m.VPCs {
		if !x.External {
			continue
		}
		s.external = append(s.external, x.Name)
		for _, n := range x.Neighbors {
			ns = append(ns, bgp.Neighbor{VPC: x.Name, Address: n.Address, Port: uint16(n.Port), ASN: n.ASN})
		}
	}
	if s.sp != nil && g != s.global {
		s.log.Info("bgp identity changed: restarting the speaker", "asn", g.ASN, "router_id", g.RouterID)
		s.stopSpeaker()
	}
	if g.ASN == 0 {
		if len(ns) > 0 {
			return errors.New("external VPCs have BGP neighbours but the Gateway has no ASN and IPv4 router ID: no sessions")
		}
		return nil
	}
	if s.sp == nil {
		sp := bgp.New(s.opts.Logger)
		if err := sp.Start(ctx, g); err != nil {
			return err
		}
		s.sp, s.global = sp, g
		s.events, s.unsub = sp.Subscribe()
		s.mu.Lock()
		s.cur, s.curGlobal = sp, g
		s.mu.Unlock()
	}
	return s.sp.SetNeighbors(ctx, ns)
}

func (s *Syncer) stopSpeaker() {
	if s.sp == nil {
		return
	}
	s.unsub()
	s.sp.Stop()
	s.sp, s.events, s.unsub, s.global = nil, nil, nil, bgp.Global{}
	clear(s.advVPCs)
	s.mu.Lock()
	s.cur, s.curGlobal = nil, bgp.Global{}
	s.mu.Unlock()
	// Whatever the old speaker taught is gone: compile without it.
	s.dropPending()
	if len(s.learned) > 0 || s.lastCount > 0 {
		clear(s.dirty)
		s.learned = compile.Learned{}
		s.mu.Lock()
		s.lastCount = 0
		s.mu.Unlock()
		if err := s.srv.SetLearned(compile.Learned{}); err != nil {
			s.log.Error("clear learned routes", "err", err)
		}
	}
}

// advertise tells each external VPC's neighbours what Advertised finds
// in the tables; VPCs that are gone or no longer external are told
// nothing.
func (s *Syncer) advertise(ctx context.Context, t *tablesv1.Tables) error {
	var errs []error
	seen := map[string]bool{}
	for _, v := range t.GetVpcs() {
		if !v.GetExternal() {
			continue
		}
		seen[v.GetName()] = true
		if err := s.sp.SetAdvertised(ctx, v.GetName(), Advertised(v)); err != nil {
			errs = append(errs, err)
		}
		s.advVPCs[v.GetName()] = true
	}
	for vpc := range s.advVPCs {
		if seen[vpc] {
			continue
		}
		if err := s.sp.SetAdvertised(ctx, vpc, nil); err != nil {
			errs = append(errs, err)
		}
		delete(s.advVPCs, vpc)
	}
	return errors.Join(errs...)
}

// Advertised is what an external VPC's neighbours are told: the addresses
// its hosts reach through the gateway, i.e. those whose longest-prefix
// match in v.Routes forwards to another VPC. That covers every peering
// with v at the peer's NATed addresses (the `as` pool of a stateful side,
// the `as` prefixes of a stateless one, ips minus not without NAT) and,
// for transit, the routes another external learned inside its side, both
// sides' filters applied: the compiler already worked all that out.
//
// Each forwarding route is announced as its own prefix, so learned
// prefixes keep their length; where more specific routes inside it do
// not forward (a `not`, a subnet of v), it is split into the CIDRs that
// remain. Source-matched routes are not destinations and are skipped.
func Advertised(v *tablesv1.Vpc) []netip.Prefix {
	type rt struct {
		p   netip.Prefix
		fwd bool
	}
	rs := make([]rt, 0, len(v.GetRoutes()))
	for _, r := range v.GetRoutes() {
		if r.GetMatchSource() {
			continue
		}
		p, err := netip.ParsePrefix(r.GetPrefix())
		if err != nil {
			continue
		}
		fwd := false
		for _, a := range r.GetActions() {
			if a.GetKind() == tablesv1.ActionKind_ACTION_FORWARD && a.GetDstVpc() != v.GetId() {
				fwd = true
			}
		}
		rs = append(rs, rt{p.Masked(), fwd})
	}
	sort.Slice(rs, func(i, j int) bool { return validate.ComparePrefix(rs[i].p, rs[j].p) < 0 })
	var out []netip.Prefix
	for i, r := range rs {
		if !r.fwd {
			continue
		}
		// Routes inside r follow it in prefix order.
		var holes []netip.Prefix
		for _, in := range rs[i+1:] {
			if !r.p.Contains(in.p.Addr()) || in.p.Bits() < r.p.Bits() {
				break
			}
			if !in.fwd && in.p != r.p {
				holes = append(holes, in.p)
			}
		}
		if len(holes) == 0 {
			out = append(out, r.p)
			continue
		}
		out = append(out, subtract(r.p, holes)...)
	}
	return slices.CompactFunc(out, func(a, b netip.Prefix) bool { return a == b })
}

// subtract returns p minus holes (all inside p) as CIDRs: split p in
// halves until each half is free of holes or wholly one.
func subtract(p netip.Prefix, holes []netip.Prefix) []netip.Prefix {
	var inside []netip.Prefix
	for _, h := range holes {
		if h.Bits() <= p.Bits() && h.Contains(p.Addr()) {
			return nil // p is wholly excluded
		}
		if p.Overlaps(h) {
			inside = append(inside, h)
		}
	}
	if len(inside) == 0 {
		return []netip.Prefix{p}
	}
	lo, hi := halves(p)
	return append(subtract(lo, inside), subtract(hi, inside)...)
}

func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	a := p.Addr().AsSlice()
	i := (bits - 1) / 8
	a[i] |= 0x80 >> ((bits - 1) % 8)
	hiAddr, _ := netip.AddrFromSlice(a)
	return lo, netip.PrefixFrom(hiAddr, bits)
}

// BGPStatus answers the API's GetBGP.
func (s *Syncer) BGPStatus(req *apiv1.GetBGPRequest) *apiv1.GetBGPResponse {
	s.mu.Lock()
	sp, g, last, count := s.cur, s.curGlobal, s.lastCompile, s.lastCount
	s.mu.Unlock()
	resp := &apiv1.GetBGPResponse{LearnedRoutes: uint64(count)}
	if !last.IsZero() {
		resp.LastLearnedCompile = timestamppb.New(last)
	}
	if sp == nil {
		return resp
	}
	resp.Running, resp.Asn, resp.RouterId, resp.ListenPort = true, g.ASN, g.RouterID.String(), g.ListenPort
	vpcs := map[string]bool{}
	for _, si := range sp.Sessions() {
		if req.GetVpc() != "" && si.VPC != req.GetVpc() {
			continue
		}
		vpcs[si.VPC] = true
		bs := &apiv1.BgpSession{
			Vpc: si.VPC, Neighbor: si.Address.String(), Port: uint32(si.Port), Asn: si.ASN, State: si.State, Up: si.Up,
			Received: si.Received, Accepted: si.Accepted, Advertised: si.Advertised, Learned: uint64(si.Learned),
		}
		if bs.Port == 0 {
			bs.Port = 179
		}
		if !si.Since.IsZero() {
			bs.Since = timestamppb.New(si.Since)
		}
		resp.Sessions = append(resp.Sessions, bs)
	}
	names := make([]string, 0, len(vpcs))
	for v := range vpcs {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		adv := sp.Advertised(v)
		a := &apiv1.BgpAdvertisement{Vpc: v, Count: uint64(len(adv))}
		if req.GetAdvertised() {
			for _, p := range adv {
				a.Prefixes = append(a.Prefixes, p.String())
			}
		}
		resp.Advertisements = append(resp.Advertisements, a)
	}
	return resp
}
