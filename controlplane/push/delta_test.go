package push_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/controlplane/push"
	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func recv(t *testing.T, s tablesv1.TablePush_ConnectClient) *tablesv1.ControlplaneMessage {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

func ack(t *testing.T, s tablesv1.TablePush_ConnectClient, gen uint64, errText string) {
	t.Helper()
	if err := s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Ack{Ack: &tablesv1.Ack{Generation: gen, Error: errText}}}); err != nil {
		t.Fatal(err)
	}
}

func delta(base uint64) *tablesv1.TableDelta {
	return &tablesv1.TableDelta{BaseGeneration: base, Generation: base + 1,
		Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 0, RemoveRoutes: []string{"10.0.0.0/8"}}}}
}

// inStep returns a hub at generation 1 and the stream of a dataplane that
// received it whole and acknowledged it.
func inStep(t *testing.T) (*push.Hub, tablesv1.TablePush_ConnectClient) {
	t.Helper()
	hub, c := start(t)
	hub.Publish(&tablesv1.Tables{Generation: 1})
	s, _ := connect(t, c, "dp")
	if g := recvGen(t, s); g != 1 {
		t.Fatalf("first message: generation %d, want complete tables of 1", g)
	}
	ack(t, s, 1, "")
	return hub, s
}

func TestADataplaneInStepGetsDeltas(t *testing.T) {
	hub, s := inStep(t)
	hub.PublishDelta(&tablesv1.Tables{Generation: 2}, delta(1))
	m := recv(t, s)
	if d := m.GetDelta(); d == nil || d.GetBaseGeneration() != 1 || d.GetGeneration() != 2 {
		t.Fatalf("received %v, want the delta from 1 to 2", m)
	}
}

func TestARefusedDeltaIsFollowedByCompleteTables(t *testing.T) {
	hub, s := inStep(t)
	hub.PublishDelta(&tablesv1.Tables{Generation: 2}, delta(1))
	if m := recv(t, s); m.GetDelta() == nil {
		t.Fatalf("received %v, want a delta", m)
	}
	ack(t, s, 2, "this dataplane takes complete tables only")
	if g := recvGen(t, s); g != 2 {
		t.Fatalf("after the refusal: generation %d, want complete tables of 2", g)
	}
}

func TestADeltaThatDoesNotChainIsSentAsCompleteTables(t *testing.T) {
	hub, c := start(t)
	hub.Publish(&tablesv1.Tables{Generation: 1})
	s, _ := connect(t, c, "dp")
	recvGen(t, s)
	// A delta over a generation the hub never published.
	hub.PublishDelta(&tablesv1.Tables{Generation: 6}, delta(5))
	if g := recvGen(t, s); g != 6 {
		t.Fatalf("generation %d, want complete tables of 6", g)
	}
}

// Deltas published faster than a stream sends them are all kept for it
// (the hub drops only what no stream needs): the dataplane gets the chain,
// never complete tables.
func TestADataplaneBehindGetsEveryDeltaItNeeds(t *testing.T) {
	hub, s := inStep(t)
	const last = 40
	for base := uint64(1); base < last; base++ {
		hub.PublishDelta(&tablesv1.Tables{Generation: base + 1}, delta(base))
	}
	for want := uint64(2); want <= last; want++ {
		m := recv(t, s)
		d := m.GetDelta()
		if d == nil || d.GetGeneration() != want || d.GetBaseGeneration() != want-1 {
			t.Fatalf("received %v, want the delta from %d to %d", m, want-1, want)
		}
	}
}

// manyRoutes returns n routes 10.0.i.0/24 forwarding to VPC 1.
func manyRoutes(n int) []*tablesv1.Route {
	acts := []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 1}}
	out := make([]*tablesv1.Route, n)
	for i := range out {
		out[i] = &tablesv1.Route{Prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), Actions: acts}
	}
	return out
}

// Large route lists go out as route blocks, whole tables and deltas alike,
// to a dataplane that reads them; one that does not say so (built before
// blocks) gets Route messages. Either way it decodes the routes published.
func TestLargeRouteListsGoOutAsBlocksToThoseWhoReadThem(t *testing.T) {
	hub, c := start(t)
	n := 4 * routeblock.PackMin
	full := &tablesv1.Tables{Generation: 1, Vpcs: []*tablesv1.Vpc{{Id: 0, Name: "a", Routes: manyRoutes(n)}}}
	hub.Publish(full)
	d := &tablesv1.TableDelta{BaseGeneration: 1, Generation: 2, Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 0, UpsertRoutes: manyRoutes(n)[1:]}}}
	for _, blocks := range []bool{true, false} {
		t.Run(fmt.Sprint("route blocks ", blocks), func(t *testing.T) {
			s, _ := connectWith(t, c, &tablesv1.Hello{DataplaneId: fmt.Sprint("dp-", blocks), RouteBlocks: blocks})
			got := recv(t, s).GetTables()
			if v := got.GetVpcs()[0]; (v.GetRouteBlock() != nil) != blocks || (len(v.GetRoutes()) == 0) != blocks {
				t.Fatalf("tables of %d routes sent as %d plain routes and %d in a block", n, len(v.GetRoutes()), routeblock.Len(v.GetRouteBlock()))
			}
			plain, err := routeblock.UnpackTables(got)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(plain, full) {
				t.Fatal("the tables received are not those published")
			}
			ack(t, s, 1, "")
		})
	}
	// Both streams are at generation 1 now: each gets the delta in its form.
	s1, _ := connectWith(t, c, &tablesv1.Hello{DataplaneId: "dp-late-blocks", RouteBlocks: true, Generation: 1})
	s2, _ := connectWith(t, c, &tablesv1.Hello{DataplaneId: "dp-late-plain", Generation: 1})
	for _, s := range []tablesv1.TablePush_ConnectClient{s1, s2} {
		recv(t, s) // complete tables first (a new stream)
		ack(t, s, 1, "")
	}
	hub.PublishDelta(&tablesv1.Tables{Generation: 2}, d)
	for i, s := range []tablesv1.TablePush_ConnectClient{s1, s2} {
		gotD := recv(t, s).GetDelta()
		if blocks := i == 0; (gotD.GetVpcs()[0].GetUpsertRouteBlock() != nil) != blocks {
			t.Fatalf("stream %d (route blocks %v): delta of %d upserts sent with block %v", i, blocks, n-1, gotD.GetVpcs()[0].GetUpsertRouteBlock() != nil)
		}
		plainD, err := routeblock.UnpackDelta(gotD)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(plainD, d) {
			t.Fatalf("stream %d: the delta received is not the one published", i)
		}
	}
}

func TestWaitSentReturnsOnceEveryDataplaneWasSentTheGeneration(t *testing.T) {
	hub, s := inStep(t) // generation 1 sent and acknowledged
	start := time.Now()
	hub.WaitSent(1, time.Minute)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("generation 1, sent already: waited %v", d)
	}
	done := make(chan struct{})
	go func() { hub.WaitSent(2, time.Minute); close(done) }()
	select {
	case <-done:
		t.Fatal("returned before generation 2 was published")
	case <-time.After(50 * time.Millisecond):
	}
	hub.PublishDelta(&tablesv1.Tables{Generation: 2}, delta(1))
	recv(t, s)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting after generation 2 was sent")
	}
	// Nothing sends generation 3: the limit ends the wait.
	start = time.Now()
	hub.WaitSent(3, 100*time.Millisecond)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("returned after %v, before its limit", d)
	}
}
