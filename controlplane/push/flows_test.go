package push

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// flowsHang bounds the waits of these tests; a hang guard, not a speed
// assertion.
const flowsHang = 10 * time.Second

func startFlowsHub(t *testing.T) (*Hub, tablesv1.TablePushClient) {
	t.Helper()
	hub := New(nil)
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	tablesv1.RegisterTablePushServer(srv, hub)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return hub, tablesv1.NewTablePushClient(cc)
}

// dial connects a fake dataplane and waits until the hub routes flow
// requests to it.
func dial(t *testing.T, hub *Hub, c tablesv1.TablePushClient, id string) (tablesv1.TablePush_ConnectClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Hello{Hello: &tablesv1.Hello{DataplaneId: id}}}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(flowsHang); ; time.Sleep(time.Millisecond) {
		hub.flows.mu.Lock()
		l := hub.flows.links[id]
		hub.flows.mu.Unlock()
		if l != nil {
			return s, cancel
		}
		if time.Now().After(end) {
			t.Fatalf("dataplane %s not attached within %s", id, flowsHang)
		}
	}
}

// serveFlows answers every FlowsRequest on s with one flow naming the
// request's VPC, until the stream ends.
func serveFlows(s tablesv1.TablePush_ConnectClient, id string) {
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			r := m.GetFlowsRequest()
			if r == nil {
				continue
			}
			s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Flows{Flows: &tablesv1.Flows{
				RequestId: r.GetRequestId(),
				Flows:     []*tablesv1.Flow{{Vpc: r.GetVpc(), InnerAddr: id, InnerPort: r.GetLimit()}},
				Counters:  map[string]uint64{"created": 1},
			}}})
		}
	}()
}

// recvRequest returns the next FlowsRequest on s.
func recvRequest(t *testing.T, s tablesv1.TablePush_ConnectClient) *tablesv1.FlowsRequest {
	t.Helper()
	for {
		m, err := s.Recv()
		if err != nil {
			t.Errorf("receive: %v", err)
			return nil
		}
		if r := m.GetFlowsRequest(); r != nil {
			return r
		}
	}
}

func TestFlowsCollectsTheAnswerOfEveryConnectedDataplane(t *testing.T) {
	hub, c := startFlowsHub(t)
	for _, id := range []string{"dp-b", "dp-a"} {
		s, _ := dial(t, hub, c, id)
		serveFlows(s, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flowsHang)
	defer cancel()
	got, err := hub.Flows(ctx, "", &tablesv1.FlowsRequest{Vpc: "vpc-1", Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].DataplaneID != "dp-a" || got[1].DataplaneID != "dp-b" {
		t.Fatalf("answers %+v, want dp-a then dp-b", got)
	}
	for _, a := range got {
		if a.Err != nil {
			t.Fatalf("%s: %v", a.DataplaneID, a.Err)
		}
		f := a.Flows.GetFlows()
		// Each answer is its own dataplane's, with the request's filter.
		if len(f) != 1 || f[0].GetInnerAddr() != a.DataplaneID || f[0].GetVpc() != "vpc-1" || f[0].GetInnerPort() != 7 {
			t.Errorf("%s answered %v", a.DataplaneID, f)
		}
	}
}

func TestFlowsOfOneDataplaneAsksOnlyIt(t *testing.T) {
	hub, c := startFlowsHub(t)
	a, _ := dial(t, hub, c, "dp-a")
	serveFlows(a, "dp-a")
	dial(t, hub, c, "dp-silent")
	got, err := hub.Flows(context.Background(), "dp-a", &tablesv1.FlowsRequest{})
	if err != nil || len(got) != 1 || got[0].Err != nil || got[0].Flows.GetFlows()[0].GetInnerAddr() != "dp-a" {
		t.Fatalf("Flows(dp-a) = %+v, %v", got, err)
	}
}

func TestFlowsOfAnUnknownDataplaneIsErrNoDataplane(t *testing.T) {
	hub, _ := startFlowsHub(t)
	if _, err := hub.Flows(context.Background(), "nobody", &tablesv1.FlowsRequest{}); !errors.Is(err, ErrNoDataplane) {
		t.Fatalf("err = %v, want ErrNoDataplane", err)
	}
}

func TestADataplaneThatDoesNotAnswerIsReportedWhenTheContextEnds(t *testing.T) {
	hub, c := startFlowsHub(t)
	a, _ := dial(t, hub, c, "dp-a")
	serveFlows(a, "dp-a")
	silent, _ := dial(t, hub, c, "dp-silent")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []FlowsAnswer, 1)
	go func() {
		got, _ := hub.Flows(ctx, "", &tablesv1.FlowsRequest{})
		done <- got
	}()
	// The silent dataplane got the request and ignores it; once dp-a's
	// answer is in (its request no longer pending), the caller gives up.
	recvRequest(t, silent)
	for end := time.Now().Add(flowsHang); ; time.Sleep(time.Millisecond) {
		hub.flows.mu.Lock()
		n := len(hub.flows.pending)
		hub.flows.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d requests pending, want only dp-silent's", n)
		}
	}
	cancel()
	got := <-done
	if len(got) != 2 || got[0].Err != nil || got[1].Err == nil || !strings.Contains(got[1].Err.Error(), "did not answer") {
		t.Fatalf("answers %+v, want dp-a's flows and dp-silent's error", got)
	}
	// Its late answer is dropped, and the next request is routed anew.
	hub.flows.mu.Lock()
	n := len(hub.flows.pending)
	hub.flows.mu.Unlock()
	if n != 0 {
		t.Errorf("%d requests still pending", n)
	}
}

func TestADataplaneThatDisconnectsBeforeAnsweringIsReported(t *testing.T) {
	hub, c := startFlowsHub(t)
	s, cancelStream := dial(t, hub, c, "dp-gone")
	done := make(chan []FlowsAnswer, 1)
	go func() {
		got, _ := hub.Flows(context.Background(), "dp-gone", &tablesv1.FlowsRequest{})
		done <- got
	}()
	recvRequest(t, s)
	cancelStream()
	select {
	case got := <-done:
		if len(got) != 1 || got[0].Err == nil || !strings.Contains(got[0].Err.Error(), "disconnected") {
			t.Fatalf("answers %+v, want a disconnect error", got)
		}
	case <-time.After(flowsHang):
		t.Fatal("Flows still waits for a dataplane that disconnected")
	}
}

func TestAnAnswerFromAnotherDataplaneIsIgnored(t *testing.T) {
	hub, c := startFlowsHub(t)
	target, _ := dial(t, hub, c, "dp-target")
	other, _ := dial(t, hub, c, "dp-other")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []FlowsAnswer, 1)
	go func() {
		got, _ := hub.Flows(ctx, "dp-target", &tablesv1.FlowsRequest{})
		done <- got
	}()
	r := recvRequest(t, target)
	// dp-other answers dp-target's request id: not routed.
	other.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Flows{Flows: &tablesv1.Flows{RequestId: r.GetRequestId(), Error: "spoofed"}}})
	target.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Flows{Flows: &tablesv1.Flows{RequestId: r.GetRequestId(), Error: "real"}}})
	got := <-done
	cancel()
	if len(got) != 1 || got[0].Err != nil || got[0].Flows.GetError() != "real" {
		t.Fatalf("answers %+v, want dp-target's own", got)
	}
}
