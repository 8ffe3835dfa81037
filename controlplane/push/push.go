// Package push serves the TablePush service of proto/tables/v1: every
// connected dataplane gets the full current tables when it says hello and
// then each new generation, and the package records what each dataplane
// acknowledged and the last counters it pushed, for status and stats.
//
// A slow dataplane never holds up the others or the publisher: each stream
// sends the newest tables when it is ready, skipping generations that were
// replaced in the meantime. Generations published with PublishDelta (BGP
// updates) go out as TableDeltas to a dataplane that was sent their base
// (the last 64 are kept to catch up); a dataplane further behind, or one
// that refuses a delta, gets complete tables. The package knows nothing of
// manifests or compilation.
package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// helloTimeout bounds how long a stream may stay silent before its Hello.
const helloTimeout = 10 * time.Second

// forgetAfter is how long a disconnected dataplane stays in the status.
const forgetAfter = time.Hour

// Hub publishes tables to every connected dataplane. The zero value is not
// usable; use New.
type Hub struct {
	tablesv1.UnimplementedTablePushServer

	log *slog.Logger

	mu  sync.Mutex
	cur *tablesv1.Tables
	// wire is cur in its wire form (routeblock.PackTables), packed once
	// by the first stream that sends cur whole; nil until then.
	wire    *wireTables
	changed chan struct{} // closed and replaced on every Publish
	sent    chan struct{} // closed and replaced whenever a stream sent a generation
	// deltas leading to cur, oldest first, each one generation over the
	// previous (cut when a full Publish breaks the chain).
	deltas []*tablesv1.TableDelta
	dps    map[string]*dataplane
	conns  uint64
	flows  flowsState // FlowsRequests in flight (flows.go)

	closeOnce sync.Once
	closed    chan struct{}
}

type dataplane struct {
	info DataplaneInfo
	conn uint64 // the stream that owns this entry
}

// DataplaneInfo is what the hub knows of one dataplane.
type DataplaneInfo struct {
	ID             string
	Peer           string
	Connected      bool
	Generation     uint64 // last acknowledged as running
	SentGeneration uint64
	Error          string // error of the last refused generation
	ConnectedAt    time.Time
	DisconnectedAt time.Time
	LastAck        time.Time
	LastStats      time.Time
	// Stats is the last snapshot it pushed (nil until the first); never
	// modified after it is stored.
	Stats *tablesv1.Stats
}

// New returns a hub with no tables.
func New(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{log: log, changed: make(chan struct{}), sent: make(chan struct{}), dps: map[string]*dataplane{}, closed: make(chan struct{})}
}

// Close ends every stream, so that a graceful gRPC stop does not wait for
// dataplanes (they reconnect to the next controlplane).
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

// maxDeltas bounds the delta history: a dataplane further behind gets
// complete tables.
const maxDeltas = 64

// Publish makes t the current tables and sends it to every dataplane. t
// must not be modified afterwards: streams marshal it concurrently.
func (h *Hub) Publish(t *tablesv1.Tables) {
	h.mu.Lock()
	h.cur, h.wire = t, nil
	h.deltas = nil
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// PublishDelta makes t the current tables, t being the previous current
// tables with d applied (d.BaseGeneration is their generation). A
// dataplane that was sent the base generation (or an earlier one still
// chained by the kept deltas) gets the deltas; any other, or one that
// refuses a delta, gets t whole. Neither may be modified afterwards.
//
// Large upsert lists go out as route blocks (routeblock.PackDelta; d may
// come packed already) to the dataplanes that read them: a table
// transfer's million routes as Route messages cost the receiving dataplane
// about a second to decode. The others get them as Route messages.
func (h *Hub) PublishDelta(t *tablesv1.Tables, d *tablesv1.TableDelta) {
	d = routeblock.PackDelta(d)
	h.mu.Lock()
	if h.cur == nil || d.GetBaseGeneration() != h.cur.GetGeneration() || d.GetGeneration() != t.GetGeneration() {
		h.deltas = nil
	} else {
		h.deltas = append(h.deltas, d)
		if len(h.deltas) > maxDeltas {
			h.deltas = slices.Clone(h.deltas[len(h.deltas)-maxDeltas:])
		}
		h.trimDeltasLocked()
	}
	h.cur, h.wire = t, nil
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// wireTables is a generation's complete tables in their wire form.
type wireTables struct {
	src  *tablesv1.Tables
	once sync.Once
	t    *tablesv1.Tables
}

// packedTables returns t in its wire form: the route lists of a full table
// go out as route blocks, a tenth of their size and without a message per
// route to decode (seconds on the dataplane for a million routes). The
// current tables are packed once, however many streams send them at once
// (dataplanes reconnecting after a controlplane restart); older ones by
// each stream that still sends them.
func (h *Hub) packedTables(t *tablesv1.Tables) *tablesv1.Tables {
	h.mu.Lock()
	w := h.wire
	if w == nil || w.src != t {
		w = &wireTables{src: t}
		if h.cur == t {
			h.wire = w
		}
	}
	h.mu.Unlock()
	w.once.Do(func() { w.t = routeblock.PackTables(t) })
	return w.t
}

// WaitSent returns once every connected dataplane was sent generation gen
// or a later one, or when limit has passed, whichever comes first.
func (h *Hub) WaitSent(gen uint64, limit time.Duration) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		h.mu.Lock()
		behind := false
		for _, d := range h.dps {
			behind = behind || d.info.Connected && d.info.SentGeneration < gen
		}
		sent := h.sent
		h.mu.Unlock()
		if !behind {
			return
		}
		select {
		case <-sent:
		case <-timer.C:
			return
		case <-h.closed:
			return
		}
	}
}

// trimDeltasLocked drops the deltas no stream can use. A stream catches
// up from the generation it was last sent and a new stream starts with
// complete tables, so a delta older than the oldest generation a
// connected dataplane was sent only holds memory: after a full-table
// transfer, the learned routes of every batch (those later replaced
// included), ~15 MB of route lists at a million routes.
func (h *Hub) trimDeltasLocked() {
	oldest := uint64(math.MaxUint64)
	for _, d := range h.dps {
		if d.info.Connected {
			oldest = min(oldest, d.info.SentGeneration)
		}
	}
	i := 0
	for i < len(h.deltas) && h.deltas[i].GetBaseGeneration() < oldest {
		i++
	}
	if i > 0 {
		// A copy, so that the array no longer reaches the dropped ones.
		h.deltas = slices.Clone(h.deltas[i:])
	}
}

// catchUp returns the deltas that take a dataplane from generation sent to
// the current tables, or nil when they are not all kept.
func (h *Hub) catchUpLocked(sent uint64) []*tablesv1.TableDelta {
	for i, d := range h.deltas {
		if d.GetBaseGeneration() == sent {
			return h.deltas[i:]
		}
	}
	return nil
}

// Current returns the tables last published (nil before the first).
func (h *Hub) Current() *tablesv1.Tables {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// Dataplanes returns a snapshot of every dataplane seen in the last hour,
// sorted by ID.
func (h *Hub) Dataplanes() []DataplaneInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]DataplaneInfo, 0, len(h.dps))
	for _, d := range h.dps {
		out = append(out, d.info)
	}
	slices.SortFunc(out, func(a, b DataplaneInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Connect serves one dataplane's stream until it ends.
func (h *Hub) Connect(stream tablesv1.TablePush_ConnectServer) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)

	hello, err := recvHello(ctx, stream)
	if err != nil {
		return err
	}
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	// A dataplane that does not say it reads route blocks (one built
	// before them) would skip them as unknown fields: it gets Route
	// messages only.
	blocks := hello.GetRouteBlocks()
	id := hello.GetDataplaneId()
	if id == "" {
		id = "anonymous@" + addr
	}
	conn := h.register(id, addr)
	flowReqs := h.flowsAttach(id, conn)
	defer h.flowsDetach(id, conn)
	log := h.log.With("dataplane", id, "peer", addr)
	log.Info("dataplane connected", "running_generation", hello.GetGeneration())
	defer func() {
		h.unregister(id, conn)
		log.Info("dataplane disconnected", "err", context.Cause(ctx))
	}()

	refused := make(chan struct{}, 1)
	go func() {
		cancel(h.receive(stream, id, conn, log, refused))
	}()

	var sent *tablesv1.Tables
	lastDelta := false // the last message sent was a delta
	for {
		h.mu.Lock()
		t, changed := h.cur, h.changed
		var deltas []*tablesv1.TableDelta
		if sent != nil && t != sent {
			deltas = h.catchUpLocked(sent.GetGeneration())
		}
		h.mu.Unlock()
		if t != nil && t != sent {
			if len(deltas) > 0 {
				for _, d := range deltas {
					if !blocks {
						plain, err := routeblock.UnpackDelta(d)
						if err != nil {
							return fmt.Errorf("dataplane %s: delta to generation %d as Route messages: %w", id, d.GetGeneration(), err)
						}
						d = plain
					}
					msg := &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Delta{Delta: d}}
					if err := stream.Send(msg); err != nil {
						return fmt.Errorf("dataplane %s: send delta to generation %d: %w", id, d.GetGeneration(), err)
					}
				}
				log.Debug("sent deltas", "from", deltas[0].GetBaseGeneration(), "generation", t.GetGeneration(), "count", len(deltas))
				lastDelta = true
			} else {
				lastDelta = false
				wire := t
				if blocks {
					wire = h.packedTables(t)
				}
				msg := &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Tables{Tables: wire}}
				if err := stream.Send(msg); err != nil {
					return fmt.Errorf("dataplane %s: send generation %d: %w", id, t.GetGeneration(), err)
				}
				log.Debug("sent tables", "generation", t.GetGeneration())
			}
			sent = t
			h.update(id, conn, func(i *DataplaneInfo) { i.SentGeneration = t.GetGeneration() })
			h.mu.Lock()
			close(h.sent)
			h.sent = make(chan struct{})
			h.mu.Unlock()
		}
		select {
		case <-refused:
			// A refused delta (the dataplane takes complete tables only,
			// or runs another generation): complete tables put it back in
			// step. A refused complete generation stays refused.
			if lastDelta {
				sent, lastDelta = nil, false
			}
			continue
		case <-changed:
		case r := <-flowReqs:
			if err := sendFlowsRequest(stream, id, r); err != nil {
				return err
			}
		case <-h.closed:
			return status.Error(codes.Unavailable, "controlplane shutting down")
		case <-ctx.Done():
			if err := context.Cause(ctx); !errors.Is(err, errStreamEnded) && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		}
	}
}

var errStreamEnded = errors.New("dataplane closed the stream")

func recvHello(ctx context.Context, stream tablesv1.TablePush_ConnectServer) (*tablesv1.Hello, error) {
	type result struct {
		m   *tablesv1.DataplaneMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := stream.Recv()
		ch <- result{m, err}
	}()
	t := time.NewTimer(helloTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("receive hello: %w", r.err)
		}
		hello := r.m.GetHello()
		if hello == nil {
			return nil, status.Error(codes.InvalidArgument, "the first message of a TablePush stream must be a Hello")
		}
		return hello, nil
	case <-t.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no Hello within %s", helloTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// receive records acks and stats until the stream ends.
func (h *Hub) receive(stream tablesv1.TablePush_ConnectServer, id string, conn uint64, log *slog.Logger, refused chan<- struct{}) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
				return errStreamEnded
			}
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			return fmt.Errorf("receive: %w", err)
		}
		now := time.Now()
		switch msg := m.Msg.(type) {
		case *tablesv1.DataplaneMessage_Ack:
			a := msg.Ack
			h.update(id, conn, func(i *DataplaneInfo) {
				i.LastAck = now
				if a.GetError() != "" {
					i.Error = fmt.Sprintf("generation %d refused: %s", a.GetGeneration(), a.GetError())
					return
				}
				i.Generation, i.Error = a.GetGeneration(), ""
			})
			if a.GetError() != "" {
				log.Error("dataplane refused tables", "generation", a.GetGeneration(), "err", a.GetError())
				select {
				case refused <- struct{}{}:
				default:
				}
			} else {
				log.Info("dataplane runs generation", "generation", a.GetGeneration())
			}
		case *tablesv1.DataplaneMessage_Stats:
			h.update(id, conn, func(i *DataplaneInfo) { i.LastStats, i.Stats = now, msg.Stats })
		case *tablesv1.DataplaneMessage_Flows:
			h.flowsAnswer(id, conn, msg.Flows)
		case *tablesv1.DataplaneMessage_Hello:
			log.Warn("ignoring a second Hello on one stream")
		default:
			log.Warn("ignoring an unknown dataplane message")
		}
	}
}

func (h *Hub) register(id, addr string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for k, d := range h.dps {
		if !d.info.Connected && now.Sub(d.info.DisconnectedAt) > forgetAfter {
			delete(h.dps, k)
		}
	}
	h.conns++
	d := h.dps[id]
	if d == nil {
		d = &dataplane{}
		h.dps[id] = d
	}
	// A reconnecting dataplane keeps what it acknowledged until it acks
	// again: its tables survive a lost stream.
	d.conn = h.conns
	d.info.ID, d.info.Peer, d.info.Connected = id, addr, true
	d.info.ConnectedAt, d.info.DisconnectedAt = now, time.Time{}
	return h.conns
}

func (h *Hub) unregister(id string, conn uint64) {
	h.update(id, conn, func(i *DataplaneInfo) {
		i.Connected = false
		i.DisconnectedAt = time.Now()
	})
}

// update changes the entry of id if the stream conn still owns it: a
// dataplane that reconnected before its old stream noticed the loss must
// not be marked disconnected by the old stream. The deltas no stream needs
// any more go with it (f may have moved the generation a stream was sent,
// or disconnected one): not at the next publish only.
func (h *Hub) update(id string, conn uint64, f func(*DataplaneInfo)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.dps[id]; d != nil && d.conn == conn {
		f(&d.info)
	}
	h.trimDeltasLocked()
}
