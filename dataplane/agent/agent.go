// Package agent is the dataplane's end of the table push link: it connects
// to the controlplane's TablePush service, says which generation it runs,
// hands every Tables (or TableDelta) it receives to the dataplane,
// acknowledges the result and pushes the dataplane's counters
// periodically. When the link breaks it reconnects with capped exponential
// backoff, so a restarted controlplane is reached again within about a
// second; meanwhile the dataplane keeps forwarding with what it has.
//
// The agent builds no lookup structures and knows nothing of the
// controlplane's packages: it moves proto messages and calls the
// functions of its Config.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Defaults of Config's optional fields.
const (
	DefaultStatsInterval  = time.Second
	DefaultMaxBackoff     = 800 * time.Millisecond
	DefaultMaxMessageSize = 1 << 30
)

// Config says where the controlplane is and what to do with its messages.
type Config struct {
	// Address of the controlplane: "unix:///run/peergate/controlplane.sock"
	// or "host:port" (any gRPC target).
	Address string
	// DataplaneID names this dataplane in the controlplane's status.
	DataplaneID string
	// Apply installs complete tables. It is called from one goroutine, one
	// call at a time; an error refuses the generation (the dataplane keeps
	// what it runs) and is reported to the controlplane. The agent tells
	// the controlplane it reads route blocks: large route lists come as
	// Vpc.RouteBlock and LocalRouteBlock (package routeblock reads them;
	// routeblock.UnpackTables turns them back into Route messages).
	Apply func(*tablesv1.Tables) error
	// ApplyDelta installs a delta over the running generation; nil refuses
	// every delta (the controlplane then has to send full tables). Large
	// upsert lists come as route blocks, as for Apply.
	ApplyDelta func(*tablesv1.TableDelta) error
	// Stats returns a snapshot of the counters; nil pushes none.
	Stats func() *tablesv1.Stats
	// Flows answers the controlplane's FlowsRequests (stateful-NAT
	// sessions), on a goroutine of its own; nil answers with an error.
	Flows func(*tablesv1.FlowsRequest) *tablesv1.Flows
	// StatsInterval is the period of Stats pushes (default 1 s).
	StatsInterval time.Duration
	// MaxBackoff caps the wait between connection attempts (default 800 ms).
	MaxBackoff time.Duration
	// MaxMessageSize bounds a received message (default 1 GiB: complete
	// tables of a million routes run to a few hundred MB).
	MaxMessageSize int
	// Generation is what the dataplane runs when Run starts (0 = nothing).
	Generation uint64
	Logger     *slog.Logger
	// TLS, when set, secures the link with it (mutual TLS: it carries the
	// dataplane's certificate); nil dials without transport security (unix
	// sockets, guarded by their file mode).
	TLS *tls.Config
	// DialOptions are added to the agent's own (tests use a custom dialer).
	DialOptions []grpc.DialOption
}

// Run keeps the link up until ctx ends, then returns nil. It fails at once
// only on a bad Config.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Address == "" {
		return errors.New("agent: controlplane address is empty")
	}
	if cfg.Apply == nil {
		return errors.New("agent: Config.Apply is nil")
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = DefaultStatsInterval
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("controlplane", cfg.Address)

	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// gRPC's own reconnect backoff decides how soon a restarted
		// controlplane is seen; its default grows to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   cfg.MaxBackoff,
			},
			MinConnectTimeout: 2 * time.Second,
		}),
		// Detect a controlplane host that vanished without closing TCP.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                10 * time.Second,
			Timeout:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMessageSize)),
	}, cfg.DialOptions...)
	cc, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return fmt.Errorf("agent: controlplane %s: %w", cfg.Address, err)
	}
	defer cc.Close()
	go reportUnreachable(ctx, cc, log)

	a := &agent{cfg: cfg, log: log, client: tablesv1.NewTablePushClient(cc), running: cfg.Generation}
	delay := 50 * time.Millisecond
	for {
		progressed, err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			delay = 50 * time.Millisecond
		}
		log.Warn("controlplane link lost, reconnecting", "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = time.Duration(math.Min(float64(delay*2), float64(cfg.MaxBackoff)))
	}
}

// probeMethod is a method no controlplane serves: calling it without
// waiting for the channel returns, on a channel that cannot connect, the
// reason of its last failed attempt, and on a working one Unimplemented.
const probeMethod = "/peergate.agent.v1.Probe/Reason"

// reportUnreachable logs why the controlplane cannot be reached: the
// streams wait for the channel (WaitForReady) and gRPC retries connections
// without saying why they fail, so a refused certificate or a socket the
// dataplane may not open would otherwise leave it waiting in silence. The
// first failure is logged at once, then a new reason at most every 10 s
// and the same one every minute (reasons may name ephemeral ports).
func reportUnreachable(ctx context.Context, cc *grpc.ClientConn, log *slog.Logger) {
	var (
		last   string
		lastAt time.Time
	)
	for {
		state := cc.GetState()
		switch state {
		case connectivity.TransientFailure:
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := cc.Invoke(pctx, probeMethod, &emptypb.Empty{}, &emptypb.Empty{})
			cancel()
			st := status.Convert(err)
			since := time.Since(lastAt)
			if st.Code() == codes.Unavailable && (lastAt.IsZero() || st.Message() != last && since >= 10*time.Second || since >= time.Minute) {
				last, lastAt = st.Message(), time.Now()
				log.Warn("cannot reach the controlplane, retrying", "err", last)
			}
		case connectivity.Ready:
			last, lastAt = "", time.Time{}
		case connectivity.Shutdown:
			return
		}
		if !cc.WaitForStateChange(ctx, state) {
			return
		}
	}
}

type agent struct {
	cfg     Config
	log     *slog.Logger
	client  tablesv1.TablePushClient
	running uint64 // generation the dataplane runs
}

// session runs one stream until it breaks. progressed reports whether the
// controlplane sent anything, which resets the backoff.
func (a *agent) session(ctx context.Context) (progressed bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// WaitForReady: block until the channel connects (its backoff is
	// capped), instead of failing and waiting a second backoff of ours.
	stream, err := a.client.Connect(sctx, grpc.WaitForReady(true))
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	var sendMu sync.Mutex
	send := func(m *tablesv1.DataplaneMessage) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	hello := &tablesv1.Hello{DataplaneId: a.cfg.DataplaneID, Generation: a.running, RouteBlocks: true}
	if err := send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Hello{Hello: hello}}); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	a.log.Info("connected to controlplane", "running_generation", a.running)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	if a.cfg.Stats != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(a.cfg.StatsInterval)
			defer t.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
					s := a.cfg.Stats()
					if s == nil {
						continue
					}
					if err := send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Stats{Stats: s}}); err != nil {
						cancel(fmt.Errorf("send stats: %w", err))
						return
					}
				}
			}
		}()
	}

	for {
		m, err := stream.Recv()
		if err != nil {
			if c := context.Cause(sctx); c != nil {
				err = c
			}
			return progressed, fmt.Errorf("receive: %w", err)
		}
		progressed = true
		var ack *tablesv1.Ack
		switch msg := m.Msg.(type) {
		case *tablesv1.ControlplaneMessage_Tables:
			ack = a.applyTables(msg.Tables)
		case *tablesv1.ControlplaneMessage_Delta:
			ack = a.applyDelta(msg.Delta)
		case *tablesv1.ControlplaneMessage_FlowsRequest:
			a.answerFlows(msg.FlowsRequest, send, &wg)
			continue
		default:
			a.log.Warn("ignoring an unknown controlplane message")
			continue
		}
		if err := send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Ack{Ack: ack}}); err != nil {
			return progressed, fmt.Errorf("send ack of generation %d: %w", ack.Generation, err)
		}
	}
}

func (a *agent) applyTables(t *tablesv1.Tables) *tablesv1.Ack {
	gen := t.GetGeneration()
	start := time.Now()
	if err := a.cfg.Apply(t); err != nil {
		a.log.Error("refused tables", "generation", gen, "err", err)
		return &tablesv1.Ack{Generation: gen, Error: err.Error()}
	}
	a.running = gen
	a.log.Info("tables live", "generation", gen, "took", time.Since(start))
	return &tablesv1.Ack{Generation: gen}
}

func (a *agent) applyDelta(d *tablesv1.TableDelta) *tablesv1.Ack {
	gen := d.GetGeneration()
	switch {
	case a.cfg.ApplyDelta == nil:
		return &tablesv1.Ack{Generation: gen, Error: "this dataplane takes complete tables only"}
	case d.GetBaseGeneration() != a.running:
		return &tablesv1.Ack{Generation: gen, Error: fmt.Sprintf("delta over generation %d, but generation %d is running", d.GetBaseGeneration(), a.running)}
	}
	if err := a.cfg.ApplyDelta(d); err != nil {
		// Not an error of the dataplane's: the controlplane answers a
		// refused delta with complete tables (fib asks for them when its
		// action groups pile up).
		a.log.Warn("refused delta, complete tables follow", "generation", gen, "err", err)
		return &tablesv1.Ack{Generation: gen, Error: err.Error()}
	}
	a.running = gen
	a.log.Info("delta live", "generation", gen)
	return &tablesv1.Ack{Generation: gen}
}
