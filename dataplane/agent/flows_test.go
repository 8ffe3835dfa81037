package agent_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/peergate/peergate/controlplane/push"
	"github.com/peergate/peergate/dataplane/agent"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// startHub serves a real push hub on a fresh unix socket.
func startHub(t *testing.T) (*push.Hub, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "agent-flows")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "cp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hub := push.New(nil)
	srv := grpc.NewServer()
	tablesv1.RegisterTablePushServer(srv, hub)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return hub, "unix://" + sock
}

// askFlows retries until the agent's stream is attached, then returns the
// hub's answers.
func askFlows(t *testing.T, hub *push.Hub, req *tablesv1.FlowsRequest) []push.FlowsAnswer {
	t.Helper()
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		got, err := hub.Flows(ctx, "dp-flows", req)
		cancel()
		if err == nil {
			return got
		}
	}
	t.Fatalf("the agent did not connect within %s", wait)
	return nil
}

func TestAgentAnswersFlowRequests(t *testing.T) {
	cases := []struct {
		name      string
		flows     func(*tablesv1.FlowsRequest) *tablesv1.Flows
		wantVPC   string
		wantError string
	}{
		{"the callback's answer goes back with the request's filter", func(r *tablesv1.FlowsRequest) *tablesv1.Flows {
			return &tablesv1.Flows{Flows: []*tablesv1.Flow{{Vpc: r.GetVpc(), InnerPort: r.GetLimit()}}, Counters: map[string]uint64{"created": 3}}
		}, "vpc-1", ""},
		{"a callback's error goes back", func(*tablesv1.FlowsRequest) *tablesv1.Flows {
			return &tablesv1.Flows{Error: "no VPC"}
		}, "", "no VPC"},
		{"without a callback the dataplane says it does not list flows", nil, "", "this dataplane does not list flows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hub, addr := startHub(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				agent.Run(ctx, agent.Config{
					Address: addr, DataplaneID: "dp-flows",
					Apply: func(*tablesv1.Tables) error { return nil },
					Flows: c.flows,
				})
			}()
			t.Cleanup(func() { cancel(); <-done })
			got := askFlows(t, hub, &tablesv1.FlowsRequest{Vpc: "vpc-1", Limit: 9})
			if len(got) != 1 || got[0].Err != nil {
				t.Fatalf("answers %+v", got)
			}
			f := got[0].Flows
			if f.GetError() != c.wantError {
				t.Fatalf("error %q, want %q", f.GetError(), c.wantError)
			}
			if c.wantVPC != "" && (len(f.GetFlows()) != 1 || f.GetFlows()[0].GetVpc() != c.wantVPC || f.GetFlows()[0].GetInnerPort() != 9 || f.GetCounters()["created"] != 3) {
				t.Fatalf("flows %v counters %v", f.GetFlows(), f.GetCounters())
			}
		})
	}
}

func TestAgentKeepsApplyingTablesWhileAFlowListingIsSlow(t *testing.T) {
	hub, addr := startHub(t)
	release, started := make(chan struct{}), make(chan struct{})
	applied := make(chan uint64, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(ctx, agent.Config{
			Address: addr, DataplaneID: "dp-flows",
			Apply: func(t *tablesv1.Tables) error { applied <- t.GetGeneration(); return nil },
			Flows: func(*tablesv1.FlowsRequest) *tablesv1.Flows {
				close(started)
				<-release
				return &tablesv1.Flows{}
			},
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	answered := make(chan []push.FlowsAnswer, 1)
	go func() { answered <- askFlows(t, hub, &tablesv1.FlowsRequest{}) }()
	// Once the listing is under way, publish: the tables are applied while
	// Flows still blocks.
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("the flow listing did not start")
	}
	hub.Publish(&tablesv1.Tables{Generation: 3})
	select {
	case g := <-applied:
		if g != 3 {
			t.Fatalf("applied generation %d, want 3", g)
		}
	case <-time.After(wait):
		t.Fatal("tables not applied while a flow listing blocks")
	}
	close(release)
	if got := <-answered; len(got) != 1 || got[0].Err != nil {
		t.Fatalf("answers %+v", got)
	}
}
