package push_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/peergate/peergate/controlplane/push"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// wait bounds polling; it guards against hangs and asserts no speed.
const wait = 10 * time.Second

func start(t *testing.T) (*push.Hub, tablesv1.TablePushClient) {
	t.Helper()
	hub := push.New(nil)
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

func connect(t *testing.T, c tablesv1.TablePushClient, id string) (tablesv1.TablePush_ConnectClient, context.CancelFunc) {
	return connectWith(t, c, &tablesv1.Hello{DataplaneId: id})
}

func connectWith(t *testing.T, c tablesv1.TablePushClient, hello *tablesv1.Hello) (tablesv1.TablePush_ConnectClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	return s, cancel
}

func recvGen(t *testing.T, s tablesv1.TablePush_ConnectClient) uint64 {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if m.GetTables() == nil {
		t.Fatalf("received %v, want tables", m)
	}
	return m.GetTables().GetGeneration()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %s", what, wait)
}

func info(hub *push.Hub, id string) push.DataplaneInfo {
	for _, d := range hub.Dataplanes() {
		if d.ID == id {
			return d
		}
	}
	return push.DataplaneInfo{}
}

func TestHelloGetsTheCurrentTablesThenEveryNewGeneration(t *testing.T) {
	hub, c := start(t)
	hub.Publish(&tablesv1.Tables{Generation: 4})
	s, _ := connect(t, c, "dp1")
	if g := recvGen(t, s); g != 4 {
		t.Fatalf("first tables = generation %d, want 4", g)
	}
	hub.Publish(&tablesv1.Tables{Generation: 5})
	if g := recvGen(t, s); g != 5 {
		t.Fatalf("next tables = generation %d, want 5", g)
	}
}

func TestADataplaneConnectedBeforeAnyTablesGetsTheFirst(t *testing.T) {
	hub, c := start(t)
	s, _ := connect(t, c, "dp1")
	eventually(t, "dataplane registered", func() bool { return info(hub, "dp1").Connected })
	hub.Publish(&tablesv1.Tables{Generation: 1})
	if g := recvGen(t, s); g != 1 {
		t.Fatalf("tables = generation %d, want 1", g)
	}
}

func TestAcksAndStatsAreRecordedPerDataplane(t *testing.T) {
	hub, c := start(t)
	hub.Publish(&tablesv1.Tables{Generation: 2})
	s, _ := connect(t, c, "dp1")
	recvGen(t, s)
	send := func(m *tablesv1.DataplaneMessage) {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Ack{Ack: &tablesv1.Ack{Generation: 2}}})
	send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Stats{Stats: &tablesv1.Stats{Generation: 2, Sessions: 9}}})
	eventually(t, "ack and stats recorded", func() bool {
		i := info(hub, "dp1")
		return i.Generation == 2 && i.SentGeneration == 2 && i.Stats.GetSessions() == 9
	})

	hub.Publish(&tablesv1.Tables{Generation: 3})
	recvGen(t, s)
	send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Ack{Ack: &tablesv1.Ack{Generation: 3, Error: "no memory"}}})
	eventually(t, "refusal recorded", func() bool {
		i := info(hub, "dp1")
		return i.Generation == 2 && i.Error == "generation 3 refused: no memory"
	})
}

func TestADisconnectedDataplaneStaysListedAsDisconnected(t *testing.T) {
	hub, c := start(t)
	_, cancel := connect(t, c, "dp1")
	eventually(t, "connected", func() bool { return info(hub, "dp1").Connected })
	cancel()
	eventually(t, "disconnected", func() bool {
		i := info(hub, "dp1")
		return i.ID == "dp1" && !i.Connected && !i.DisconnectedAt.IsZero()
	})
}

func TestAReconnectedDataplaneIsNotMarkedDownByItsOldStream(t *testing.T) {
	hub, c := start(t)
	_, cancelOld := connect(t, c, "dp1")
	eventually(t, "connected", func() bool { return info(hub, "dp1").Connected })
	first := info(hub, "dp1").ConnectedAt
	connect(t, c, "dp1")
	eventually(t, "second stream registered", func() bool { return info(hub, "dp1").ConnectedAt != first })
	cancelOld()
	time.Sleep(50 * time.Millisecond)
	if !info(hub, "dp1").Connected {
		t.Fatal("dataplane marked disconnected by its old stream")
	}
}

func TestAStreamThatDoesNotStartWithHelloIsRejected(t *testing.T) {
	_, c := start(t)
	s, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Ack{Ack: &tablesv1.Ack{}}}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Recv = %v, want InvalidArgument", err)
	}
}

func TestCloseEndsEveryStream(t *testing.T) {
	hub, c := start(t)
	s, _ := connect(t, c, "dp1")
	eventually(t, "connected", func() bool { return info(hub, "dp1").Connected })
	hub.Close()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Recv after Close = %v, want Unavailable", err)
	}
}
