package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// fakeDataplane connects to e's TablePush service as id; when answer is
// true it answers every FlowsRequest with one flow of the request's VPC.
func fakeDataplane(t *testing.T, e env, id string, answer bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := tablesv1.NewTablePushClient(e.cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Hello{Hello: &tablesv1.Hello{DataplaneId: id}}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			if r := m.GetFlowsRequest(); r != nil && answer {
				s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Flows{Flows: &tablesv1.Flows{
					RequestId: r.GetRequestId(),
					Flows:     []*tablesv1.Flow{{Vpc: r.GetVpc(), Protocol: "tcp", InnerAddr: "10.1.1.5", InnerPort: 40000}},
					Counters:  map[string]uint64{"nat_ports_exhausted": 2},
				}}})
			}
		}
	}()
}

// listFlows calls ListFlows with a deadline of d, retrying while the
// dataplane asked for is not attached yet.
func listFlows(t *testing.T, e env, req *apiv1.ListFlowsRequest, d time.Duration) *apiv1.ListFlowsResponse {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		resp, err := e.client.ListFlows(ctx, req)
		cancel()
		if err == nil {
			return resp
		}
		if status.Code(err) != codes.NotFound || time.Now().After(end) {
			t.Fatalf("ListFlows(%v): %v", req, err)
		}
	}
}

func TestListFlowsReturnsEachDataplanesSessionsAndErrors(t *testing.T) {
	e := start(t, "")
	fakeDataplane(t, e, "dp-a", true)
	fakeDataplane(t, e, "dp-silent", false)

	resp := listFlows(t, e, &apiv1.ListFlowsRequest{Dataplane: "dp-a", Vpc: "vpc-1"}, 10*time.Second)
	if d := resp.GetDataplanes(); len(d) != 1 || d[0].GetId() != "dp-a" || d[0].GetError() != "" ||
		len(d[0].GetFlows()) != 1 || d[0].GetFlows()[0].GetVpc() != "vpc-1" || d[0].GetCounters()["nat_ports_exhausted"] != 2 {
		t.Fatalf("dp-a: %v", resp)
	}
	// The silent dataplane is reported with an error before the caller's
	// deadline, next to the other's sessions.
	listFlows(t, e, &apiv1.ListFlowsRequest{Dataplane: "dp-silent"}, time.Second)
	resp = listFlows(t, e, &apiv1.ListFlowsRequest{}, 3*time.Second)
	d := resp.GetDataplanes()
	if len(d) != 2 || d[0].GetId() != "dp-a" || len(d[0].GetFlows()) != 1 || d[1].GetId() != "dp-silent" || !strings.Contains(d[1].GetError(), "did not answer") {
		t.Fatalf("all: %v", resp)
	}
}

func TestListFlowsOfAnUnknownDataplaneIsNotFound(t *testing.T) {
	e := start(t, "")
	_, err := e.client.ListFlows(context.Background(), &apiv1.ListFlowsRequest{Dataplane: "nobody"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("err = %v, want NotFound", err)
	}
}
