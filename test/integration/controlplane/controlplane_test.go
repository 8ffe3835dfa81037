// Package controlplane_test runs the real controlplane and gwctl binaries:
// apply through gwctl, restart the controlplane and find the same
// configuration and generation, reject an invalid apply while the previous
// generation stays live, and serve a dataplane's table push link across a
// controlplane restart.
package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peergate/peergate/dataplane/agent"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// wait bounds the polls of this test; it guards against hangs.
const wait = 15 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// binaries builds bin/controlplane and bin/gwctl once per test binary run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
			if _, serr := os.Stat(goBin); serr != nil {
				buildErr = fmt.Errorf("go tool not found: %w", err)
				return
			}
		}
		binDir, err = os.MkdirTemp("", "peergate-bin")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command(goBin, "build", "-o", binDir+"/", "./cmd/controlplane", "./cmd/gwctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Skipf("cannot build the binaries: %v", buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// controlplane is one running controlplane process.
type controlplane struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error
}

type env struct {
	t        *testing.T
	bin      string
	sock     string
	stateDir string
	cp       *controlplane
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bin := binaries(t)
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "pgcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, bin: bin, sock: filepath.Join(dir, "cp.sock"), stateDir: filepath.Join(dir, "state")}
	t.Cleanup(e.stop)
	return e
}

func (e *env) addr() string { return "unix://" + e.sock }

func (e *env) start(extra ...string) {
	e.t.Helper()
	args := append([]string{"--listen", e.addr(), "--state-dir", e.stateDir, "--log-level", "debug"}, extra...)
	cmd := exec.Command(filepath.Join(e.bin, "controlplane"), args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start controlplane: %v", err)
	}
	cp := &controlplane{cmd: cmd, log: &log, done: make(chan error, 1)}
	go func() { cp.done <- cmd.Wait() }()
	e.cp = cp
	for end := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		if r := e.gwctlQuiet("get", "status"); r.code == 0 {
			return
		}
		select {
		case err := <-cp.done:
			e.cp = nil
			e.t.Fatalf("controlplane exited at start: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(end) {
			e.t.Fatalf("controlplane not serving within %s\n%s", wait, log.String())
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (e *env) stop() {
	if e.cp == nil {
		return
	}
	cp := e.cp
	e.cp = nil
	_ = cp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-cp.done:
		if err != nil {
			e.t.Errorf("controlplane exited with %v after SIGTERM\n%s", err, cp.log.String())
		}
	case <-time.After(wait):
		_ = cp.cmd.Process.Kill()
		<-cp.done
		e.t.Errorf("controlplane did not stop on SIGTERM within %s\n%s", wait, cp.log.String())
	}
	if e.t.Failed() {
		e.t.Logf("controlplane log:\n%s", cp.log.String())
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *env) gwctlQuiet(args ...string) result {
	cmd := exec.Command(filepath.Join(e.bin, "gwctl"), append([]string{"--server", e.addr(), "--timeout", "10s"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return result{code, out.String(), errb.String()}
}

func (e *env) gwctl(wantCode int, args ...string) result {
	e.t.Helper()
	r := e.gwctlQuiet(args...)
	if r.code != wantCode {
		e.t.Fatalf("gwctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, wantCode, r.stdout, r.stderr)
	}
	return r
}

type status struct {
	Generation      string `json:"generation"`
	AppliesRejected string `json:"appliesRejected"`
	Dataplanes      []struct {
		ID         string `json:"id"`
		Connected  bool   `json:"connected"`
		Generation string `json:"generation"`
	} `json:"dataplanes"`
}

func (e *env) status() status {
	e.t.Helper()
	r := e.gwctl(0, "get", "status", "-o", "json")
	var s status
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	return s
}

// seedManifests returns the Kube-OVN example with its peergate attachments.
func seedManifests(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "manifests", "kube-ovn-vpc-peering")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("seed manifests missing: %v", err)
	}
	return dir
}

const invalidSubnet = `kind: Subnet
apiVersion: kubeovn.io/v1
metadata:
  name: net3
spec:
  vpc: vpc-9
  cidrBlock: 10.300.0.0/16
`

func TestApplyRestartAndRejectThroughTheRealBinaries(t *testing.T) {
	e := newEnv(t)
	seeds := seedManifests(t)
	e.start()

	r := e.gwctl(0, "apply", "-f", seeds)
	if !strings.Contains(r.stdout, "generation 1") {
		t.Fatalf("apply output lacks the generation:\n%s", r.stdout)
	}
	before := e.gwctl(0, "get", "objects", "-o", "yaml").stdout
	routes := e.gwctl(0, "get", "routes", "vpc-1").stdout
	for _, want := range []string{"172.31.0.0/16", "forward to vpc-2", "10.0.0.0/16"} {
		if !strings.Contains(routes, want) {
			t.Errorf("get routes vpc-1 lacks %q:\n%s", want, routes)
		}
	}

	t.Run("a restarted controlplane has the same configuration and generation", func(t *testing.T) {
		e.stop()
		e.start()
		if g := e.status().Generation; g != "1" {
			t.Errorf("generation after restart = %q, want 1", g)
		}
		if after := e.gwctl(0, "get", "objects", "-o", "yaml").stdout; after != before {
			t.Errorf("objects after restart differ:\n%s\nwant:\n%s", after, before)
		}
		if got := e.gwctl(0, "get", "routes", "vpc-1").stdout; got != routes {
			t.Errorf("routes after restart differ:\n%s\nwant:\n%s", got, routes)
		}
	})

	t.Run("a rejected apply leaves the previous generation live", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(bad, []byte(invalidSubnet), 0o600); err != nil {
			t.Fatal(err)
		}
		r := e.gwctl(1, "apply", "-f", bad)
		for _, want := range []string{"bad.yaml:doc 0", "Subnet/net3", "error: ", "generation 1 stays live"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("rejection stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		s := e.status()
		if s.Generation != "1" || s.AppliesRejected != "1" {
			t.Errorf("status after rejection = generation %s, rejected %s; want 1, 1", s.Generation, s.AppliesRejected)
		}
		if after := e.gwctl(0, "get", "objects", "-o", "yaml").stdout; after != before {
			t.Errorf("objects changed by a rejected apply:\n%s", after)
		}
	})

	t.Run("a rejected apply does not survive a restart either", func(t *testing.T) {
		e.stop()
		e.start()
		if g := e.status().Generation; g != "1" {
			t.Errorf("generation after restart = %q, want 1", g)
		}
	})

	t.Run("an accepted change gets the next generation and persists", func(t *testing.T) {
		e.gwctl(0, "delete", "-f", filepath.Join(seeds, "kube-ovn-vpc-peering-3-pods.yaml"))
		e.stop()
		e.start()
		if g := e.status().Generation; g != "2" {
			t.Errorf("generation after delete and restart = %q, want 2", g)
		}
		if out := e.gwctl(0, "get", "objects").stdout; strings.Contains(out, "vpc-1-pod") {
			t.Errorf("deleted pod back after restart:\n%s", out)
		}
	})
}

func TestInvalidConfigFlagStopsTheStart(t *testing.T) {
	e := newEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(invalidSubnet), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(e.bin, "controlplane"), "--listen", e.addr(), "--state-dir", e.stateDir, "--config", bad)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "Subnet/net3") {
		t.Fatalf("controlplane --config bad.yaml = %v\n%s\nwant exit 1 naming Subnet/net3", err, out)
	}
}

func TestConfigFlagAppliesAtStartOnlyOnce(t *testing.T) {
	e := newEnv(t)
	seeds := seedManifests(t)
	e.start("--config", seeds)
	if g := e.status().Generation; g != "1" {
		t.Fatalf("generation after --config = %q, want 1", g)
	}
	e.stop()
	e.start("--config", seeds)
	if g := e.status().Generation; g != "1" {
		t.Errorf("generation after a restart with the same --config = %q, want 1 (nothing changed)", g)
	}
}

// fakeDataplane records what the agent hands it.
type fakeDataplane struct {
	mu      sync.Mutex
	applied []uint64
	last    *tablesv1.Tables
}

func (d *fakeDataplane) apply(t *tablesv1.Tables) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = append(d.applied, t.GetGeneration())
	d.last = t
	return nil
}

func (d *fakeDataplane) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.applied)
}

func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for end := start.Add(wait); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return time.Since(start)
		}
	}
	t.Fatalf("%s: not within %s", what, wait)
	return 0
}

func TestADataplaneFollowsTheControlplaneAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	seeds := seedManifests(t)
	e.start()
	e.gwctl(0, "apply", "-f", seeds)

	dp := &fakeDataplane{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{
			Address:     e.addr(),
			DataplaneID: "dp-it",
			Apply:       dp.apply,
			Stats: func() *tablesv1.Stats {
				return &tablesv1.Stats{Ports: []*tablesv1.PortStats{{Name: "fabric", RxPackets: 42}}}
			},
			StatsInterval: 50 * time.Millisecond,
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	runs := func(gen string) func() bool {
		return func() bool {
			for _, d := range e.status().Dataplanes {
				if d.ID == "dp-it" && d.Connected && d.Generation == gen {
					return true
				}
			}
			return false
		}
	}
	eventually(t, "gwctl get status shows dp-it running generation 1", runs("1"))
	if out := e.gwctl(0, "get", "status").stdout; !strings.Contains(out, "all in sync with generation 1") || !strings.Contains(out, "dp-it") {
		t.Errorf("get status does not show dp-it in sync:\n%s", out)
	}
	if dp.last.GetGeneration() != 1 || len(dp.last.GetVpcs()) != 2 {
		t.Errorf("dataplane got generation %d with %d VPCs, want 1 with 2", dp.last.GetGeneration(), len(dp.last.GetVpcs()))
	}
	eventually(t, "gwctl stats shows the pushed counters", func() bool {
		var st struct {
			Dataplanes []struct {
				ID    string `json:"id"`
				Stats struct {
					Ports []struct {
						Name      string `json:"name"`
						RxPackets string `json:"rxPackets"`
					} `json:"ports"`
				} `json:"stats"`
			} `json:"dataplanes"`
		}
		if err := json.Unmarshal([]byte(e.gwctl(0, "stats", "-o", "json").stdout), &st); err != nil {
			t.Fatalf("stats JSON: %v", err)
		}
		for _, d := range st.Dataplanes {
			if d.ID == "dp-it" && len(d.Stats.Ports) == 1 && d.Stats.Ports[0].RxPackets == "42" {
				return true
			}
		}
		return false
	})

	t.Run("a new generation reaches the dataplane", func(t *testing.T) {
		e.gwctl(0, "delete", "-f", filepath.Join(seeds, "kube-ovn-vpc-peering-3-pods.yaml"))
		eventually(t, "dp-it runs generation 2", runs("2"))
	})

	// The controlplane stays down long enough for the agent's backoff to
	// reach its cap; the 2 s count from the new process's start.
	t.Run("a restarted controlplane is reconnected within 2 s", func(t *testing.T) {
		n := dp.count()
		e.stop()
		time.Sleep(3 * time.Second)
		start := time.Now()
		e.start()
		eventually(t, "dataplane got the tables again", func() bool { return dp.count() > n })
		took := time.Since(start)
		t.Logf("dataplane received the tables %s after the controlplane was started", took)
		if took > 2*time.Second {
			t.Errorf("reconnect took %s, want at most 2 s", took)
		}
		eventually(t, "status shows dp-it on generation 2 again", runs("2"))
	})
}
