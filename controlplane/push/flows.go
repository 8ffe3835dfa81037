package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// DefaultFlowsTimeout bounds Hub.Flows when its context has no deadline.
const DefaultFlowsTimeout = 5 * time.Second

// flowsQueue is how many FlowsRequests may wait for one stream's sender.
const flowsQueue = 8

// ErrNoDataplane is returned by Hub.Flows for an ID that is not connected.
var ErrNoDataplane = errors.New("dataplane not connected")

// FlowsAnswer is one dataplane's answer to Hub.Flows: its Flows, or Err
// when it did not answer (timeout, disconnect, busy stream).
type FlowsAnswer struct {
	DataplaneID string
	Flows       *tablesv1.Flows
	Err         error
}

// flowsState routes FlowsRequests to the stream that owns a dataplane and
// its answers back to the caller waiting for them. The zero value is
// ready.
type flowsState struct {
	mu      sync.Mutex
	links   map[string]*flowsLink // by dataplane ID
	pending map[uint64]*flowsWait // by request id
	next    uint64
}

// flowsLink is one stream's queue of requests to send.
type flowsLink struct {
	conn uint64
	reqs chan *tablesv1.FlowsRequest
}

type flowsWait struct {
	id   string
	conn uint64
	ch   chan *tablesv1.Flows // capacity 1; nil answer = stream gone
}

// flowsAttach makes the stream conn the one that carries id's requests and
// returns the queue its sender must drain.
func (h *Hub) flowsAttach(id string, conn uint64) <-chan *tablesv1.FlowsRequest {
	f := &h.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.links == nil {
		f.links = map[string]*flowsLink{}
	}
	l := &flowsLink{conn: conn, reqs: make(chan *tablesv1.FlowsRequest, flowsQueue)}
	f.links[id] = l
	return l.reqs
}

// flowsDetach forgets the stream conn and fails the requests still waiting
// for its answers, so callers do not wait for their timeout.
func (h *Hub) flowsDetach(id string, conn uint64) {
	f := &h.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.links[id]; l != nil && l.conn == conn {
		delete(f.links, id)
	}
	for rid, w := range f.pending {
		if w.id == id && w.conn == conn {
			delete(f.pending, rid)
			w.ch <- nil
		}
	}
}

// flowsAnswer hands an answer received on stream conn to its caller; an
// answer nobody waits for any more (timed out) is dropped.
func (h *Hub) flowsAnswer(id string, conn uint64, m *tablesv1.Flows) {
	f := &h.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.pending[m.GetRequestId()]
	if w == nil || w.id != id || w.conn != conn {
		return
	}
	delete(f.pending, m.GetRequestId())
	w.ch <- m
}

// Flows asks the connected dataplane id ("" = every connected one) for its
// stateful-NAT sessions, req's VPC and limit applying to each, and returns
// their answers sorted by ID. It waits until ctx ends or, without a
// deadline, DefaultFlowsTimeout; a dataplane that has not answered by then
// or that disconnects is in the result with an error. req.RequestId is set
// by Flows.
func (h *Hub) Flows(ctx context.Context, id string, req *tablesv1.FlowsRequest) ([]FlowsAnswer, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultFlowsTimeout)
		defer cancel()
	}
	type call struct {
		id  string
		rid uint64
		w   *flowsWait
		err error
	}
	f := &h.flows
	f.mu.Lock()
	var calls []call
	for did, l := range f.links {
		if id != "" && did != id {
			continue
		}
		f.next++
		c := call{id: did, rid: f.next}
		r := &tablesv1.FlowsRequest{RequestId: c.rid, Vpc: req.GetVpc(), Limit: req.GetLimit()}
		select {
		case l.reqs <- r:
			c.w = &flowsWait{id: did, conn: l.conn, ch: make(chan *tablesv1.Flows, 1)}
			if f.pending == nil {
				f.pending = map[uint64]*flowsWait{}
			}
			f.pending[c.rid] = c.w
		default:
			c.err = fmt.Errorf("dataplane %s: %d flow requests already waiting", did, flowsQueue)
		}
		calls = append(calls, c)
	}
	f.mu.Unlock()
	if id != "" && len(calls) == 0 {
		return nil, fmt.Errorf("flows of %s: %w", id, ErrNoDataplane)
	}

	out := make([]FlowsAnswer, len(calls))
	for i, c := range calls {
		out[i] = FlowsAnswer{DataplaneID: c.id, Err: c.err}
		if c.w == nil {
			continue
		}
		select {
		case m := <-c.w.ch:
			if m == nil {
				out[i].Err = fmt.Errorf("dataplane %s disconnected before answering", c.id)
			} else {
				out[i].Flows = m
			}
		case <-ctx.Done():
			f.mu.Lock()
			delete(f.pending, c.rid)
			f.mu.Unlock()
			// An answer may have arrived just before the removal.
			select {
			case m := <-c.w.ch:
				if m != nil {
					out[i].Flows = m
					continue
				}
			default:
			}
			out[i].Err = fmt.Errorf("dataplane %s did not answer: %w", c.id, ctx.Err())
		}
	}
	slices.SortFunc(out, func(a, b FlowsAnswer) int { return strings.Compare(a.DataplaneID, b.DataplaneID) })
	return out, nil
}

// sendFlowsRequest is the stream sender's part: one request on the stream.
func sendFlowsRequest(stream tablesv1.TablePush_ConnectServer, id string, r *tablesv1.FlowsRequest) error {
	msg := &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_FlowsRequest{FlowsRequest: r}}
	if err := stream.Send(msg); err != nil {
		return fmt.Errorf("dataplane %s: send flows request %d: %w", id, r.GetRequestId(), err)
	}
	return nil
}
