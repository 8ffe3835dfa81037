package privdrop_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/peergate/peergate/internal/privdrop"
	"golang.org/x/sys/unix"
)

func TestParseAndString(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		err            bool
	}{
		{"names with and without cap_ in any case are read", "net_raw,CAP_IPC_LOCK, cap_net_admin", "cap_net_admin,cap_net_raw,cap_ipc_lock", false},
		{"an empty list is the empty set", "", "none", false},
		{"none is the empty set", "none", "none", false},
		{"the last capability of Linux 6 is known", "checkpoint_restore", "cap_checkpoint_restore", false},
		{"an unknown name is refused", "net_raw,net_magic", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := privdrop.Parse(c.in)
			if (err != nil) != c.err {
				t.Fatalf("Parse(%q): %v, want error %v", c.in, err, c.err)
			}
			if err == nil && s.String() != c.want {
				t.Errorf("Parse(%q) = %s, want %s", c.in, s, c.want)
			}
		})
	}
}

func TestBeyondCountsTheBoundingSetForRootOnly(t *testing.T) {
	keep := privdrop.Of(unix.CAP_NET_RAW)
	st := privdrop.State{Permitted: keep, Effective: keep, Bounding: keep | privdrop.Of(unix.CAP_SYS_ADMIN)}
	if got := st.Beyond(keep, false); got != 0 {
		t.Errorf("non-root: beyond = %s, want none", got)
	}
	if got := st.Beyond(keep, true); got != privdrop.Of(unix.CAP_SYS_ADMIN) {
		t.Errorf("root: beyond = %s, want cap_sys_admin", got)
	}
}

const (
	helperEnv = "PRIVDROP_TEST_HELPER"
	marker    = "PRIVDROP_TEST_REEXECED"
)

// TestHelperProcess is the program TestReexecLeavesOnlyTheKeptSet runs: it
// drops to the set in $PRIVDROP_TEST_HELPER and, once re-executed, prints
// its /proc/self/status capability lines.
func TestHelperProcess(t *testing.T) {
	keepList, ok := os.LookupEnv(helperEnv)
	if !ok {
		t.Skip("helper of TestReexecLeavesOnlyTheKeptSet")
	}
	if privdrop.Restricted(marker) {
		if _, still := os.LookupEnv(marker); still {
			fmt.Println("marker still set")
		}
		b, _ := os.ReadFile("/proc/self/status")
		fmt.Print(string(b))
		os.Exit(0)
	}
	keep, err := privdrop.Parse(keepList)
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	err = privdrop.Reexec(keep, marker)
	fmt.Println("Reexec returned:", err)
	os.Exit(4)
}

func TestReexecLeavesOnlyTheKeptSet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: drops from the bounding set")
	}
	keep := privdrop.Of(unix.CAP_NET_RAW, unix.CAP_NET_ADMIN, unix.CAP_IPC_LOCK)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+keep.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "marker still set") {
		t.Error("the marker was left in the environment of the re-executed program")
	}
	caps := map[string]privdrop.Set{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		caps[k] = privdrop.Set(n)
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		// The test may run with fewer capabilities than the three kept.
		if got, ok := caps[k]; !ok || got&^keep != 0 || got == 0 {
			t.Errorf("%s = %s, want a subset of %s", k, got, keep)
		}
	}
	if caps["CapAmb"] != 0 || caps["CapInh"]&^keep != 0 {
		t.Errorf("ambient %s, inheritable %s: want none beyond %s", caps["CapAmb"], caps["CapInh"], keep)
	}
	if !strings.Contains(string(out), "NoNewPrivs:\t1") {
		t.Errorf("no_new_privs is not set:\n%s", out)
	}
}
