package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestPrintFlowsShowsSessionsCountersAndErrors(t *testing.T) {
	resp := &apiv1.ListFlowsResponse{Dataplanes: []*apiv1.DataplaneFlows{
		{
			Id: "dp-1",
			Flows: []*tablesv1.Flow{{
				Vpc: "vpc-1", Protocol: "tcp", InnerAddr: "10.1.1.5", InnerPort: 40000,
				PublicAddr: "192.0.2.10", PublicPort: 1024, RemoteAddr: "2001:db8::1", RemotePort: 443,
				State: "established", ExpiresInSeconds: 7199, Generation: 4,
			}},
			Counters: map[string]uint64{"created": 12, "expired": 3, "nat_table_full": 1, "nat_ports_exhausted": 2},
		},
		{Id: "dp-2", Error: "dataplane dp-2 did not answer: context deadline exceeded"},
	}}
	var b bytes.Buffer
	printFlows(&b, resp)
	for _, want := range []string{
		"DATAPLANE dp-1  1 sessions listed",
		"VPC    PROTO  INNER           PUBLIC           REMOTE             STATE        EXPIRES IN  GENERATION",
		"vpc-1  tcp    10.1.1.5:40000  192.0.2.10:1024  [2001:db8::1]:443  established  7199s       4",
		"nat_ports_exhausted  2",
		"nat_table_full       1",
		"created              12",
		"DATAPLANE dp-2  0 sessions listed\nerror: dataplane dp-2 did not answer",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// answeringDataplane connects to the controlplane at addr as id and
// answers every FlowsRequest with one flow in the request's VPC.
func answeringDataplane(t *testing.T, addr, id string) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := tablesv1.NewTablePushClient(cc).Connect(ctx)
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
			if r := m.GetFlowsRequest(); r != nil {
				s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Flows{Flows: &tablesv1.Flows{
					RequestId: r.GetRequestId(),
					Flows: []*tablesv1.Flow{{
						Vpc: r.GetVpc(), Protocol: "udp", InnerAddr: "10.1.1.5", InnerPort: 5353,
						PublicAddr: "192.0.2.10", PublicPort: 2000, RemoteAddr: "198.51.100.1", RemotePort: 53, State: "active",
					}},
					Counters: map[string]uint64{"created": 1},
				}}})
			}
		}
	}()
}

func TestGetFlowsAsksTheDataplanesThroughTheControlplane(t *testing.T) {
	addr := startServer(t)
	answeringDataplane(t, addr, "dp-1")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"a table with the VPC filter applied", []string{"get", "flows", "--vpc", "vpc-1", "--limit", "5"}, "vpc-1  udp    10.1.1.5:5353"},
		{"json output is the API response", []string{"get", "flows", "--vpc", "vpc-2", "-o", "json"}, `"vpc-2"`},
		{"one dataplane by ID", []string{"get", "flows", "--dataplane", "dp-1"}, "DATAPLANE dp-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The dataplane may still be attaching: retry for a while.
			var r result
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if r = gwctl(t, "", append([]string{"--server", addr}, c.args...)...); r.code == 0 && strings.Contains(r.stdout, c.want) {
					return
				}
			}
			t.Fatalf("gwctl %v = exit %d\nstdout:\n%s\nstderr:\n%s\nwant stdout containing %q", c.args, r.code, r.stdout, r.stderr, c.want)
		})
	}
	if r := gwctl(t, "", "--server", addr, "get", "flows", "--dataplane", "nobody"); r.code != 1 || !strings.Contains(r.stderr, "not connected") {
		t.Errorf("unknown dataplane: exit %d, stderr %q", r.code, r.stderr)
	}
}
