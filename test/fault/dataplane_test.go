package fault_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peergate/peergate/internal/testenv"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

// dpResume is the deadline: a dataplane killed and restarted
// forwards again within 3 s; it cannot forward before it runs the tables.
const dpResume = 3 * time.Second

// TestDataplaneSIGKILLResumesTables kills the real dataplane with SIGKILL
// (no cleanup of its EAL, sockets or DPDK runtime files), restarts it with
// the same arguments and EAL file prefix, as a service manager would, and
// checks that it runs the live generation within 3 s of the restart and
// follows the next apply. test/e2e's restart test stops the dataplane
// with SIGTERM, which cleans up first.
func TestDataplaneSIGKILLResumesTables(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the dataplane's af_packet ports live in a network namespace")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs iproute2's ip")
	}
	seeds := filepath.Join(testenv.ModuleRoot(), "testdata", "manifests", "kube-ovn-vpc-peering")
	if _, err := os.Stat(seeds); err != nil {
		t.Skipf("seed manifests missing: %v", err)
	}
	dpBin := testenv.DataplaneBinary(t)
	e := newCPEnv(t)

	// The seeds' ports are af_packet on gw0 and gw1: veths in a namespace
	// of this test's own.
	ns := fmt.Sprintf("h1f%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipTool, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ipTool, "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	for _, port := range []string{"gw0", "gw1"} {
		ip("-n", ns, "link", "add", port, "type", "veth", "peer", "name", port+"p")
		ip("-n", ns, "link", "set", port, "up")
		ip("-n", ns, "link", "set", port+"p", "up")
	}

	e.start("--config", seeds)
	const id = "h1-fault-dp"
	prefix := fmt.Sprintf("h1f%d", os.Getpid())
	eal := "--no-huge -m 512 --no-pci --no-shconf --no-telemetry --file-prefix=" + prefix
	// EAL's runtime directory outlives even a clean exit.
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/var/run/dpdk", prefix)) })
	startDP := func() *testenv.Process {
		return testenv.StartProcess(t, ipTool, "netns", "exec", ns, dpBin, "run",
			"--controlplane", e.addr(), "--eal", eal, "--id", id, "--log-level", "debug")
	}
	// inSync waits until the dataplane id acknowledged the live generation
	// on a connection opened after since.
	inSync := func(dp *testenv.Process, since time.Time, limit time.Duration) (time.Duration, string) {
		start := time.Now()
		last := ""
		for time.Since(start) < limit {
			if done, err := dp.Exited(); done {
				t.Fatalf("dataplane exited (%v):\n%s", err, tail(dp.Log.String(), 30))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := e.api.Status(ctx, &apiv1.StatusRequest{})
			cancel()
			if err != nil {
				last = err.Error()
				continue
			}
			for _, d := range st.GetDataplanes() {
				if d.GetId() != id {
					continue
				}
				last = fmt.Sprintf("connected %v at %v, generation %d of %d, error %q", d.GetConnected(), d.GetConnectedAt().AsTime(), d.GetGeneration(), st.GetGeneration(), d.GetError())
				if d.GetConnected() && d.GetConnectedAt().AsTime().After(since) && d.GetGeneration() == st.GetGeneration() && d.GetError() == "" {
					return time.Since(start), ""
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start), last
	}

	dp := startDP()
	if took, why := inSync(dp, time.Time{}, 60*time.Second); why != "" {
		t.Fatalf("the first dataplane is not in sync after %s: %s\n%s", took, why, tail(dp.Log.String(), 30))
	}
	pods := filepath.Join(seeds, "kube-ovn-vpc-peering-3-pods.yaml")
	const rounds = 3
	for round := range rounds {
		dp.Kill()
		restarted := time.Now()
		dp = startDP()
		took, why := inSync(dp, restarted, 20*time.Second)
		if why != "" {
			t.Fatalf("round %d: the restarted dataplane is not in sync after %s: %s\n%s", round, took, why, tail(dp.Log.String(), 30))
		}
		t.Logf("round %d: SIGKILL, restart with the same EAL file prefix: running the live generation %s after the restart", round, took.Round(time.Millisecond))
		if took > dpResume {
			t.Errorf("round %d: the restarted dataplane ran the live tables after %s, want within %s", round, took, dpResume)
		}
		// It follows changes too, not just the generation it started with.
		verb := "delete"
		if round%2 == 1 {
			verb = "apply"
		}
		if r := e.gwctl(verb, "-f", pods); r.Code != 0 {
			t.Fatalf("gwctl %s: %s", verb, r)
		}
		if took, why := inSync(dp, restarted, 20*time.Second); why != "" {
			t.Fatalf("round %d: the restarted dataplane did not take the next generation within %s: %s", round, took, why)
		}
	}
	if err := dp.Stop(15 * time.Second); err != nil {
		t.Errorf("dataplane stop after the kills: %v\n%s", err, tail(dp.Log.String(), 30))
	}
	e.stop()
}
