// Package testenv runs peergate's real binaries for tests: it builds them
// once per test binary (or takes them from $PEERGATE_BIN), starts and
// kills daemons with their logs captured, runs gwctl and dials the
// controlplane's API. It is for tests only; no daemon imports it.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

// built holds the binaries this test binary built; a test binary is one
// process, so building once for all its tests is the point of the cache.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// cleanupDirs are the build directories Main removes.
var cleanupDirs []string

// Main runs the tests of m and removes the binaries built for them. Call
// it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	for _, d := range cleanupDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// ModuleRoot is the directory of peergate's go.mod.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binaries returns a directory holding the controlplane, dataplane and
// gwctl binaries named in names: $PEERGATE_BIN when it has them all, else
// a build of ./cmd/... made once per test binary. The test is skipped when
// they can be neither found nor built.
func Binaries(t testing.TB, names ...string) string {
	t.Helper()
	if d := os.Getenv("PEERGATE_BIN"); d != "" && haveAll(d, names) {
		return d
	}
	built.once.Do(func() {
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gotool); err != nil {
			built.err = fmt.Errorf("go tool not found at %s: %w", gotool, err)
			return
		}
		built.dir, built.err = os.MkdirTemp("", "pg-testenv-bin-")
		if built.err != nil {
			return
		}
		// controlplane and gwctl need no cgo; dataplane is built with the
		// DPDK tag only when asked for (it needs libdpdk-dev).
		cmd := exec.Command(gotool, "build", "-o", built.dir+"/", "./cmd/controlplane", "./cmd/gwctl")
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/controlplane ./cmd/gwctl: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Skipf("cannot build the binaries: %v", built.err)
	}
	if !haveAll(built.dir, names) {
		t.Skipf("binaries %v not available (set PEERGATE_BIN to a directory holding them)", names)
	}
	return built.dir
}

func haveAll(dir string, names []string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

// ShortTempDir returns a temporary directory removed at the end of the
// test, short enough for unix socket paths (108 bytes), which
// t.TempDir() can exceed.
func ShortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// SyncBuffer is a bytes.Buffer safe for a process writing and a test
// reading at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Process is one daemon started by a test.
type Process struct {
	Cmd  *exec.Cmd
	Log  *SyncBuffer // stdout and stderr
	done chan struct{}
	err  error
}

// StartProcess starts bin with args, its output captured in Log. The
// process is killed at the end of the test if it still runs.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	return StartProcessEnv(t, nil, bin, args...)
}

// StartProcessEnv is StartProcess with env ("KEY=value") added to the
// test's environment.
func StartProcessEnv(t testing.TB, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(bin, args...), Log: &SyncBuffer{}, done: make(chan struct{})}
	if len(env) > 0 {
		p.Cmd.Env = append(os.Environ(), env...)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	if ok, _ := p.Exited(); ok {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to grace for the exit, then kills; it
// returns the exit error (nil for a clean exit).
func (p *Process) Stop(grace time.Duration) error {
	if ok, err := p.Exited(); ok {
		return err
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("no exit within %s of SIGTERM: killed", grace)
	}
}

// Result is the outcome of one gwctl run.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Gwctl runs bin/gwctl against server with args, bounded by timeout.
func Gwctl(bin, server string, timeout time.Duration, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	all := append([]string{"--server", server, "--timeout", timeout.String()}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "gwctl"), all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{code, out.String(), errb.String()}
}

// String summarises a result for a failure message.
func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, strings.TrimSpace(r.Stdout), strings.TrimSpace(r.Stderr))
}

// Dial returns a client of the controlplane's Gateway API at addr
// (unix:///path or host:port), closed at the end of the test.
func Dial(t testing.TB, addr string) apiv1.GatewayClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiv1.NewGatewayClient(conn)
}

// Eventually polls cond every interval until it holds or limit passes; it
// is a hang guard, not a speed assertion. cond's string is shown on
// failure.
func Eventually(t testing.TB, limit, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s; last seen:\n%s", limit, what, state)
		}
		time.Sleep(interval)
	}
}
