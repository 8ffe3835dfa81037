package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peergate/peergate/dataplane/dpdk"
)

// gateway is the seed topology of the Kube-OVN document with real hosts:
//
//	ns h1 (vpc-1 host): vx100 10.0.0.2/16 (VXLAN VNI 100 to VTEP 192.0.2.1), u0 192.0.2.10/24
//	ns gw: dataplane on gw0 (port "fabric") and gw1 (port "vpc2", untagged)
//	ns h2 (vpc-2 host): e0 172.31.0.2/16
//
// gw0/gw1 are the names testdata/manifests/kube-ovn-vpc-peering/peergate.yaml
// gives; they live in the gateway's own namespace, so runs never collide.
type gateway struct {
	t          *testing.T
	bin        string
	dir        string
	sock       string
	gw, h1, h2 string
	cp, dp     *proc
	dpStarts   int
	// cpMetricsAddr is where the running controlplane serves /metrics
	// (127.0.0.1:0 at start: read from its log).
	cpMetricsAddr string
	// cpArgs are the test's extra controlplane flags, kept across restarts.
	cpArgs []string
}

var runSeq atomic.Int32

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// requireEnv skips unless the test can build real topologies.
func requireEnv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root (network namespaces, DPDK)")
	}
	if !dpdk.Available() {
		t.Skip("end-to-end test: needs DPDK: build with -tags dpdk and libdpdk-dev installed (make test does)")
	}
	for _, tool := range []string{"ip", "ping", "ethtool", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("end-to-end test: %s not installed (make deps installs it)", tool)
		}
	}
}

// binaries returns $PEERGATE_BIN or builds the three commands once per test
// binary into a temporary directory.
func binaries(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PEERGATE_BIN"); d != "" {
		for _, b := range []string{"controlplane", "dataplane", "gwctl"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				t.Fatalf("PEERGATE_BIN=%s: %v", d, err)
			}
		}
		return d
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "peergate-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtDir = dir
		gobin := filepath.Join(goruntime.GOROOT(), "bin", "go")
		if p, err := exec.LookPath("go"); err == nil {
			gobin = p
		}
		cmd := exec.Command(gobin, "build", "-tags", "dpdk", "-o", dir+"/", "./cmd/controlplane", "./cmd/dataplane", "./cmd/gwctl")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

// setup builds the topology and starts controlplane and dataplane with the
// seed manifests applied, cpArgs added to the controlplane's flags.
// Everything is removed in t.Cleanup.
func setup(t *testing.T, cpArgs ...string) *gateway {
	t.Helper()
	requireEnv(t)
	g := &gateway{t: t, bin: binaries(t), dir: t.TempDir(), cpArgs: cpArgs}
	id := fmt.Sprintf("%d-%d", os.Getpid(), runSeq.Add(1))
	g.gw, g.h1, g.h2 = "pge-gw-"+id, "pge-h1-"+id, "pge-h2-"+id
	g.sock = filepath.Join(g.dir, "cp.sock")
	t.Cleanup(g.teardown)

	for _, ns := range []string{g.gw, g.h1, g.h2} {
		g.ip("netns", "add", ns)
		g.ip("-n", ns, "link", "set", "lo", "up")
	}
	g.ip("link", "add", "gw0", "netns", g.gw, "type", "veth", "peer", "name", "u0", "netns", g.h1)
	g.ip("link", "add", "gw1", "netns", g.gw, "type", "veth", "peer", "name", "e0", "netns", g.h2)
	for _, l := range []string{"gw0", "gw1"} {
		g.ip("-n", g.gw, "link", "set", l, "up")
		g.ns(g.gw, "ethtool", "-K", l, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
	}
	g.ip("-n", g.h1, "addr", "add", "192.0.2.10/24", "dev", "u0")
	g.ip("-n", g.h1, "link", "set", "u0", "up")
	g.ip("-n", g.h1, "link", "add", "vx100", "type", "vxlan", "id", "100", "local", "192.0.2.10", "remote", "192.0.2.1", "dstport", "4789", "dev", "u0")
	g.ip("-n", g.h1, "link", "set", "vx100", "mtu", "1450", "up")
	g.ip("-n", g.h1, "addr", "add", "10.0.0.2/16", "dev", "vx100")
	// advmss 1460: the vpc-1 host advertises a full-size MSS although its
	// tunnel carries 1450 bytes, so the vpc-2 host's big segments need the
	// gateway's fragmentation-needed and path MTU discovery.
	g.ip("-n", g.h1, "route", "add", "default", "via", "10.0.0.1", "advmss", "1460")
	g.ip("-n", g.h2, "addr", "add", "172.31.0.2/16", "dev", "e0")
	g.ip("-n", g.h2, "link", "set", "e0", "up")
	g.ip("-n", g.h2, "route", "add", "default", "via", "172.31.0.1")
	for _, nd := range [][2]string{{g.h1, "u0"}, {g.h1, "vx100"}, {g.h2, "e0"}} {
		g.ns(nd[0], "ethtool", "-K", nd[1], "tso", "off", "gso", "off", "tx", "off")
	}

	g.startControlplane()
	g.startDataplane()
	g.gwctl("apply", "-f", "../../testdata/manifests/kube-ovn-vpc-peering/")
	g.waitSync(10 * time.Second)
	return g
}

func (g *gateway) teardown() {
	if g.dp != nil {
		g.dp.stop(syscall.SIGTERM)
	}
	if g.cp != nil {
		g.cp.stop(syscall.SIGTERM)
	}
	if g.t.Failed() {
		for _, f := range []string{"controlplane.log", "dataplane.log"} {
			if b, err := os.ReadFile(filepath.Join(g.dir, f)); err == nil {
				g.t.Logf("%s (last 4 KB):\n%s", f, tail(b, 4096))
			}
		}
	}
	for _, ns := range []string{g.h1, g.h2, g.gw} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (g *gateway) startControlplane() {
	logPath := filepath.Join(g.dir, "controlplane.log")
	var logOff int64
	if fi, err := os.Stat(logPath); err == nil {
		logOff = fi.Size()
	}
	g.cp = start(g.t, logPath, filepath.Join(g.bin, "controlplane"),
		append([]string{"--listen", "unix://" + g.sock, "--state-dir", filepath.Join(g.dir, "state"),
			"--metrics", "127.0.0.1:0"}, g.cpArgs...)...)
	g.cpMetricsAddr = waitMetricsAddr(g.t, logPath, logOff)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(g.sock); err == nil {
			if err := exec.Command(filepath.Join(g.bin, "gwctl"), "--server", "unix://"+g.sock, "get", "status").Run(); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("controlplane did not serve on %s within 10s", g.sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) startDataplane() {
	g.dpStarts++
	eal := fmt.Sprintf("--no-huge -m 512 --no-pci --no-shconf --no-telemetry --file-prefix=pge%d_%d", os.Getpid(), g.dpStarts)
	g.dp = start(g.t, filepath.Join(g.dir, "dataplane.log"), "ip", "netns", "exec", g.gw,
		filepath.Join(g.bin, "dataplane"), "run", "--controlplane", "unix://"+g.sock, "--eal", eal, "--id", "e2e",
		"--metrics", dpMetricsAddr)
}

// waitSync waits until every connected dataplane runs the current generation.
func (g *gateway) waitSync(limit time.Duration) time.Duration {
	g.t.Helper()
	start := time.Now()
	for {
		out, _ := exec.Command(filepath.Join(g.bin, "gwctl"), "--server", "unix://"+g.sock, "get", "status").CombinedOutput()
		if bytes.Contains(out, []byte("in sync")) {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			g.t.Fatalf("dataplane not in sync within %v:\n%s", limit, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) gwctl(args ...string) string {
	g.t.Helper()
	out, err := exec.Command(filepath.Join(g.bin, "gwctl"), append([]string{"--server", "unix://" + g.sock}, args...)...).CombinedOutput()
	if err != nil {
		g.t.Fatalf("gwctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// runGwctl runs gwctl and returns its output and error without failing the
// test (a refusal the test expects).
func runGwctl(g *gateway, args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(g.bin, "gwctl"), append([]string{"--server", "unix://" + g.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (g *gateway) ip(args ...string) {
	g.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		g.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// ns runs a command in a namespace, ignoring failure (ethtool knobs a veth
// may not have).
func (g *gateway) ns(ns string, args ...string) string {
	out, _ := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out)
}

// ping runs ping in ns and returns its output and whether it succeeded.
func (g *gateway) ping(ns string, args ...string) (string, bool) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "ping", "-n"}, args...)...).CombinedOutput()
	return string(out), err == nil
}

// inNetns runs f on a locked OS thread that joined namespace ns: sockets f
// opens stay in ns after it returns.
func inNetns(ns string, f func() error) error {
	goruntime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		goruntime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		goruntime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		goruntime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in ns: keep it locked so Go ends it with the
		// goroutine instead of reusing it.
		return fmt.Errorf("setns back: %w", err)
	}
	goruntime.UnlockOSThread()
	return ferr
}

// proc is a started process with its output in a log file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t *testing.T, logPath, name string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p
}

// stop signals the process and waits; SIGKILL after 10 s.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// probe sends one ping with a short wait and reports whether it came back.
func (g *gateway) probe(ns, dst string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "0.2", dst).Run() == nil
}
