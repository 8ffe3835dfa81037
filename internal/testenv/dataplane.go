package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var builtDP struct {
	once sync.Once
	path string
	err  error
}

// DataplaneBinary returns the dataplane binary: $PEERGATE_BIN/dataplane
// when present, else a build of ./cmd/dataplane with the dpdk tag made
// once per test binary (and removed by Main). The test is skipped when it
// cannot be built (no libdpdk-dev, no cgo toolchain).
func DataplaneBinary(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PEERGATE_BIN"); d != "" && haveAll(d, []string{"dataplane"}) {
		return filepath.Join(d, "dataplane")
	}
	builtDP.once.Do(func() {
		dir, err := os.MkdirTemp("", "pg-testenv-dp-")
		if err != nil {
			builtDP.err = err
			return
		}
		cleanupDirs = append(cleanupDirs, dir)
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(gotool, "build", "-tags", "dpdk", "-o", filepath.Join(dir, "dataplane"), "./cmd/dataplane")
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			builtDP.err = fmt.Errorf("go build -tags dpdk ./cmd/dataplane: %v\n%s", err, out)
			return
		}
		builtDP.path = filepath.Join(dir, "dataplane")
	})
	if builtDP.err != nil {
		t.Skipf("cannot build the dataplane: %v", builtDP.err)
	}
	return builtDP.path
}
