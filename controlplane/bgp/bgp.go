// Package bgp is the controlplane's embedded BGP speaker for external VPCs.
//
// It wraps one gobgp server (github.com/osrg/gobgp/v3, used only through its
// public API) and owns: the sessions to each external VPC's neighbours, the
// routes those neighbours taught (IPv4 and IPv6 unicast, per neighbour, kept
// in a compact store), and what each external VPC's neighbours are told.
//
// It must not decide anything about forwarding: filtering learned routes by a
// peering's ips/not, adding metrics, choosing best paths and ECMP groups are
// the compiler's job. The speaker reports facts (what neighbour N of VPC V
// currently announces) and carries out advertisement requests.
//
// Isolation between external VPCs: every locally originated path is tagged
// with one community per VPC allowed to see it, and the global export policy
// only lets a local path out to a neighbour whose VPC tag it carries (the tag
// is stripped on the way out). Learned routes are never re-advertised by
// gobgp itself; transit is the controlplane's decision, made by calling
// SetAdvertised with learned prefixes.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Global is the gateway's own BGP identity.
type Global struct {
	ASN      uint32
	RouterID netip.Addr // IPv4
	// ListenPort is the TCP port for incoming sessions (0 means 179); -1
	// does not listen: the speaker then only connects out, which is all the
	// gateway needs since it always initiates.
	ListenPort int32
	// ConnectRetry is the pause between connection attempts to a neighbour
	// that is down; 0 means 5 s. It bounds how fast a returning neighbour is
	// used again.
	ConnectRetry time.Duration
	// HoldTime is proposed to neighbours; 0 means 90 s (RFC 4271's default).
	HoldTime time.Duration
}

// Neighbor is one BGP session of an external VPC. The gateway connects to
// Address:Port (Port 0 means 179).
type Neighbor struct {
	VPC     string
	Address netip.Addr
	Port    uint16
	ASN     uint32
}

// Route is one path learned from one neighbour: the neighbour's current
// best (and only, without add-path) announcement for Prefix.
type Route struct {
	VPC       string
	Prefix    netip.Prefix
	NextHop   netip.Addr
	MED       uint32 // 0 when the neighbour sent none
	Neighbor  string // neighbour address, netip.Addr.String()
	ASPathLen int
}

// RouteUpdate is one change: Route is learned (added or replaced, keyed by
// VPC, Neighbor and Prefix) or, with Withdraw set, no longer announced.
type RouteUpdate struct {
	Route    Route
	Withdraw bool
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// RoutesChanged carries a batch of route updates of one VPC, in order.
	RoutesChanged EventKind = iota + 1
	// SessionUp: a neighbour reached Established.
	SessionUp
	// SessionDown: an established session ended (or its neighbour was
	// removed). The withdrawals of everything it taught precede this event.
	SessionDown
	// InitialTableDone: the neighbour sent its whole table since the
	// session came up, as its End-of-RIB markers (RFC 4724) for the
	// unicast families the session negotiated say (IPv4 and IPv6 until
	// gobgp tells which). Its route changes precede this event. A
	// neighbour that sends no markers never sends it.
	InitialTableDone
)

func (k EventKind) String() string {
	switch k {
	case RoutesChanged:
		return "routes"
	case SessionUp:
		return "session-up"
	case SessionDown:
		return "session-down"
	case InitialTableDone:
		return "initial-table-done"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is what subscribers receive. Route changes are batched: while a
// subscriber is busy, changes of one VPC accumulate into one event, so a full
// table arrives in a few large events instead of one wake-up per prefix.
// Updates must be applied in order (a prefix may be learned, withdrawn and
// learned again in one batch).
type Event struct {
	Kind     EventKind
	VPC      string
	Neighbor string        // session events
	Updates  []RouteUpdate // RoutesChanged
}

// SessionInfo is the state of one neighbour, for `gwctl get bgp`.
type SessionInfo struct {
	Neighbor
	State      string // idle, connect, active, opensent, openconfirm, established
	Up         bool
	Since      time.Time // last state change to or from established, zero if never up
	Received   uint64    // prefixes the neighbour announces (what gobgp's adj-rib-in holds, all families)
	Accepted   uint64    // of those, the ones without our ASN in the AS path (Learned while up)
	Advertised uint64    // prefixes sent
	Learned    int       // routes this speaker holds for the neighbour
}

// Speaker is the embedded BGP speaker. Create it with New, then Start.
type Speaker struct {
	log *slog.Logger

	// opMu serialises the mutating API (Start, SetNeighbors, SetAdvertised,
	// Stop) so that gobgp sees one consistent sequence of changes.
	opMu    sync.Mutex
	srv     *server.BgpServer
	global  Global
	started bool
	stopped bool
	cancel  context.CancelFunc

	// advertisement state, guarded by opMu
	vpcs    map[string]*vpcState
	advRefs map[netip.Prefix][]uint16 // prefix -> sorted VPC tags advertising it
	nextTag uint16

	// mu guards the learned-route store and the event queue: the watch
	// goroutine and SetNeighbors both change them.
	mu        sync.Mutex
	neighbors map[netip.Addr]*neighbor
	pending   []Event
	wake      chan struct{}
	subs      map[*subscriber]struct{}
	done      chan struct{}
	dispWG    sync.WaitGroup
	compactT  *time.Timer // folds the store's pending changes (compactLater)

	parser pathParser // used by the watch goroutine only
}

// New returns a speaker that is not running yet.
func New(log *slog.Logger) *Speaker {
	if log == nil {
		log = slog.Default()
	}
	return &Speaker{
		log:       log.With("component", "bgp"),
		vpcs:      make(map[string]*vpcState),
		advRefs:   make(map[netip.Prefix][]uint16),
		neighbors: make(map[netip.Addr]*neighbor),
		wake:      make(chan struct{}, 1),
		subs:      make(map[*subscriber]struct{}),
		done:      make(chan struct{}),
	}
}

// Start runs gobgp with the gateway's identity and begins watching sessions
// and updates. ctx bounds only the start-up calls; the speaker runs until Stop.
func (s *Speaker) Start(ctx context.Context, g Global) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.started {
		return errors.New("bgp: speaker already started")
	}
	if g.ASN == 0 {
		return errors.New("bgp: start: ASN 0")
	}
	if !g.RouterID.Is4() {
		return fmt.Errorf("bgp: start: router ID %v is not an IPv4 address", g.RouterID)
	}
	if g.ConnectRetry <= 0 {
		g.ConnectRetry = 5 * time.Second
	}
	if g.HoldTime <= 0 {
		g.HoldTime = 90 * time.Second
	}
	s.global = g

	srv := server.NewBgpServer(server.LoggerOption(newGobgpLogger(s.log)))
	go srv.Serve()
	req := &api.StartBgpRequest{Global: &api.Global{
		Asn:        g.ASN,
		RouterId:   g.RouterID.String(),
		ListenPort: g.ListenPort,
	}}
	if g.ListenPort > 0 {
		req.Global.ListenAddresses = []string{"0.0.0.0", "::"}
	}
	if err := srv.StartBgp(ctx, req); err != nil {
		return fmt.Errorf("bgp: start gobgp (asn %d, router id %v): %w", g.ASN, g.RouterID, err)
	}
	// Nothing leaves the gateway unless a VPC's export statement lets it.
	err := s.setExportAssignment(ctx, srv)
	if err == nil {
		err = setImportPolicy(ctx, srv)
	}
	if err != nil {
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	err = srv.WatchEvent(wctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{
			Type: api.WatchEventRequest_Table_Filter_ADJIN,
			Init: true,
		}, {
			// The neighbours' End-of-RIB markers, in order with their
			// updates: the end of a table transfer (InitialTableDone).
			Type: api.WatchEventRequest_Table_Filter_EOR,
		}}},
	}, s.onWatch)
	if err != nil {
		cancel()
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return fmt.Errorf("bgp: watch gobgp events: %w", err)
	}
	s.srv, s.cancel, s.started = srv, cancel, true
	s.dispWG.Add(1)
	go s.dispatch()
	s.log.Info("bgp speaker started", "asn", g.ASN, "router_id", g.RouterID, "listen_port", g.ListenPort)
	return nil
}

// Stop ends every session and the speaker; subscriber channels are closed.
// Routes() keeps answering from the last state; it is safe to call twice.
func (s *Speaker) Stop() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if !s.started || s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	if err := s.srv.StopBgp(context.Background(), &api.StopBgpRequest{}); err != nil {
		s.log.Warn("stop gobgp", "err", err)
	}
	close(s.done)
	s.dispWG.Wait()
	s.mu.Lock()
	if s.compactT != nil {
		s.compactT.Stop()
	}
	s.mu.Unlock()
}

func (s *Speaker) running() error {
	if !s.started {
		return errors.New("bgp: speaker not started")
	}
	if s.stopped {
		return errors.New("bgp: speaker stopped")
	}
	return nil
}
