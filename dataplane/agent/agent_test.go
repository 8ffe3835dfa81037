package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/peergate/peergate/dataplane/agent"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// wait bounds every wait of these tests; it is a hang guard, not a
// performance assertion.
const wait = 10 * time.Second

// fakeControlplane is a minimal TablePush server: it reports what each
// stream says and sends what a test queues.
type fakeControlplane struct {
	tablesv1.UnimplementedTablePushServer
	hellos chan *tablesv1.Hello
	acks   chan *tablesv1.Ack
	stats  chan *tablesv1.Stats
	out    chan *tablesv1.ControlplaneMessage
	srv    *grpc.Server
}

func startFake(t *testing.T, sock string) *fakeControlplane {
	t.Helper()
	f := &fakeControlplane{
		hellos: make(chan *tablesv1.Hello, 16),
		acks:   make(chan *tablesv1.Ack, 16),
		stats:  make(chan *tablesv1.Stats, 1024),
		out:    make(chan *tablesv1.ControlplaneMessage, 16),
		srv:    grpc.NewServer(),
	}
	tablesv1.RegisterTablePushServer(f.srv, f)
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln)
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeControlplane) Connect(s tablesv1.TablePush_ConnectServer) error {
	m, err := s.Recv()
	if err != nil {
		return err
	}
	f.hellos <- m.GetHello()
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			switch {
			case m.GetAck() != nil:
				f.acks <- m.GetAck()
			case m.GetStats() != nil:
				select {
				case f.stats <- m.GetStats():
				default:
				}
			}
		}
	}()
	for {
		select {
		case m := <-f.out:
			if err := s.Send(m); err != nil {
				return err
			}
		case err := <-errc:
			return err
		}
	}
}

func tables(gen uint64) *tablesv1.ControlplaneMessage {
	return &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Tables{Tables: &tablesv1.Tables{Generation: gen}}}
}

func delta(base, gen uint64) *tablesv1.ControlplaneMessage {
	return &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Delta{Delta: &tablesv1.TableDelta{BaseGeneration: base, Generation: gen}}}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s within %s", what, wait)
		panic("unreachable")
	}
}

// dataplane records what the agent hands it.
type dataplane struct {
	mu      sync.Mutex
	applied []uint64
	refuse  map[uint64]bool
}

func (d *dataplane) apply(t *tablesv1.Tables) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refuse[t.GetGeneration()] {
		return errors.New("port fabric missing")
	}
	d.applied = append(d.applied, t.GetGeneration())
	return nil
}

func (d *dataplane) applyDelta(t *tablesv1.TableDelta) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = append(d.applied, t.GetGeneration())
	return nil
}

func runAgent(t *testing.T, sock string, d *dataplane, stats func() *tablesv1.Stats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{
			Address:       "unix://" + sock,
			DataplaneID:   "dp-test",
			Apply:         d.apply,
			ApplyDelta:    d.applyDelta,
			Stats:         stats,
			StatsInterval: 10 * time.Millisecond,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
}

func socket(t *testing.T) string {
	// Unix socket paths are limited to 108 bytes; t.TempDir() can exceed it.
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "cp.sock")
}

func TestAgentAppliesAndAcknowledgesEveryMessage(t *testing.T) {
	cases := []struct {
		name    string
		msg     *tablesv1.ControlplaneMessage
		wantGen uint64
		wantErr string
	}{
		{"full tables are applied and acked", tables(5), 5, ""},
		{"refused tables are acked with the reason", tables(6), 6, "port fabric missing"},
		{"a delta over another generation is refused", delta(4, 7), 7, "delta over generation 4, but generation 5 is running"},
		{"a delta over the running generation is applied", delta(5, 7), 7, ""},
	}
	sock := socket(t)
	f := startFake(t, sock)
	d := &dataplane{refuse: map[uint64]bool{6: true}}
	runAgent(t, sock, d, nil)
	h := recv(t, f.hellos, "hello")
	if h.GetDataplaneId() != "dp-test" || h.GetGeneration() != 0 {
		t.Fatalf("hello = %v, want dp-test at generation 0", h)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.out <- c.msg
			a := recv(t, f.acks, "ack")
			if a.GetGeneration() != c.wantGen || a.GetError() != c.wantErr {
				t.Fatalf("ack = {%d %q}, want {%d %q}", a.GetGeneration(), a.GetError(), c.wantGen, c.wantErr)
			}
		})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if fmt.Sprint(d.applied) != "[5 7]" {
		t.Errorf("applied generations = %v, want [5 7]", d.applied)
	}
}

func TestAgentPushesStatsPeriodically(t *testing.T) {
	sock := socket(t)
	f := startFake(t, sock)
	var mu sync.Mutex
	n := uint64(0)
	runAgent(t, sock, &dataplane{}, func() *tablesv1.Stats {
		mu.Lock()
		defer mu.Unlock()
		n++
		return &tablesv1.Stats{Sessions: n}
	})
	recv(t, f.hellos, "hello")
	first := recv(t, f.stats, "stats")
	second := recv(t, f.stats, "second stats")
	if second.GetSessions() <= first.GetSessions() {
		t.Errorf("stats did not advance: %d then %d", first.GetSessions(), second.GetSessions())
	}
}

func TestAgentReconnectsToARestartedControlplaneAndSaysWhatItRuns(t *testing.T) {
	sock := socket(t)
	f := startFake(t, sock)
	runAgent(t, sock, &dataplane{}, nil)
	recv(t, f.hellos, "hello")
	f.out <- tables(3)
	recv(t, f.acks, "ack")

	f.srv.Stop()
	f2 := startFake(t, sock)
	h := recv(t, f2.hellos, "hello after restart")
	if h.GetGeneration() != 3 {
		t.Errorf("hello after restart says generation %d, want 3", h.GetGeneration())
	}
}

func TestAgentWaitsForAControlplaneThatIsNotUpYet(t *testing.T) {
	sock := socket(t)
	runAgent(t, sock, &dataplane{}, nil)
	time.Sleep(100 * time.Millisecond) // let it fail a few attempts
	f := startFake(t, sock)
	recv(t, f.hellos, "hello")
}

func TestRunRejectsABadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  agent.Config
	}{
		{"without an address", agent.Config{Apply: func(*tablesv1.Tables) error { return nil }}},
		{"without an Apply function", agent.Config{Address: "unix:///nonexistent"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := agent.Run(context.Background(), c.cfg); err == nil {
				t.Fatal("Run succeeded, want an error")
			}
		})
	}
}
