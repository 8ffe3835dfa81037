package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/internal/privdrop"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestKeptCaps(t *testing.T) {
	sysNice := privdrop.Of(unix.CAP_SYS_NICE)
	for _, c := range []struct {
		name    string
		flag    string
		noIOMMU bool
		want    privdrop.Set
		all     bool
		err     bool
	}{
		{"the default is what DPDK needs", "", false, dpdkCaps, false, false},
		{"vfio in no-IOMMU mode adds what physical addresses need", "", true, dpdkCaps | noIOMMUCaps, false, false},
		{"a list replaces the default", "net_raw", false, privdrop.Of(unix.CAP_NET_RAW), false, false},
		{"a +list adds to the default", "+sys_nice", false, dpdkCaps | sysNice, false, false},
		{"all keeps everything", "all", false, 0, true, false},
		{"an unknown capability is refused", "net_raw,root", false, 0, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, all, err := keptCaps(c.flag, c.noIOMMU)
			if (err != nil) != c.err || got != c.want || all != c.all {
				t.Errorf("keptCaps(%q, %v) = %s, %v, %v; want %s, %v, error %v", c.flag, c.noIOMMU, got, all, err, c.want, c.all, c.err)
			}
		})
	}
}

// buildDataplane builds this command with DPDK into a temporary directory:
// the capability drop re-executes the program, which only the real binary
// may do.
func buildDataplane(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	bin := filepath.Join(t.TempDir(), "dataplane")
	if out, err := exec.Command(gobin, "build", "-tags", "dpdk", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// threadCaps reads the capability lines of every thread of pid.
func threadCaps(t *testing.T, pid int) map[string]map[string]privdrop.Set {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	out := map[string]map[string]privdrop.Set{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		caps := map[string]privdrop.Set{}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			if strings.HasPrefix(k, "Cap") {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", f, sc.Text(), err)
				}
				caps[k] = privdrop.Set(n)
			}
			if k == "NoNewPrivs" && strings.TrimSpace(v) == "1" {
				caps[k] = 1
			}
		}
		out[f] = caps
	}
	return out
}

// TestRunDropsTheCapabilitiesDPDKDoesNotNeed starts the real dataplane
// binary as root over net_null ports, waits until it forwards with the
// first tables (EAL, its threads and the workers all up) and reads every
// thread's capabilities.
func TestRunDropsTheCapabilitiesDPDKDoesNotNeed(t *testing.T) {
	if !dpdk.Available() {
		t.Skip("needs DPDK: build with -tags dpdk")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (DPDK EAL, and capabilities to drop)")
	}
	own, err := privdrop.Current()
	if err != nil {
		t.Fatal(err)
	}
	unneeded := privdrop.Of(unix.CAP_SYS_MODULE, unix.CAP_SYS_PTRACE, unix.CAP_DAC_OVERRIDE, unix.CAP_SETUID, unix.CAP_SYS_ADMIN, unix.CAP_SYS_RAWIO)
	if vfioNoIOMMU() {
		unneeded &^= noIOMMUCaps
	}
	if own.Effective&unneeded == 0 {
		t.Skip("this test runs without the capabilities the dataplane drops")
	}
	bin := buildDataplane(t)

	for _, c := range []struct {
		name     string
		keepCaps string
		want     privdrop.Set // exactly, within what the test holds
	}{
		{"by default only what DPDK needs is kept, on every thread", "", dpdkCaps},
		{"--keep-caps all keeps everything", "all", own.Effective},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want & own.Effective
			if c.keepCaps == "" && vfioNoIOMMU() {
				want |= noIOMMUCaps & own.Effective
			}
			dir, err := os.MkdirTemp("", "h3caps")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			sock := filepath.Join(dir, "cp.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			ps := &pushServer{in: make(chan *tablesv1.DataplaneMessage, 64), out: make(chan *tablesv1.ControlplaneMessage, 8)}
			srv := grpc.NewServer()
			tablesv1.RegisterTablePushServer(srv, ps)
			go srv.Serve(ln)
			t.Cleanup(srv.Stop)

			id := fmt.Sprintf("h3caps%d", os.Getpid())
			args := []string{"run", "--controlplane", "unix://" + sock, "--id", "caps",
				"--eal", "--no-huge -m 256 --no-pci --no-shconf --no-telemetry -l 0 --file-prefix=" + id}
			if c.keepCaps != "" {
				args = append(args, "--keep-caps", c.keepCaps)
			}
			cmd := startBinary(t, bin, args...)

			ps.out <- &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Tables{Tables: nullTables(1, id)}}
			if a := ps.nextAck(t, nil); a.GetError() != "" {
				t.Fatalf("first tables refused: %s", a.GetError())
			}
			threads := threadCaps(t, cmd.Process.Pid)
			if len(threads) < 2 {
				t.Errorf("%d threads: expected EAL's and Go's", len(threads))
			}
			for f, caps := range threads {
				for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
					if k == "CapBnd" && c.keepCaps == "all" {
						continue
					}
					if caps[k] != want {
						t.Errorf("%s: %s = %s, want %s", f, k, caps[k], want)
					}
				}
				if c.keepCaps == "" {
					if caps["CapAmb"] != 0 {
						t.Errorf("%s: ambient %s, want none", f, caps["CapAmb"])
					}
					if caps["NoNewPrivs"] != 1 {
						t.Errorf("%s: no_new_privs is not set", f)
					}
					if left := caps["CapBnd"] & unneeded; left != 0 {
						t.Errorf("%s: still holds %s", f, left)
					}
				}
			}
		})
	}
}

// unitCaps reads a systemd unit's AmbientCapabilities= and
// CapabilityBoundingSet= lines.
func unitCaps(t *testing.T, path string) (ambient, bounding privdrop.Set) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || (k != "AmbientCapabilities" && k != "CapabilityBoundingSet") {
			continue
		}
		s, err := privdrop.Parse(strings.Join(strings.Fields(v), ","))
		if err != nil {
			t.Fatalf("%s: %s: %v", path, line, err)
		}
		if k == "AmbientCapabilities" {
			ambient |= s
		} else {
			bounding |= s
		}
	}
	return ambient, bounding
}

func TestTheUnitsGrantWhatTheDataplaneKeeps(t *testing.T) {
	for _, c := range []struct {
		name, path string
		want       privdrop.Set
	}{
		{"the unit grants the default set", "peergate-dataplane.service", dpdkCaps},
		{"the no-IOMMU drop-in adds what no-IOMMU mode keeps", "peergate-dataplane.service.d/vfio-noiommu.conf", noIOMMUCaps},
	} {
		t.Run(c.name, func(t *testing.T) {
			amb, bnd := unitCaps(t, filepath.Join(repoRoot, "deploy/systemd", c.path))
			if amb != c.want || bnd != c.want {
				t.Errorf("AmbientCapabilities %s, CapabilityBoundingSet %s; the dataplane keeps %s", amb, bnd, c.want)
			}
		})
	}
}
