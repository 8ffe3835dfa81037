// Package server is the controlplane's core and its orchestration API: it
// holds the accepted configuration and its generation, turns every apply
// or delete into a new configuration that is validated and compiled whole
// (all or nothing), persists it through package store, and publishes the
// compiled tables through package push. BGP updates (UpdateLearned) are
// compiled incrementally and published as deltas; SetLearned recompiles
// with a complete learned set. It serves the Gateway gRPC API
// of proto/api/v1 next to the TablePush service, gRPC health and
// reflection.
//
// It parses, validates and compiles only through packages manifest,
// validate and compile, and never talks to a dataplane except through push.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/push"
	"github.com/peergate/peergate/controlplane/store"
	"github.com/peergate/peergate/controlplane/validate"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// MaxRequestBytes bounds one API request (and one message of a dataplane).
const MaxRequestBytes = 16 << 20

// Options configure a Server.
type Options struct {
	// Store persists accepted configurations; nil keeps them in memory only.
	Store *store.Store
	// Hub publishes tables; nil creates one.
	Hub    *push.Hub
	Logger *slog.Logger
	// AroundUpdate, when set, is called with the number of learned routes
	// a complete compile handles (SetLearned, or an apply while routes are
	// learned) before it compiles them, and the function it returns once
	// the change failed, or once its generation went out to the connected
	// dataplanes (at most a second after it was published). The calls are
	// serialised, but a change's returned function may run after later
	// changes' calls. cmd/controlplane pauses the garbage collector around
	// the large ones (package gcpause); UpdateLearned's are paused by its
	// caller, bgpsync, which knows whether a BGP stream is still flowing.
	AroundUpdate func(changes int) (done func())
}

// Server holds the live configuration. Its methods are safe for
// concurrent use; changes are serialised.
type Server struct {
	apiv1.UnimplementedGatewayServer

	log     *slog.Logger
	around  func(changes int) (done func())
	store   *store.Store
	hub     *push.Hub
	health  *health.Server
	started time.Time

	// changeMu serialises changes (apply, delete, learned routes) across
	// validation, compilation and persistence, which take seconds with a
	// full Internet table; mu guards the fields below and is held only to
	// read or swap them, so that Status, List and GetRoutes never wait
	// for a compilation. Fields written under mu are written only by the
	// holder of changeMu, which may therefore read them without mu.
	changeMu sync.Mutex
	mu       sync.Mutex
	cfg      *manifest.Config
	gen      uint64
	learned  compile.Learned
	// comp recompiles BGP updates incrementally; nil when the live
	// configuration does not compile. Used under changeMu only.
	comp       *compile.Compiler
	tables     *tablesv1.Tables // compiled from cfg and learned; nil when that failed
	compileErr error
	accepted   uint64
	rejected   uint64
	lastErr    string
	lastChange time.Time

	saveMu   sync.Mutex
	savedGen uint64

	// Generations of learned routes are persisted in the background
	// (saveLater): they carry no configuration, so a BGP update need not
	// wait for an fsync, and a burst of them costs one write of the newest.
	laterMu      sync.Mutex
	laterNext    *store.State // newest generation not yet handed to save
	laterRunning bool
	laterWG      sync.WaitGroup

	// spares holds copies of the live tables' large route slices, made in
	// the background after each update, that the next update takes
	// instead of copying on its own path (see spareRoutes).
	sparesMu sync.Mutex
	spares   map[spareKey]*spareRoutes // the newest copy made or wanted per table
	copying  map[spareKey]bool         // one copier per table at a time

	// changed is closed and replaced each time a new generation is live
	// (guarded by mu), so followers such as the BGP glue wake up without
	// the server knowing them.
	changed chan struct{}
	bgp     BGPReporter // guarded by mu
}

// BGPReporter answers GetBGP; the controlplane's BGP glue implements it.
type BGPReporter interface {
	BGPStatus(req *apiv1.GetBGPRequest) *apiv1.GetBGPResponse
}

// SetBGP installs what GetBGP reports; nil reports no speaker.
func (s *Server) SetBGP(r BGPReporter) {
	s.mu.Lock()
	s.bgp = r
	s.mu.Unlock()
}

// Changed returns a channel closed when the next generation goes live
// (apply, delete or learned routes). Read Config and Tables after it
// closes, then call Changed again.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// notifyLocked wakes Changed's readers; called with mu held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// New loads the stored configuration, compiles it and publishes its
// tables. A stored configuration that no longer compiles (after an
// upgrade that tightened validation, say) is kept and reported by Status;
// no tables are pushed until an apply fixes it.
func New(opts Options) (*Server, error) {
	s := &Server{
		log:     opts.Logger,
		around:  opts.AroundUpdate,
		store:   opts.Store,
		hub:     opts.Hub,
		health:  health.NewServer(),
		started: time.Now(),
		cfg:     manifest.NewConfig(nil),
		changed: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hub == nil {
		s.hub = push.New(s.log)
	}
	if s.store != nil {
		st, err := s.store.Load()
		if err != nil {
			return nil, fmt.Errorf("load stored configuration: %w", err)
		}
		s.cfg, s.gen, s.savedGen = manifest.NewConfig(st.Objects), st.Generation, st.Generation
		s.log.Info("loaded stored configuration", "dir", s.store.Dir(), "generation", st.Generation, "objects", len(st.Objects))
	}
	comp, t, _, err := compile.NewCompiler(s.cfg, nil)
	if err != nil {
		s.compileErr = err
		s.log.Error("stored configuration does not compile; no tables pushed until an apply fixes it", "err", err)
		return s, nil
	}
	t.Generation = s.gen
	s.tables, s.comp = t, comp
	s.hub.Publish(t)
	return s, nil
}

// Hub returns the push hub the server publishes to.
func (s *Server) Hub() *push.Hub { return s.hub }

// GRPCOptions are the server options the API needs: the request size
// limit, keepalive pings from dataplanes (package agent pings every 10 s)
// and a log line per API call (debug; failures of the server's own making
// at error level).
func (s *Server) GRPCOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.logCall),
	}
}

func (s *Server) logCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	code := status.Code(err)
	level := slog.LevelDebug
	if code == codes.Internal || code == codes.Unknown {
		level = slog.LevelError
	}
	s.log.Log(ctx, level, "api call", "method", info.FullMethod, "code", code.String(), "took", time.Since(start), "err", err)
	return resp, err
}

// Register adds the Gateway API, the TablePush service, health and
// reflection to g.
func (s *Server) Register(g *grpc.Server) {
	apiv1.RegisterGatewayServer(g, s)
	tablesv1.RegisterTablePushServer(g, s.hub)
	healthpb.RegisterHealthServer(g, s.health)
	for _, name := range []string{"", apiv1.Gateway_ServiceDesc.ServiceName, tablesv1.TablePush_ServiceDesc.ServiceName} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(g)
}

// Shutdown marks every service NOT_SERVING, ahead of a graceful stop.
func (s *Server) Shutdown() { s.health.Shutdown() }

// Result is the outcome of a change.
type Result struct {
	Accepted   bool
	Generation uint64
	Warnings   []*apiv1.Diagnostic
	Errors     []*apiv1.Diagnostic
	Objects    []*apiv1.ObjectResult
}

// ApplyObjects merges objs into the configuration, all or nothing. A
// rejected apply returns Accepted false and no error; the error is for
// failures to persist.
func (s *Server) ApplyObjects(objs []manifest.Object, dryRun bool) (Result, error) {
	return s.change(dryRun, func(c *manifest.Config) (*manifest.Config, []*apiv1.ObjectResult) {
		results := make([]*apiv1.ObjectResult, 0, len(objs))
		seen := map[manifest.Key]int{}
		for _, o := range objs {
			ch := apiv1.Change_CHANGE_CREATED
			if old, ok := c.Get(o.Key); ok {
				ch = apiv1.Change_CHANGE_CONFIGURED
				if same(old, o) {
					ch = apiv1.Change_CHANGE_UNCHANGED
				}
			}
			// A key given twice in one request: the last document wins.
			if i, ok := seen[o.Key]; ok {
				results[i].Change = ch
				continue
			}
			seen[o.Key] = len(results)
			results = append(results, &apiv1.ObjectResult{Key: keyToProto(o.Key), Change: ch})
		}
		return c.Apply(objs), results
	})
}

// DeleteObjects removes the objects of keys, all or nothing; unknown keys
// are reported as not found.
func (s *Server) DeleteObjects(keys []manifest.Key, dryRun bool) (Result, error) {
	return s.change(dryRun, func(c *manifest.Config) (*manifest.Config, []*apiv1.ObjectResult) {
		var results []*apiv1.ObjectResult
		seen := map[manifest.Key]bool{}
		for _, k := range keys {
			// Files often define one object twice (a Kube-OVN Vpc with and
			// without its vpcPeerings): report it once.
			if seen[k] {
				continue
			}
			seen[k] = true
			ch := apiv1.Change_CHANGE_DELETED
			if _, ok := c.Get(k); !ok {
				ch = apiv1.Change_CHANGE_NOT_FOUND
			}
			results = append(results, &apiv1.ObjectResult{Key: keyToProto(k), Change: ch})
		}
		return c.Delete(keys), results
	})
}

// same reports whether storing b in place of a changes nothing: the same
// typed content, whatever the comments, key order and layout of their
// text. So a backup taken with "gwctl get objects -o yaml", which starts
// with a "# generation N" comment, applies back as unchanged. The other
// side of it: an apply that only edits comments stores nothing (the stored
// text is that of the last apply that changed the object), as kubectl keeps
// no comments at all. Pods have no typed content (they are ignored); their
// text without comments decides.
func same(a, b manifest.Object) bool {
	if a.Key.Kind == manifest.KindPod {
		return bytes.Equal(withoutComments(a.Raw), withoutComments(b.Raw))
	}
	return bytes.Equal(manifest.Encode(a), manifest.Encode(b))
}

// withoutComments drops whole-line YAML comments and blank lines.
func withoutComments(raw []byte) []byte {
	var out []byte
	for line := range bytes.Lines(raw) {
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			continue
		}
		out = append(out, bytes.TrimRight(line, " \t\r\n")...)
		out = append(out, '\n')
	}
	return out
}

func (s *Server) change(dryRun bool, edit func(*manifest.Config) (*manifest.Config, []*apiv1.ObjectResult)) (Result, error) {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	next, results := edit(s.cfg)
	changed := false
	for _, r := range results {
		if c := r.Change; c != apiv1.Change_CHANGE_UNCHANGED && c != apiv1.Change_CHANGE_NOT_FOUND {
			changed = true
		}
	}
	res := Result{Generation: s.gen}
	// Compile validates too, but returns warnings and errors in one list;
	// validate first to tell them apart.
	warns, errs := validate.Validate(next)
	res.Warnings = diagnostics(warns)
	if len(errs) > 0 {
		res.Errors = diagnostics(errs)
		s.reject(dryRun, fmt.Sprintf("%d errors, first: %s", len(errs), errs[0]))
		return res, nil
	}
	learned := s.liveLearned()
	p := s.pause(learned.Count())
	defer p.end()
	comp, t, _, err := compile.NewCompiler(next, learned)
	if err != nil {
		res.Errors = textDiagnostics("", err)
		s.reject(dryRun, err.Error())
		return res, nil
	}
	res.Accepted, res.Objects = true, results
	if dryRun || (!changed && s.tables != nil) {
		return res, nil
	}
	gen := s.gen + 1
	if s.store != nil {
		if err := s.save(store.State{Generation: gen, Objects: next.Objects()}); err != nil {
			s.log.Error("configuration not applied: cannot persist it", "err", err)
			return Result{}, fmt.Errorf("persist configuration: %w", err)
		}
	}
	t.Generation = gen
	s.comp = comp
	s.mu.Lock()
	s.cfg, s.gen, s.tables, s.compileErr = next, gen, t, nil
	s.accepted++
	s.lastChange = time.Now()
	s.notifyLocked()
	s.mu.Unlock()
	s.hub.Publish(t)
	p.endWhenSent(gen)
	res.Generation = gen
	s.log.Info("configuration applied", "generation", gen, "objects", next.Len(), "warnings", len(warns))
	return res, nil
}

func (s *Server) reject(dryRun bool, summary string) {
	if dryRun {
		return
	}
	s.mu.Lock()
	s.rejected++
	s.lastErr = summary
	s.mu.Unlock()
	s.log.Warn("configuration rejected", "err", summary)
}

// save writes st unless a newer generation is already on disk (the
// background writer of learned generations may come late).
func (s *Server) save(st store.State) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if st.Generation < s.savedGen {
		return nil
	}
	if err := s.store.Save(st); err != nil {
		return err
	}
	s.savedGen = st.Generation
	return nil
}

// SetLearned replaces the BGP-learned routes of external VPCs, recompiles
// and publishes a new generation. The new generation is persisted in the
// background (saveLaterLocked): routing changes are not held up by disk.
// The error is a compilation's.
func (s *Server) SetLearned(l compile.Learned) error {
	s.changeMu.Lock()
	p := s.pause(l.Count())
	defer p.end()
	comp, t, _, err := compile.NewCompiler(s.cfg, l)
	if err != nil {
		s.changeMu.Unlock()
		return fmt.Errorf("compile with learned routes: %w", err)
	}
	gen := s.gen + 1
	t.Generation = gen
	s.comp = comp
	s.mu.Lock()
	s.learned, s.gen, s.tables, s.compileErr = l, gen, t, nil
	s.notifyLocked()
	s.mu.Unlock()
	s.hub.Publish(t)
	p.endWhenSent(gen)
	s.saveLaterLocked(gen)
	s.changeMu.Unlock()
	return nil
}

// AfterSent calls f, on a goroutine of its own, once every connected
// dataplane was sent generation gen or a later one, or sentWait after the
// call, whichever comes first. A collector pause (Options.AroundUpdate,
// bgpsync.Options.AroundFlush) ends so: resumed at the publication, the
// collector marks the whole heap at once, and its assists held up the
// streams' sending of a transfer by half a second.
func (s *Server) AfterSent(gen uint64, f func()) {
	go func() {
		s.hub.WaitSent(gen, sentWait)
		f()
	}()
}

// sentWait bounds how long AfterSent waits for the streams.
const sentWait = time.Second

// pause is one AroundUpdate call of a change.
type pause struct {
	s     *Server
	done  func()
	ended bool
}

// pause calls AroundUpdate for a change that compiles n learned routes.
func (s *Server) pause(n int) *pause {
	if s.around == nil {
		return &pause{ended: true}
	}
	return &pause{s: s, done: s.around(n)}
}

// end ends the pause now (a change that failed, or deferred after
// endWhenSent: then nothing).
func (p *pause) end() {
	if !p.ended {
		p.ended = true
		p.done()
	}
}

// endWhenSent ends the pause once generation gen was sent (AfterSent).
func (p *pause) endWhenSent(gen uint64) {
	if !p.ended {
		p.ended = true
		p.s.AfterSent(gen, p.done)
	}
}

// liveLearned is what the live generation was compiled with; called
// with changeMu held.
func (s *Server) liveLearned() compile.Learned {
	if s.comp != nil {
		return s.comp.Learned()
	}
	return s.learned
}

// LearnedCount is the number of learned routes the live tables were
// compiled from (0 when the configuration does not compile).
func (s *Server) LearnedCount() int {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if s.comp == nil {
		return 0
	}
	return s.comp.LearnedCount()
}

// ErrNoIncremental is returned by UpdateLearned when the live
// configuration has no incremental compiler (it does not compile): use
// SetLearned.
var ErrNoIncremental = errors.New("no incremental compiler for the live configuration")

// UpdateLearned applies one BGP update of external VPC vpc (see
// compile.Compiler.UpdateLearned: add replaces what each route's neighbour
// advertised for its prefix, withdraw removes it) and, when the tables
// change, publishes the new generation as a delta over the live one:
// only the affected routes are recompiled and sent. On an error nothing
// changed unless the error says the compiler is out of step, in which
// case the caller must SetLearned the complete learned set. The new
// generation is persisted in the background, as SetLearned's.
func (s *Server) UpdateLearned(vpc string, add, withdraw []compile.LearnedRoute) error {
	s.changeMu.Lock()
	if s.comp == nil || s.tables == nil {
		s.changeMu.Unlock()
		return ErrNoIncremental
	}
	start := time.Now()
	// The live tables are what the compiler's state compiles to: it reads
	// the affected routes from them rather than resolving them again.
	d, err := s.comp.UpdateLearnedOver(s.tables, vpc, add, withdraw)
	compiled := time.Now()
	if err != nil {
		s.changeMu.Unlock()
		return fmt.Errorf("update learned routes of %s: %w", vpc, err)
	}
	if len(d.GetVpcs()) == 0 {
		s.changeMu.Unlock()
		return nil
	}
	gen := s.gen + 1
	d.BaseGeneration, d.Generation = s.gen, gen
	// The delta's wire form (route blocks, see push.Hub.PublishDelta) is
	// made while it is applied to the live tables: for a table transfer
	// both take a fraction of a second, on the path to the dataplane.
	wire := make(chan *tablesv1.TableDelta, 1)
	go func() { wire <- routeblock.PackDelta(d) }()
	t := withRoutesOf(s.tables, d, s.takeSpare)
	if err := compile.ApplyDelta(t, d); err != nil {
		// The compiler moved on but the tables did not: out of step.
		s.comp = nil
		s.changeMu.Unlock()
		return fmt.Errorf("update learned routes of %s: compiler out of step: %w", vpc, err)
	}
	applied := time.Now()
	s.mu.Lock()
	s.gen, s.tables, s.compileErr = gen, t, nil
	s.notifyLocked()
	s.mu.Unlock()
	s.hub.PublishDelta(t, <-wire)
	published := time.Now()
	s.prepareSpares(t, d)
	s.saveLaterLocked(gen)
	s.changeMu.Unlock()
	s.log.Debug("learned routes updated", "vpc", vpc, "generation", gen, "add", len(add), "withdraw", len(withdraw),
		"compile", compiled.Sub(start), "apply", applied.Sub(compiled), "publish", published.Sub(applied), "after", time.Since(published))
	return nil
}

// saveLaterLocked persists generation gen of the live configuration in
// the background; called with changeMu held, so gen is the newest. A
// generation of learned routes changes no object: losing it in a crash
// loses no configuration (the routes are relearned from the neighbours),
// only the generation number on disk, which stays at or below the live
// one. Configuration changes are still saved before they are published
// (change). One writer runs at a time and takes only the newest pending
// generation, so a BGP burst costs one fsync per write, not per update;
// save skips a generation older than one already on disk.
func (s *Server) saveLaterLocked(gen uint64) {
	if s.store == nil {
		return
	}
	st := &store.State{Generation: gen, Objects: s.cfg.Objects()}
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	s.laterNext = st
	if s.laterRunning {
		return
	}
	s.laterRunning = true
	s.laterWG.Add(1)
	go s.saveLoop()
}

func (s *Server) saveLoop() {
	defer s.laterWG.Done()
	for {
		s.laterMu.Lock()
		st := s.laterNext
		s.laterNext = nil
		if st == nil {
			s.laterRunning = false
			s.laterMu.Unlock()
			return
		}
		s.laterMu.Unlock()
		if err := s.save(*st); err != nil {
			// The next generation (or configuration change) tries again.
			s.log.Error("generation of learned routes not persisted", "generation", st.Generation, "err", err)
		}
	}
}

// WaitSaved returns when the generations handed to the background writer
// so far are on disk (or failed, logged); call it before closing the
// store.
func (s *Server) WaitSaved() { s.laterWG.Wait() }

// withRoutesOf copies t shallowly, with fresh route slices for the route
// tables d changes, so that d can be applied while streams still marshal
// t. With a full table held a VPC's routes are hundreds of thousands of
// pointers: the copy is the update path's one large allocation (while the
// GC marks a multi-GB heap, its assist dominates an update), so it is
// made once, with room for d's insertions, and only for the tables d
// touches.
//
// take, when not nil, may supply a ready copy of a route slice (with room
// for extra routes) or nil.
func withRoutesOf(t *tablesv1.Tables, d *tablesv1.TableDelta, take func(k spareKey, rs []*tablesv1.Route, extra int) []*tablesv1.Route) *tablesv1.Tables {
	out := &tablesv1.Tables{
		Generation: t.Generation, Gateway: t.Gateway, Ports: t.Ports, Vpcs: slices.Clone(t.Vpcs),
		NatTables: t.NatTables, NatPools: t.NatPools, Filters: t.Filters,
	}
	for _, vd := range d.GetVpcs() {
		i := int(vd.GetVpcId())
		if i >= len(out.Vpcs) {
			continue // ApplyDelta reports it
		}
		v := out.Vpcs[i]
		nv := &tablesv1.Vpc{
			Id: v.Id, Name: v.Name, Attachment: v.Attachment, Subnets: v.Subnets, RouterIps: v.RouterIps, External: v.External,
			Routes: v.Routes, LocalRoutes: v.LocalRoutes,
			// RouteBlock and LocalRouteBlock stay nil: the server's
			// tables are Route messages only (blocks are the push link's
			// wire form, made by the hub).
		}
		clone := func(local bool, rs []*tablesv1.Route, extra int) []*tablesv1.Route {
			if take != nil {
				if c := take(spareKey{v.Id, local}, rs, extra); c != nil {
					return c
				}
			}
			return cloneRoutes(rs, extra)
		}
		// A list with more than compile.InPlaceMax changes is rebuilt into
		// a new slice by ApplyDelta, which leaves the old one untouched:
		// no copy is needed for it.
		if n := len(vd.GetUpsertRoutes()) + len(vd.GetRemoveRoutes()); n > 0 && n <= compile.InPlaceMax {
			nv.Routes = clone(false, v.Routes, len(vd.GetUpsertRoutes()))
		}
		if n := len(vd.GetUpsertLocalRoutes()) + len(vd.GetRemoveLocalRoutes()); n > 0 && n <= compile.InPlaceMax {
			nv.LocalRoutes = clone(true, v.LocalRoutes, len(vd.GetUpsertLocalRoutes()))
		}
		out.Vpcs[i] = nv
	}
	return out
}

// spareMin is the route count from which a table's copy is prepared in
// the background: below it the copy costs microseconds.
const spareMin = 4096

// spareExtra is the room a prepared copy leaves for insertions.
const spareExtra = 64

type spareKey struct {
	vpc   uint32
	local bool
}

// spareRoutes is a copy of the route slice src, made in the background
// after src went live; copy is set (by the one copier of its table)
// before done is closed.
type spareRoutes struct {
	src     []*tablesv1.Route
	copy    []*tablesv1.Route
	started bool // a copier took it (guarded by sparesMu)
	done    chan struct{}
}

// sameSlice reports whether a and b are the same slice of the same array
// (the live tables' slices are never modified).
func sameSlice(a, b []*tablesv1.Route) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// takeSpare returns the prepared copy of rs, when there is one of exactly
// rs with room for extra routes; nil otherwise. A copy of rs still in the
// making is waited for: it started before this update and costs no more
// to finish than a copy of our own would to make, and it spares the
// update the allocation of a large slice while the GC marks a heap of
// gigabytes (whose assist, with a full table held, took 40-50 ms).
func (s *Server) takeSpare(k spareKey, rs []*tablesv1.Route, extra int) []*tablesv1.Route {
	s.sparesMu.Lock()
	sp := s.spares[k]
	if sp == nil || !sameSlice(sp.src, rs) || !sp.started {
		// Not started: the copier is busy with an older slice; the
		// update copies on its own path and the next copy is of its
		// tables (prepareSpares replaces this one).
		s.sparesMu.Unlock()
		return nil
	}
	delete(s.spares, k)
	s.sparesMu.Unlock()
	<-sp.done
	if cap(sp.copy)-len(sp.copy) < extra {
		return nil
	}
	return sp.copy
}

// prepareSpares copies, in the background, the large route slices of t
// that d changed, for the next update to take. With a full table held, an
// update's own copy of a 1 M-route slice took 20-250 ms when the GC was
// marking (a large allocation pays its assist); made here, it is paid off
// the update's path, between updates. One copier runs per table at a
// time and always goes on with the newest slice wanted: were a copy of
// an older slice to block the next one (as it did), an update that came
// while it was in the making would leave the following updates without
// a copy too, each copying on its own path. t's slices are live and never
// modified, so reading them concurrently is safe. Large deltas (a table
// streaming in) get a copy as well: the first single update after a
// transfer then finds one, and a transfer's batches are seconds apart.
func (s *Server) prepareSpares(t *tablesv1.Tables, d *tablesv1.TableDelta) {
	for _, vd := range d.GetVpcs() {
		i := int(vd.GetVpcId())
		if i >= len(t.Vpcs) {
			continue
		}
		v := t.Vpcs[i]
		for _, c := range []struct {
			local bool
			rs    []*tablesv1.Route
		}{{false, v.Routes}, {true, v.LocalRoutes}} {
			if len(c.rs) < spareMin {
				continue
			}
			s.prepareSpare(spareKey{v.Id, c.local}, c.rs)
		}
	}
}

// prepareSpare has a copy of rs made for k, unless one is already.
func (s *Server) prepareSpare(k spareKey, rs []*tablesv1.Route) {
	s.sparesMu.Lock()
	defer s.sparesMu.Unlock()
	if s.spares == nil {
		s.spares, s.copying = map[spareKey]*spareRoutes{}, map[spareKey]bool{}
	}
	if sp := s.spares[k]; sp != nil && sameSlice(sp.src, rs) {
		return
	}
	sp := &spareRoutes{src: rs, done: make(chan struct{})}
	s.spares[k] = sp
	if s.copying[k] {
		return // the running copier takes it next
	}
	s.copying[k], sp.started = true, true
	go s.copySpares(k, sp)
}

// copySpares makes sp's copy, then the copy of any newer slice of k
// wanted meanwhile, until none is.
func (s *Server) copySpares(k spareKey, sp *spareRoutes) {
	for {
		sp.copy = cloneRoutes(sp.src, spareExtra)
		close(sp.done)
		s.sparesMu.Lock()
		next := s.spares[k]
		if next == nil || next.started {
			s.copying[k] = false
			s.sparesMu.Unlock()
			return
		}
		next.started = true
		s.sparesMu.Unlock()
		sp = next
	}
}

// cloneRoutes copies rs with room for extra more routes, so that applying
// a delta's insertions does not copy it again.
func cloneRoutes(rs []*tablesv1.Route, extra int) []*tablesv1.Route {
	out := make([]*tablesv1.Route, len(rs), len(rs)+extra)
	copy(out, rs)
	return out
}

// Generation returns the live generation.
func (s *Server) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Config returns the live configuration (immutable).
func (s *Server) Config() *manifest.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Tables returns the live compiled tables (nil when the configuration does
// not compile); they must not be modified.
func (s *Server) Tables() *tablesv1.Tables {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tables
}

func diagnostics(ds []validate.Diagnostic) []*apiv1.Diagnostic {
	out := make([]*apiv1.Diagnostic, len(ds))
	for i, d := range ds {
		out[i] = &apiv1.Diagnostic{
			Text: d.String(), File: d.Source.File, Document: int32(d.Source.Index),
			Key: keyToProto(d.Key), Field: d.Field, Message: d.Message,
		}
	}
	return out
}

// textDiagnostics splits a joined error (manifest.Parse reports one per
// failing document) into one diagnostic each.
func textDiagnostics(file string, err error) []*apiv1.Diagnostic {
	var out []*apiv1.Diagnostic
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		// yaml.v3's errors span lines ("unmarshal errors:\n  line 7: ...");
		// keep each one whole.
		text := strings.TrimSpace(err.Error())
		out = append(out, &apiv1.Diagnostic{Text: text, File: file, Message: text})
	}
	walk(err)
	return out
}

var errNothing = errors.New("nothing to apply: give documents or objects")

// parseRequest turns an apply request into objects, or into diagnostics
// when a document does not parse.
func parseRequest(req *apiv1.ApplyRequest) ([]manifest.Object, []*apiv1.Diagnostic, error) {
	if len(req.GetDocuments()) == 0 && len(req.GetObjects()) == 0 {
		return nil, nil, errNothing
	}
	var objs []manifest.Object
	var diags []*apiv1.Diagnostic
	for i, d := range req.GetDocuments() {
		file := d.GetFile()
		if file == "" {
			file = fmt.Sprintf("<request document %d>", i)
		}
		o, err := manifest.Parse(file, []byte(d.GetYaml()))
		if err != nil {
			diags = append(diags, textDiagnostics(file, err)...)
			continue
		}
		objs = append(objs, o...)
	}
	if len(req.GetObjects()) > 0 {
		const file = "<request objects>"
		data, err := typedDocument(req.GetObjects())
		if err != nil {
			diags = append(diags, textDiagnostics(file, err)...)
		} else if o, err := manifest.Parse(file, data); err != nil {
			diags = append(diags, textDiagnostics(file, err)...)
		} else {
			objs = append(objs, o...)
		}
	}
	return objs, diags, nil
}

// contextDone reports a cancelled request before a change starts; once a
// change runs it completes.
func contextDone(ctx context.Context) error { return ctx.Err() }
