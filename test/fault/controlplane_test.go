// Package fault_test injects the faults of issue 9 into the real binaries
// and checks that peergate survives them: the controlplane killed with
// SIGKILL in the middle of an apply, a state directory whose current file
// is cut short or corrupted, and a BGP neighbour that flaps a hundred
// times.
package fault_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/store"
	"github.com/peergate/peergate/internal/testenv"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startLimit bounds a controlplane's start; it guards against hangs.
const startLimit = 30 * time.Second

// cpEnv is a controlplane binary on a unix socket and a state directory
// that outlive its processes.
type cpEnv struct {
	t        *testing.T
	bin      string
	sock     string
	stateDir string
	env      []string // added to the controlplane's environment
	proc     *testenv.Process
	api      apiv1.GatewayClient
}

func newCPEnv(t *testing.T) *cpEnv {
	t.Helper()
	bin := testenv.Binaries(t, "controlplane", "gwctl")
	dir := testenv.ShortTempDir(t, "pgh1f")
	e := &cpEnv{t: t, bin: bin, sock: filepath.Join(dir, "cp.sock"), stateDir: filepath.Join(dir, "state")}
	t.Cleanup(func() {
		if e.proc != nil && t.Failed() {
			t.Logf("last controlplane log:\n%s", tail(e.proc.Log.String(), 40))
		}
	})
	return e
}

func (e *cpEnv) addr() string { return "unix://" + e.sock }

// start runs a controlplane on the state directory and waits until it
// answers Status; it fails the test if the process exits first.
func (e *cpEnv) start(extra ...string) {
	e.t.Helper()
	args := append([]string{"--listen", e.addr(), "--state-dir", e.stateDir, "--log-level", "debug"}, extra...)
	e.proc = testenv.StartProcessEnv(e.t, e.env, filepath.Join(e.bin, "controlplane"), args...)
	e.api = testenv.Dial(e.t, e.addr())
	deadline := time.Now().Add(startLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := e.api.Status(ctx, &apiv1.StatusRequest{})
		cancel()
		if err == nil {
			return
		}
		if done, werr := e.proc.Exited(); done {
			e.t.Fatalf("controlplane exited at start (%v):\n%s", werr, e.proc.Log.String())
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("controlplane not serving within %s: %v\n%s", startLimit, err, e.proc.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *cpEnv) stop() {
	e.t.Helper()
	if err := e.proc.Stop(10 * time.Second); err != nil {
		e.t.Fatalf("controlplane stop: %v\n%s", err, e.proc.Log.String())
	}
}

func (e *cpEnv) gwctl(args ...string) testenv.Result {
	return testenv.Gwctl(e.bin, e.addr(), 60*time.Second, args...)
}

// live is what a running controlplane says it runs.
type live struct {
	statusGen uint64
	listGen   uint64
	objects   []*apiv1.Object
	tables    *tablesv1.Tables
}

func (e *cpEnv) live() live {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := e.api.Status(ctx, &apiv1.StatusRequest{})
	if err != nil {
		e.t.Fatalf("Status: %v", err)
	}
	if st.GetCompileError() != "" {
		e.t.Fatalf("the live configuration does not compile: %s", st.GetCompileError())
	}
	l, err := e.api.List(ctx, &apiv1.ListRequest{})
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	tb, err := e.api.GetTables(ctx, &apiv1.GetTablesRequest{})
	if err != nil {
		e.t.Fatalf("GetTables: %v", err)
	}
	return live{statusGen: st.GetGeneration(), listGen: l.GetGeneration(), objects: l.GetObjects(), tables: tb.GetTables()}
}

// generation is one of the two configurations as the controlplane should
// serve it: its objects as listed after a clean apply, and its tables
// compiled offline from the manifest file.
type generation struct {
	name    string
	file    string
	objects []*apiv1.Object
	tables  *tablesv1.Tables
}

func offlineTables(t *testing.T, file string) *tablesv1.Tables {
	t.Helper()
	objs, err := manifest.LoadPaths(file)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	tb, _, err := compile.Compile(manifest.NewConfig(objs), nil)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return tb
}

// matches says why l is not exactly g at generation gen ("" when it is).
func (l live) matches(g *generation, gen uint64) string {
	var why []string
	if l.statusGen != gen || l.listGen != gen || l.tables.GetGeneration() != gen {
		why = append(why, fmt.Sprintf("generation: status %d, list %d, tables %d; want %d", l.statusGen, l.listGen, l.tables.GetGeneration(), gen))
	}
	if len(l.objects) != len(g.objects) {
		why = append(why, fmt.Sprintf("%d objects, want %d", len(l.objects), len(g.objects)))
	} else {
		diff := 0
		for i := range l.objects {
			if !proto.Equal(l.objects[i], g.objects[i]) {
				diff++
			}
		}
		if diff > 0 {
			why = append(why, fmt.Sprintf("%d of %d objects differ", diff, len(l.objects)))
		}
	}
	want := proto.Clone(g.tables).(*tablesv1.Tables)
	want.Generation = l.tables.GetGeneration()
	if !proto.Equal(l.tables, want) {
		why = append(why, "tables differ from the offline compilation")
	}
	return strings.Join(why, "; ")
}

// stateSnapshot is what a poll of the state directory sees: the inode of
// the current file and the names of the store's temporary files.
type stateSnapshot struct {
	current uint64
	temps   map[string]bool
}

func stateFiles(dir string) stateSnapshot {
	s := stateSnapshot{temps: map[string]bool{}}
	if fi, err := os.Stat(filepath.Join(dir, store.CurrentFile)); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s.current = st.Ino
		}
	}
	names, _ := filepath.Glob(filepath.Join(dir, ".config-*.tmp"))
	for _, n := range names {
		s.temps[n] = true
	}
	return s
}

// Steps of a save the kill test waits for.
const (
	tempWritten  = "temp file created"
	currentMoved = "current file moved to previous"
	newCurrent   = "new current file in place"
)

// changed says whether s shows the step trigger since before.
func (s stateSnapshot) changed(before stateSnapshot, trigger string) bool {
	switch trigger {
	case currentMoved:
		return s.current == 0
	case newCurrent:
		return s.current != 0 && s.current != before.current
	}
	for n := range s.temps {
		if !before.temps[n] {
			return true
		}
	}
	return false
}

// waitForState polls cond until it holds (true) or the apply ends
// (false, the apply's result put back in applied).
func waitForState(applied chan error, cond func() bool) bool {
	for !cond() {
		select {
		case err := <-applied:
			applied <- err
			return false
		default:
		}
		time.Sleep(200 * time.Microsecond)
	}
	return true
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// twoGenerations writes the two big configurations of n VPCs.
func twoGenerations(t *testing.T, n int) [2]*generation {
	t.Helper()
	dir := t.TempDir()
	var gs [2]*generation
	for v := range gs {
		f := filepath.Join(dir, fmt.Sprintf("config-%c.yaml", 'a'+v))
		if err := os.WriteFile(f, []byte(bigConfig(v, n)), 0o600); err != nil {
			t.Fatal(err)
		}
		gs[v] = &generation{name: string(rune('A' + v)), file: f, tables: offlineTables(t, f)}
	}
	return gs
}

// killVPCs sizes the configurations so that one apply (validate, compile,
// persist ~0.5 MB with fsync, publish) takes about a second on a freshly
// started controlplane on the project's 2-core machine: a window wide
// enough to land SIGKILLs in every phase.
const killVPCs = 1000

// TestSIGKILLDuringApplyLeavesTheOldOrTheNewGeneration alternates two big
// configurations through gwctl apply, kills the controlplane with SIGKILL
// during each apply (at a random moment, or at a given step of the
// store's save) and restarts it on the same state directory: the live
// objects and tables must be exactly the old or the new configuration,
// with the generation number of that configuration, and an apply gwctl
// saw succeed must survive.
func TestSIGKILLDuringApplyLeavesTheOldOrTheNewGeneration(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	e := newCPEnv(t)
	gens := twoGenerations(t, killVPCs)
	e.start()

	// Clean applies: A is generation 1, B 2, A 3, B 4. They give the
	// objects each configuration lists as, and how long an apply takes on
	// a freshly started controlplane (slower than on a warm one), which
	// is what each round below kills.
	var took time.Duration
	for i, v := range []int{0, 1, 0, 1} {
		if i == 3 {
			e.stop()
			e.start()
		}
		start := time.Now()
		if r := e.gwctl("apply", "-f", gens[v].file); r.Code != 0 {
			t.Fatalf("apply %s: %s", gens[v].name, r)
		}
		took = time.Since(start)
		l := e.live()
		if gens[v].objects == nil {
			gens[v].objects = l.objects
		}
		if why := l.matches(gens[v], uint64(i+1)); why != "" {
			t.Fatalf("clean apply %d of %s: %s", i+1, gens[v].name, why)
		}
	}
	// Generation g holds A when odd, B when even: every accepted apply
	// flips the configuration.
	contentOf := func(gen uint64) int { return int(1 - gen%2) }
	gen := uint64(4)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("an apply of %d VPCs takes %s; kill delays uniform in [0, %s); seed %d", killVPCs, took.Round(time.Millisecond), (took * 5 / 4).Round(time.Millisecond), seed)

	// Half the kills land at a random moment; the other rounds wait for a
	// step of the store's save that a random delay rarely hits: its
	// temporary file appearing (the new state being written), the current
	// file moved to the previous copy (between the two renames), the new
	// current file in place (on disk, the reply not yet sent).
	triggers := []string{"random", tempWritten, "random", currentMoved, "random", newCurrent}
	var midApply, becameNew, midApplyNew int
	for round := range rounds {
		next := 1 - contentOf(gen)
		trigger := triggers[round%len(triggers)]
		before := stateFiles(e.stateDir)
		started := time.Now()
		cmd := exec.Command(filepath.Join(e.bin, "gwctl"), "--server", e.addr(), "--timeout", "60s", "apply", "-f", gens[next].file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		applied := make(chan error, 1)
		go func() { applied <- cmd.Wait() }()
		if trigger == "random" {
			time.Sleep(time.Duration(rng.Int64N(int64(took * 5 / 4))))
		} else if !waitForState(applied, func() bool { return stateFiles(e.stateDir).changed(before, trigger) }) {
			t.Logf("round %2d: the apply ended before the %s was seen", round, trigger)
		}
		delay := time.Since(started)
		inFlight := true
		select {
		case err := <-applied:
			inFlight = false
			applied <- err
		default:
		}
		e.proc.Kill()
		applyErr := <-applied
		if inFlight {
			midApply++
		} else if applyErr != nil {
			t.Fatalf("round %d: apply finished before the kill but failed: %v", round, applyErr)
		}

		e.start()
		l := e.live()
		oldWhy := l.matches(gens[contentOf(gen)], gen)
		newWhy := l.matches(gens[next], gen+1)
		outcome := "old"
		switch {
		case oldWhy == "":
		case newWhy == "":
			outcome = "new"
			becameNew++
			if inFlight {
				midApplyNew++
			}
			gen++
		default:
			t.Fatalf("round %d (kill %s after the apply started, on %s, apply in flight %v): live generation %d is neither the old configuration %s at generation %d (%s) nor the new %s at %d (%s)",
				round, delay, trigger, inFlight, l.statusGen, gens[contentOf(gen)].name, gen, oldWhy, gens[next].name, gen+1, newWhy)
		}
		if !inFlight && outcome == "old" {
			t.Fatalf("round %d: gwctl reported the apply done before the kill, yet the old generation %d is live after the restart", round, gen)
		}
		if trigger == newCurrent && outcome == "old" {
			t.Fatalf("round %d: killed after the new state file was renamed in place, yet the old generation %d is live after the restart", round, gen)
		}
		t.Logf("round %2d: SIGKILL %4dms after the apply started (%s), apply in flight: %-5v -> %s generation %d live", round, delay.Milliseconds(), trigger, inFlight, outcome, gen)
	}
	leftovers, _ := filepath.Glob(filepath.Join(e.stateDir, ".config-*.tmp"))
	t.Logf("%d rounds: %d SIGKILLs landed while gwctl apply was in flight (%d of them after the new generation was on disk), %d rounds ended on the new generation; %d temporary files left in the state dir",
		rounds, midApply, midApplyNew, becameNew, len(leftovers))
	if midApply == 0 {
		t.Errorf("no SIGKILL landed during an apply: the test did not test anything (apply took %s)", took)
	}

	// The state dir still takes an ordinary apply and a clean restart.
	next := 1 - contentOf(gen)
	if r := e.gwctl("apply", "-f", gens[next].file); r.Code != 0 {
		t.Fatalf("apply after the kills: %s", r)
	}
	e.stop()
	e.start()
	if why := e.live().matches(gens[next], gen+1); why != "" {
		t.Errorf("after a clean apply and restart: %s", why)
	}
	e.stop()
}

// TestDamagedStateFileStartsFromTheLastGoodCopy damages the current state
// file the way a crash or a full disk would and starts the real binary on
// it: it must serve the previous copy's objects and tables and say so on
// stderr, under a generation above the damaged file's when its header still
// names it (generation 2 was live with other content: it is not reused).
// Both copies damaged must stop the start rather than start empty.
func TestDamagedStateFileStartsFromTheLastGoodCopy(t *testing.T) {
	seeds := filepath.Join(testenv.ModuleRoot(), "testdata", "manifests", "kube-ovn-vpc-peering")
	if _, err := os.Stat(seeds); err != nil {
		t.Skipf("seed manifests missing: %v", err)
	}
	pods := filepath.Join(seeds, "kube-ovn-vpc-peering-3-pods.yaml")
	cut := func(frac float64) func([]byte) []byte {
		return func(b []byte) []byte { return b[:int(float64(len(b))*frac)] }
	}
	const damaged = "state file damaged, loading the previous copy"
	cases := []struct {
		name     string
		damage   func([]byte) []byte // nil removes the file
		both     bool                // damage the previous copy too
		gen      uint64              // the generation the copy is served under
		wantLogs []string
	}{
		{name: "a current file cut in half", damage: cut(0.5), gen: 3,
			wantLogs: []string{damaged, "checksum mismatch", "config.yaml.damaged-"}},
		{name: "a current file cut inside its header", damage: func(b []byte) []byte { return b[:40] }, gen: 1,
			wantLogs: []string{damaged, "truncated"}},
		{name: "a current file of zero bytes", damage: cut(0), gen: 1,
			wantLogs: []string{damaged}},
		{name: "a current file with one byte changed", damage: func(b []byte) []byte {
			b[len(b)-3] ^= 0x20
			return b
		}, gen: 3, wantLogs: []string{damaged, "checksum mismatch"}},
		{name: "a missing current file (a crash between the renames)", damage: nil, gen: 1,
			wantLogs: []string{"state file missing, loading the previous copy"}},
		{name: "both copies cut in half", damage: cut(0.5), both: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCPEnv(t)
			e.start()
			if r := e.gwctl("apply", "-f", seeds); r.Code != 0 {
				t.Fatalf("apply the seeds: %s", r)
			}
			good := e.live()
			if r := e.gwctl("delete", "-f", pods); r.Code != 0 {
				t.Fatalf("delete the pods: %s", r)
			}
			if g := e.live().statusGen; g != 2 {
				t.Fatalf("generation after the delete = %d, want 2", g)
			}
			e.stop()

			files := []string{store.CurrentFile}
			if tc.both {
				files = append(files, store.PreviousFile)
			}
			for _, f := range files {
				path := filepath.Join(e.stateDir, f)
				if tc.damage == nil {
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tc.damage(b), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			if tc.both {
				out, err := exec.Command(filepath.Join(e.bin, "controlplane"), "--listen", e.addr(), "--state-dir", e.stateDir).CombinedOutput()
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "load stored configuration") {
					t.Fatalf("controlplane on two damaged copies = %v, want exit 1 naming the load failure:\n%s", err, out)
				}
				return
			}
			e.start()
			l := e.live()
			if l.statusGen != tc.gen || l.tables.GetGeneration() != tc.gen {
				t.Errorf("generation after the start = %d (tables %d), want %d", l.statusGen, l.tables.GetGeneration(), tc.gen)
			}
			if !proto.Equal(&apiv1.ListResponse{Objects: l.objects}, &apiv1.ListResponse{Objects: good.objects}) {
				t.Errorf("objects after the start are not generation 1's (%d objects, want %d)", len(l.objects), len(good.objects))
			}
			gt := proto.Clone(good.tables).(*tablesv1.Tables)
			gt.Generation = l.tables.GetGeneration()
			if !proto.Equal(l.tables, gt) {
				t.Errorf("tables after the start are not generation 1's")
			}
			log := e.proc.Log.String()
			for _, want := range tc.wantLogs {
				if !strings.Contains(log, want) {
					t.Errorf("controlplane stderr lacks %q:\n%s", want, tail(log, 20))
				}
			}
			// The next change persists as generation 2 and survives a
			// restart: the store recovered, not just the start.
			if r := e.gwctl("delete", "-f", pods); r.Code != 0 {
				t.Fatalf("delete the pods after the recovery: %s", r)
			}
			e.stop()
			e.start()
			if g := e.live().statusGen; g != tc.gen+1 {
				t.Errorf("generation after a change and a restart = %d, want %d", g, tc.gen+1)
			}
			if strings.Contains(e.proc.Log.String(), "previous") {
				t.Errorf("the restart after the recovery still fell back to a previous copy:\n%s", tail(e.proc.Log.String(), 20))
			}
			e.stop()
		})
	}
}
