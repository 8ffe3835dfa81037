package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/runtime"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestRunFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"run without a controlplane address is refused", []string{"run"}, "no controlplane"},
		{"run with more cores than workers is refused", []string{"run", "--controlplane", "unix:///x", "--workers", "1", "--cores", "1,2"}, "2 CPUs for 1 workers"},
		{"run with a bad core list is refused", []string{"run", "--controlplane", "unix:///x", "--cores", "a"}, "not a CPU number"},
		{"run with a bad log level is refused", []string{"run", "--controlplane", "unix:///x", "--log-level", "loud"}, "--log-level"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			if code := dispatch(context.Background(), c.args, &out, &errw); code != 1 || !strings.Contains(errw.String(), c.want) {
				t.Errorf("exit %d, stderr %q: want 1 and %q", code, errw.String(), c.want)
			}
		})
	}
}

func TestRunWithoutDPDKSaysWhatIsMissing(t *testing.T) {
	if dpdk.Available() {
		t.Skip("this binary has DPDK")
	}
	var out, errw bytes.Buffer
	code := dispatch(context.Background(), []string{"run", "--controlplane", "unix:///nonexistent"}, &out, &errw)
	if code != 1 || !strings.Contains(errw.String(), dpdk.ErrNotBuilt.Error()) {
		t.Errorf("exit %d, stderr %q: want 1 and the missing-DPDK explanation", code, errw.String())
	}
}

func TestRunHelpDocumentsPortChanges(t *testing.T) {
	var out, errw bytes.Buffer
	if code := dispatch(context.Background(), []string{"run", "--help"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--controlplane", "Port changes", "refused", "--cores"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help has no %q:\n%s", want, out.String())
		}
	}
}

// Every way of asking for help prints it on stdout and exits 0; a bad flag
// is an error that says where the flags are listed.
func TestHelpIsOnStdoutAndExitsZero(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"--help"}, 0, "dataplane replay -f MANIFEST", ""},
		{[]string{"help"}, 0, "dataplane run --controlplane ADDR", ""},
		{[]string{"help", "replay"}, 0, "DIR/<port>.pcap", ""},
		{[]string{"replay", "--help"}, 0, "-out-dir", ""},
		{[]string{"run", "-h"}, 0, "-nat-sessions", ""},
		{[]string{"replay", "--bogus"}, 1, "", "dataplane replay --help lists the flags"},
		{[]string{"help", "bogus"}, 2, "", `unknown command "bogus"`},
		{nil, 2, "", "Usage:"},
	} {
		var out, errw bytes.Buffer
		code := dispatch(context.Background(), c.args, &out, &errw)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errw.String(), c.err) {
			t.Errorf("dataplane %q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out.String(), errw.String(), c.code, c.out, c.err)
		}
	}
}

func TestParseCores(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"", nil, false},
		{"1", []int{1}, false},
		{"1,3", []int{1, 3}, false},
		{"2-4,7", []int{2, 3, 4, 7}, false},
		{"4-2", nil, true},
		{"-1", nil, true},
		{"x", nil, true},
	} {
		got, err := parseCores(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseCores(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestPortsDiffNamesWhatChanged(t *testing.T) {
	a := []runtime.PortConfig{{ID: 0, Name: "fabric", Device: "net_af_packet0,iface=gw0"}, {ID: 1, Name: "vpc2", Device: "net_af_packet1,iface=gw1"}}
	b := append([]runtime.PortConfig(nil), a...)
	b[1].MTU = 9000
	if got := portsDiff(a, b); got != `port "vpc2" changed` {
		t.Errorf("portsDiff = %q", got)
	}
	if got := portsDiff(a, a[:1]); got != "1 ports instead of 2" {
		t.Errorf("portsDiff = %q", got)
	}
}

// pushServer is a controlplane's TablePush end driven by the test: it
// forwards what the dataplane says and sends what the test queues.
type pushServer struct {
	tablesv1.UnimplementedTablePushServer
	in  chan *tablesv1.DataplaneMessage
	out chan *tablesv1.ControlplaneMessage
}

func (p *pushServer) Connect(s tablesv1.TablePush_ConnectServer) error {
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			p.in <- m
		}
	}()
	for {
		select {
		case <-s.Context().Done():
			return nil
		case m := <-p.out:
			if err := s.Send(m); err != nil {
				return err
			}
		}
	}
}

// nextAck returns the next acknowledgement, skipping hellos and stats (the
// last stats seen is kept in *stats).
func (p *pushServer) nextAck(t *testing.T, stats **tablesv1.Stats) *tablesv1.Ack {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-p.in:
			if a := m.GetAck(); a != nil {
				return a
			}
			if s := m.GetStats(); s != nil && stats != nil {
				*stats = s
			}
		case <-timeout:
			t.Fatal("no acknowledgement within 20s")
		}
	}
}

func nullTables(gen uint64, id string) *tablesv1.Tables {
	return &tablesv1.Tables{
		Generation: gen,
		Gateway:    &tablesv1.Gateway{VtepIp: "192.0.2.1"},
		Ports: []*tablesv1.Port{
			{Id: 0, Name: "a", Device: "net_null_a" + id, Mtu: 1500},
			{Id: 1, Name: "b", Device: "net_null_b" + id, Mtu: 1500},
		},
		Vpcs: []*tablesv1.Vpc{{Id: 0, Name: "v", Subnets: []string{"10.0.0.0/24"},
			Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_UNTAGGED, PortId: 1},
			Routes:     []*tablesv1.Route{{Prefix: "10.0.0.0/24", Source: "subnet", Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER}}}}}},
	}
}

// TestRunFollowsTheControlplane drives `dataplane run` over net_null ports
// from a fake controlplane: first tables, deltas, a port change, stats and
// shutdown.
func TestRunFollowsTheControlplane(t *testing.T) {
	if !dpdk.Available() {
		t.Skip("needs DPDK: build with -tags dpdk")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (DPDK EAL)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "cp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ps := &pushServer{in: make(chan *tablesv1.DataplaneMessage, 64), out: make(chan *tablesv1.ControlplaneMessage, 8)}
	srv := grpc.NewServer()
	tablesv1.RegisterTablePushServer(srv, ps)
	go srv.Serve(ln)
	defer srv.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	id := fmt.Sprint(os.Getpid())
	go func() {
		var out bytes.Buffer
		done <- runRun(ctx, []string{"--controlplane", "unix://" + sock, "--id", "t",
			"--eal", "--no-huge -m 256 --no-pci --no-shconf --no-telemetry -l 0 --file-prefix=pgrun" + id}, &out, &stderr)
	}()

	send := func(m *tablesv1.ControlplaneMessage) { ps.out <- m }
	full := func(tb *tablesv1.Tables) *tablesv1.ControlplaneMessage {
		return &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Tables{Tables: tb}}
	}
	delta := func(d *tablesv1.TableDelta) *tablesv1.ControlplaneMessage {
		return &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Delta{Delta: d}}
	}
	changed := nullTables(7, id)
	changed.Ports[1].Mtu = 9000
	drop := func(base uint64) *tablesv1.ControlplaneMessage {
		return delta(&tablesv1.TableDelta{BaseGeneration: base, Generation: base + 1, Vpcs: []*tablesv1.VpcRouteDelta{{
			UpsertRoutes: []*tablesv1.Route{{Prefix: "10.9.0.0/16", Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DROP}}}}}}})
	}

	for _, step := range []struct {
		name    string
		msg     *tablesv1.ControlplaneMessage
		gen     uint64
		wantErr string
	}{
		{"tables without ports wait for a Gateway", full(&tablesv1.Tables{Generation: 1, Vpcs: nullTables(1, id).Vpcs}), 1, ""},
		// Not refused: a refusal would have the controlplane send complete
		// tables at every BGP update.
		{"a delta without ports moves the generation on", drop(1), 2, ""},
		{"the first tables with ports start them", full(nullTables(3, id)), 3, ""},
		{"a delta over the running generation is applied", drop(3), 4, ""},
		{"a delta over another generation is refused", delta(&tablesv1.TableDelta{BaseGeneration: 3, Generation: 5}), 5, "generation 4 is running"},
		{"new tables with the same ports are applied", full(nullTables(6, id)), 6, ""},
		{"tables that change a port are refused", full(changed), 7, "ports changed"},
		{"tables that fail to build are refused", full(&tablesv1.Tables{Generation: 8, Ports: nullTables(8, id).Ports, Gateway: &tablesv1.Gateway{VtepIp: "not-an-ip"}}), 8, "vtep"},
	} {
		send(step.msg)
		a := ps.nextAck(t, nil)
		if a.GetGeneration() != step.gen || (step.wantErr == "") != (a.GetError() == "") || !strings.Contains(a.GetError(), step.wantErr) {
			t.Errorf("%s: ack %v, want generation %d, error %q", step.name, a, step.gen, step.wantErr)
		}
	}

	var stats *tablesv1.Stats
	deadline := time.After(5 * time.Second)
	for stats == nil {
		select {
		case m := <-ps.in:
			stats = m.GetStats()
		case <-deadline:
			t.Fatal("no stats within 5s")
		}
	}
	if stats.GetGeneration() != 6 || len(stats.GetPorts()) != 2 || stats.GetPorts()[0].GetName() != "a" {
		t.Errorf("stats: generation %d, ports %v; want generation 6 and ports a, b", stats.GetGeneration(), stats.GetPorts())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop within 15s of its context")
	}
	if strings.Contains(stderr.String(), "mbufs still in use") {
		t.Errorf("mbufs leaked:\n%s", stderr.String())
	}
	if t.Failed() {
		t.Logf("dataplane log:\n%s", stderr.String())
	}
}

// startBinary runs the dataplane binary bin with args until the test ends:
// SIGTERM then, SIGKILL after 15 s, and its log shown when the test failed.
func startBinary(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	var stderr syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("dataplane log:\n%s", stderr.String())
		}
	})
	return cmd
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
