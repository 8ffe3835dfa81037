package runtime

import (
	"fmt"
	"os"
	"testing"

	"github.com/peergate/peergate/dataplane/dpdk"
)

// One EAL per test process: TestMain starts it, the runtimes of the tests
// use it (and so do not clean it up), TestMain cleans it up.
var skipReason string

func TestMain(m *testing.M) {
	switch {
	case !dpdk.Available():
		skipReason = "built without DPDK: run the tests with -tags dpdk (needs libdpdk-dev and pkg-config)"
	default:
		args := append(dpdk.NoHugeArgs(fmt.Sprintf("pgrt%d", os.Getpid()), 512), "-l", "0", "--log-level=lib.eal:error")
		if err := dpdk.Init(args); err != nil {
			if os.Geteuid() == 0 {
				fmt.Fprintf(os.Stderr, "runtime: EAL init as root failed: %v\n", err)
				os.Exit(1)
			}
			skipReason = fmt.Sprintf("DPDK EAL does not start without root here: %v", err)
		}
	}
	code := m.Run()
	if skipReason == "" {
		if err := dpdk.Cleanup(); err != nil {
			fmt.Fprintf(os.Stderr, "runtime: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func needEAL(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	needEAL(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and tap interfaces")
	}
}
