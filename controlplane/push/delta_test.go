package push_test

import (
	"testing"

	"github.com/peergate/peergate/controlplane/push"
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
