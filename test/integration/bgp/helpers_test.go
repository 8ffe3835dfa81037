package bgp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// waitLimit bounds every wait: a hang guard, not a speed assertion.
const waitLimit = 60 * time.Second

const (
	gatewayASN = 65000
	e1ASN      = 65101
	e2ASN      = 65102
)

var bins struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes the binaries built for the package's tests. Started
// with gobgpAloneEnv set, the test binary is instead the full-table test's
// gobgp-alone child (gobgpalone_test.go).
func TestMain(m *testing.M) {
	if spec := os.Getenv(gobgpAloneEnv); spec != "" {
		os.Exit(runGobgpAlone(spec))
	}
	code := m.Run()
	if bins.dir != "" && os.Getenv("PEERGATE_BIN") == "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// binaries builds cmd/controlplane and cmd/gwctl once per test run (or
// takes them from $PEERGATE_BIN, set by make test).
func binaries(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PEERGATE_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "controlplane")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "gwctl")); err == nil {
				return d
			}
		}
	}
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "pg-bgp-bin-")
		if bins.err != nil {
			return
		}
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		for _, c := range []string{"controlplane", "gwctl"} {
			cmd := exec.Command(gotool, "build", "-o", filepath.Join(bins.dir, c), "./cmd/"+c)
			cmd.Dir = moduleRoot(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build ./cmd/%s: %v\n%s", c, err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.dir
}

func freePort(t testing.TB, host string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", host, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// liveHeap returns the controlplane's live heap in bytes: HeapAlloc right
// after a collection, which /debug/pprof/heap?gc=1 runs before it reports.
// Unlike RSS it leaves out garbage and the collector's headroom (GOGC),
// so it is what the process holds. It asks twice and keeps the second:
// sync.Pool caches (gRPC's buffers: ~40 MB after a full table) survive one
// collection and are dropped at the next.
func (cp *controlplane) liveHeap() (uint64, error) {
	var body []byte
	for range 2 {
		var err error
		if body, err = cp.profile("heap?gc=1&debug=1"); err != nil {
			return 0, err
		}
	}
	return heapAlloc(string(body))
}

// saveProfile writes the controlplane's profile NAME ("heap",
// "profile?seconds=20") to file.
func (cp *controlplane) saveProfile(file, name string) error {
	body, err := cp.profile(name)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

// profile reads /debug/pprof/NAME from the controlplane's --pprof server.
func (cp *controlplane) profile(name string) ([]byte, error) {
	resp, err := http.Get("http://" + cp.pprof + "/debug/pprof/" + name)
	if err != nil {
		return nil, fmt.Errorf("read the controlplane's %s profile: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the controlplane's %s profile: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the controlplane's %s profile: %s: %s", name, resp.Status, body)
	}
	return body, nil
}

// heapAlloc finds "# HeapAlloc = N" in a debug=1 heap profile.
func heapAlloc(profile string) (uint64, error) {
	for l := range strings.Lines(profile) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "# HeapAlloc = "); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, errors.New("no HeapAlloc in the heap profile")
}

func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		if state != "" {
			last = state
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (%v) for %s; last seen:\n%s", waitLimit, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- the controlplane binary -------------------------------------------

type controlplane struct {
	t    testing.TB
	bin  string
	sock string
	dir  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	// pprof is the address of its --pprof server (loopback), where
	// liveHeap reads the heap.
	pprof string
}

// startControlplane runs the real binary with the manifests of configs
// applied at start, on a unix socket in a short temporary directory.
func startControlplane(t testing.TB, configs ...string) *controlplane {
	t.Helper()
	bin := binaries(t)
	// Unix socket paths are limited to 108 bytes; t.TempDir() can exceed it.
	dir, err := os.MkdirTemp("", "pgbgp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cp := &controlplane{t: t, bin: bin, sock: filepath.Join(dir, "cp.sock"), dir: dir, log: &bytes.Buffer{},
		pprof: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(freePort(t, "127.0.0.1"))))}
	args := []string{"--listen", "unix://" + cp.sock, "--state-dir", filepath.Join(dir, "state"),
		"--bgp-connect-retry", "1s", "--log-level", "debug", "--pprof", cp.pprof}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	cp.cmd = exec.Command(filepath.Join(bin, "controlplane"), args...)
	cp.cmd.Stdout, cp.cmd.Stderr = cp.log, cp.log
	if err := cp.cmd.Start(); err != nil {
		t.Fatalf("start controlplane: %v", err)
	}
	t.Cleanup(func() {
		_ = cp.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cp.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cp.cmd.Process.Kill()
			<-done
		}
		if t.Failed() || os.Getenv("BGP_TEST_DEBUG") != "" {
			t.Logf("controlplane log:\n%s", tail(cp.log.String(), 200))
		}
	})
	eventually(t, "the controlplane's API", func() (bool, string) {
		out, err := cp.gwctl("get", "status")
		return err == nil, out
	})
	return cp
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (cp *controlplane) gwctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cp.bin, "gwctl"), append([]string{"--server", "unix://" + cp.sock}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), fmt.Errorf("gwctl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// routes is `gwctl get routes VPC -o json`, decoded.
func (cp *controlplane) routes(vpc string) (*apiv1.GetRoutesResponse, string, error) {
	out, err := cp.gwctl("get", "routes", vpc, "-o", "json")
	if err != nil {
		return nil, out, err
	}
	var resp apiv1.GetRoutesResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
		return nil, out, fmt.Errorf("decode gwctl get routes: %w", err)
	}
	return &resp, out, nil
}

// bgp is `gwctl get bgp -o json`, decoded.
func (cp *controlplane) bgp() (*apiv1.GetBGPResponse, string, error) {
	out, err := cp.gwctl("get", "bgp", "-o", "json")
	if err != nil {
		return nil, out, err
	}
	var resp apiv1.GetBGPResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
		return nil, out, fmt.Errorf("decode gwctl get bgp: %w", err)
	}
	return &resp, out, nil
}

// hop is where a route of a VPC's first lookup sends a packet.
type hop struct {
	vpcs   []string // FORWARD destinations (several: ECMP)
	metric uint32
	found  bool // a route with exactly this prefix exists
}

func (h hop) String() string {
	if !h.found {
		return "no route"
	}
	return fmt.Sprintf("forward to %v metric %d", h.vpcs, h.metric)
}

// forwardOf finds the route of exactly prefix in the VPC's first-lookup
// table.
func forwardOf(resp *apiv1.GetRoutesResponse, vpc, prefix string) hop {
	for _, v := range resp.GetVpcs() {
		if v.GetName() != vpc {
			continue
		}
		for _, r := range v.GetRoutes() {
			if r.GetPrefix() != prefix || r.GetMatchSource() {
				continue
			}
			h := hop{found: true, metric: r.GetMetric()}
			for _, a := range r.GetActions() {
				if a.GetKind() == tablesv1.ActionKind_ACTION_FORWARD {
					h.vpcs = append(h.vpcs, resp.GetVpcNames()[a.GetDstVpc()])
				}
			}
			return h
		}
	}
	return hop{}
}

// peergateYAML is the test's own attachments for the fourth use case:
// the seed's, with both externals' BGP neighbours on loopback and without
// the seed's static default routes, so every route to the Internet is
// learned.
func peergateYAML(n1, n2 string, p1, p2 uint16) string {
	return fmt.Sprintf(`apiVersion: peergate.io/v1alpha1
kind: Gateway
metadata:
  name: gateway
spec:
  asn: %d
  routerID: 192.0.2.1
  vtepIP: 192.0.2.1
  ports:
    - {name: fabric, device: "net_af_packet0,iface=gw0", ips: [192.0.2.1/24], mtu: 1500}
    - {name: e1, device: "net_af_packet1,iface=gw1", mtu: 1500}
    - {name: e2, device: "net_af_packet2,iface=gw2", mtu: 1500}
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata:
  name: vpc-1
spec:
  subnets: [10.1.1.0/24]
  vxlan: {port: fabric, vni: 100, vteps: [192.0.2.10]}
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata:
  name: vpc-e1
spec:
  subnets: [203.0.113.0/29]
  untagged: {port: e1}
  routerIPs: [203.0.113.2]
  external: true
  bgp:
    neighbors: [{address: %s, port: %d, asn: %d}]
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata:
  name: vpc-e2
spec:
  subnets: [198.51.100.0/29]
  untagged: {port: e2}
  routerIPs: [198.51.100.2]
  external: true
  bgp:
    neighbors: [{address: %s, port: %d, asn: %d}]
`, gatewayASN, n1, p1, e1ASN, n2, p2, e2ASN)
}

// useCase4 writes the test's peergate.yaml and returns the --config paths:
// the Peering document's fourth use case, verbatim, and it.
func useCase4(t testing.TB, n1, n2 string, p1, p2 uint16) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "peergate.yaml")
	if err := os.WriteFile(f, []byte(peergateYAML(n1, n2, p1, p2)), 0o644); err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(moduleRoot(t), "testdata", "manifests", "peering-api-4-internet-by-cost", "peering-api-4-internet-by-cost.yaml")
	return []string{seed, f}
}
