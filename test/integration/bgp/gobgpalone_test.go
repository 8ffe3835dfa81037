package bgp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// The full-table test measures the controlplane's memory per route with
// gobgp's RIB inside it. To tell the two apart it runs gobgp alone, in a
// child process (this test binary started again with gobgpAloneEnv set),
// configured as controlplane/bgp configures it: the same session to the
// same BIRD, the global import policy that keeps learned paths out of the
// global RIB, no watcher. What that process grows by is gobgp's own cost
// of the table (its adj-rib-in); the rest of the controlplane's growth is
// peergate's (the speaker's store, the compiler, the tables).

const gobgpAloneEnv = "PEERGATE_TEST_GOBGP_ALONE" // "neighbor port peerASN localASN"

// runGobgpAlone is the child's main: it prints "up" once gobgp runs, then
// the number of prefixes received whenever it changes, until SIGTERM. On
// SIGUSR1 it collects garbage and prints "heap N", its live heap in bytes
// (the same measure as the controlplane's liveHeap).
func runGobgpAlone(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 4 {
		fmt.Fprintf(os.Stderr, "%s: want \"neighbor port peerASN localASN\", got %q\n", gobgpAloneEnv, spec)
		return 2
	}
	port, _ := strconv.ParseUint(f[1], 10, 16)
	peerASN, _ := strconv.ParseUint(f[2], 10, 32)
	localASN, _ := strconv.ParseUint(f[3], 10, 32)
	ctx := context.Background()
	srv := server.NewBgpServer(server.LoggerOption(quietLogger{}))
	go srv.Serve()
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "gobgp alone: %s: %v\n", what, err)
		return 1
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: uint32(localASN), RouterId: "192.0.2.1", ListenPort: -1}}); err != nil {
		return fail("start", err)
	}
	// controlplane/bgp's import policy: only local paths enter the
	// global RIB.
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: "pg-import", Statements: []*api.Statement{{
		Name:       "pg-import-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
	}}}}); err != nil {
		return fail("add import policy", err)
	}
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_IMPORT, Policies: []*api.Policy{{Name: "pg-import"}},
		DefaultAction: api.RouteAction_REJECT,
	}}); err != nil {
		return fail("set import policy", err)
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: f[0], PeerAsn: uint32(peerASN)},
		Transport: &api.Transport{RemotePort: uint32(port)},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 90, KeepaliveInterval: 30, IdleHoldTimeAfterReset: 1}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyV4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyV6, Enabled: true}},
		},
	}}); err != nil {
		return fail("add peer", err)
	}
	// Before "up": the parent may ask for the heap as soon as it reads it.
	term, usr := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	signal.Notify(usr, syscall.SIGUSR1)
	fmt.Println("up")
	// ListPeer walks the adj-rib-in to count it: poll sparingly.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := uint64(0)
	for {
		select {
		case <-term:
			return 0
		case <-usr:
			runtime.GC() // twice, as the controlplane's liveHeap does
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Println("heap", ms.HeapAlloc)
			continue
		case <-tick.C:
		}
		var n uint64
		_ = srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			for _, af := range p.GetAfiSafis() {
				n += af.GetState().GetReceived()
			}
		})
		if n != last {
			last = n
			fmt.Println(n)
		}
	}
}

// gobgpAlone is the parent's side: a running child and its output.
type gobgpAlone struct {
	cmd   *exec.Cmd
	lines chan string
}

func startGobgpAlone(t *testing.T, neighbor string, port uint16, peerASN, localASN uint32) *gobgpAlone {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %d", gobgpAloneEnv, neighbor, port, peerASN, localASN))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gobgp alone: %v", err)
	}
	g := &gobgpAlone{cmd: cmd, lines: make(chan string, 1024)}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		defer close(g.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			g.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	return g
}

// liveHeap asks the child for its live heap (SIGUSR1) and returns it.
func (g *gobgpAlone) liveHeap(t *testing.T) uint64 {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("gobgp alone: ask for the heap: %v", err)
	}
	var heap uint64
	g.waitFor(t, "its heap", waitLimit, func(l string) bool {
		v, ok := strings.CutPrefix(l, "heap ")
		if !ok {
			return false
		}
		var err error
		heap, err = strconv.ParseUint(v, 10, 64)
		return err == nil
	})
	return heap
}

// waitFor reads the child's output until a line satisfies ok.
func (g *gobgpAlone) waitFor(t *testing.T, what string, limit time.Duration, ok func(string) bool) {
	t.Helper()
	timeout := time.After(limit)
	last := ""
	for {
		select {
		case l, more := <-g.lines:
			if !more {
				t.Fatalf("gobgp alone exited while waiting for %s (last output %q)", what, last)
			}
			last = l
			if ok(l) {
				return
			}
		case <-timeout:
			t.Fatalf("gobgp alone: no %s within %v (last output %q)", what, limit, last)
		}
	}
}
