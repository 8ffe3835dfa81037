package store

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/manifest"
)

const vpcs = `kind: Vpc
apiVersion: kubeovn.io/v1
metadata:
  name: vpc-1
spec: {}
---
kind: Subnet
apiVersion: kubeovn.io/v1
metadata:
  name: net1
spec:
  vpc: vpc-1
  cidrBlock: 10.0.0.0/16
`

const vpcs2 = vpcs + `---
kind: Vpc
apiVersion: kubeovn.io/v1
metadata:
  name: vpc-2
spec: {}
`

func objects(t *testing.T, file, text string) []manifest.Object {
	t.Helper()
	objs, err := manifest.Parse(file, []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return objs
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes old, as a controlplane that stops, and opens dir again.
func reopen(t *testing.T, old *Store, dir string) *Store {
	t.Helper()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, dir)
}

func keys(objs []manifest.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key.String())
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEmptyDirectoryLoadsAnEmptyState(t *testing.T) {
	st, err := open(t, t.TempDir()).Load()
	if err != nil || st.Generation != 0 || len(st.Objects) != 0 {
		t.Fatalf("Load = %+v, %v; want empty state", st, err)
	}
}

func TestSavedStateLoadsBackWithGenerationObjectsAndSources(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	in := objects(t, "vpcs.yaml", vpcs)
	if err := s.Save(State{Generation: 7, Objects: in}); err != nil {
		t.Fatal(err)
	}
	st, err := reopen(t, s, dir).Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Generation != 7 {
		t.Errorf("generation = %d, want 7", st.Generation)
	}
	if got, want := keys(st.Objects), keys(in); !equalStrings(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}
	for i, o := range st.Objects {
		if o.Source != in[i].Source {
			t.Errorf("object %d source = %+v, want %+v", i, o.Source, in[i].Source)
		}
		if string(o.Raw) != string(in[i].Raw) {
			t.Errorf("object %d raw = %q, want %q", i, o.Raw, in[i].Raw)
		}
	}
}

func TestTheStateFileIsAValidManifest(t *testing.T) {
	dir := t.TempDir()
	if err := open(t, dir).Save(State{Generation: 1, Objects: objects(t, "vpcs.yaml", vpcs)}); err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.LoadPaths(filepath.Join(dir, CurrentFile))
	if err != nil || len(objs) != 2 {
		t.Fatalf("LoadPaths(state file) = %d objects, %v; want 2", len(objs), err)
	}
}

func TestSaveKeepsThePreviousCopy(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Save(State{Generation: 1, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(State{Generation: 2, Objects: objects(t, "a.yaml", vpcs2)}); err != nil {
		t.Fatal(err)
	}
	prev, err := readFile(filepath.Join(dir, PreviousFile))
	if err != nil || prev.Generation != 1 {
		t.Fatalf("previous copy = generation %d, %v; want 1", prev.Generation, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("state dir holds %d files, want 3: current, previous, lock (no temporary files left)", len(ents))
	}
}

func TestDamagedCurrentFileFallsBackToThePreviousCopy(t *testing.T) {
	cases := []struct {
		name   string
		damage func(data []byte) []byte
		gen    uint64 // the generation Load gives the previous copy
	}{
		{"cut in the middle of the body", func(d []byte) []byte { return d[:len(d)-20] }, 3},
		{"cut at a document boundary", func(d []byte) []byte {
			i := len(d) - len("---\nkind: Vpc\napiVersion: kubeovn.io/v1\nmetadata:\n  name: vpc-2\nspec: {}\n")
			return d[:i]
		}, 3},
		{"cut inside the header", func(d []byte) []byte { return d[:40] }, 1},
		{"empty", func([]byte) []byte { return nil }, 1},
		{"a byte changed", func(d []byte) []byte {
			d = append([]byte(nil), d...)
			d[len(d)-5] ^= 1
			return d
		}, 3},
		{"not a state file", func([]byte) []byte { return []byte(vpcs) }, 1},
		{"the generation changed", func(d []byte) []byte {
			return bytes.Replace(d, []byte(`{"generation":2,`), []byte(`{"generation":9,`), 1)
		}, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			if err := s.Save(State{Generation: 1, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
				t.Fatal(err)
			}
			if err := s.Save(State{Generation: 2, Objects: objects(t, "a.yaml", vpcs2)}); err != nil {
				t.Fatal(err)
			}
			cur := filepath.Join(dir, CurrentFile)
			data, err := os.ReadFile(cur)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cur, c.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			s = reopen(t, s, dir)
			st, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			// The previous copy's objects, under a generation above the
			// damaged file's when its header still says which (2, or 9
			// when that was changed): that number must not be reused.
			if len(st.Objects) != 2 || st.Generation != c.gen {
				t.Fatalf("Load = generation %d with %d objects, want the previous copy's objects (2) at generation %d", st.Generation, len(st.Objects), c.gen)
			}
			if kept, _ := filepath.Glob(cur + ".damaged-*"); len(kept) != 1 {
				t.Errorf("the damaged file was kept as %q, want one copy", kept)
			}
			// A restart before any change finds the same state (and keeps
			// no second copy of the damaged file: it was replaced).
			s = reopen(t, s, dir)
			if again, err := s.Load(); err != nil || again.Generation != c.gen || len(again.Objects) != 2 {
				t.Fatalf("Load after a restart = generation %d with %d objects, %v; want %d, 2", again.Generation, len(again.Objects), err, c.gen)
			}
			// The next save must not replace the good previous copy with
			// the damaged file.
			if err := s.Save(State{Generation: c.gen + 1, Objects: objects(t, "a.yaml", vpcs2)}); err != nil {
				t.Fatal(err)
			}
			prev, err := readFile(filepath.Join(dir, PreviousFile))
			if err != nil || prev.Generation != c.gen || len(prev.Objects) != 2 {
				t.Fatalf("previous copy after save = generation %d with %d objects, %v; want the fallback (%d, 2)", prev.Generation, len(prev.Objects), err, c.gen)
			}
		})
	}
}

// An unreadable newest copy may be the newest good state: Load refuses
// instead of starting from the previous copy (found by a durability audit:
// a state file written by root stopped the peergate user's controlplane
// from reading it, and it went back a generation, then reused that
// generation's number for other content).
func TestAnUnreadableCurrentFileIsAnErrorNotAFallback(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for g := uint64(1); g <= 2; g++ {
		if err := s.Save(State{Generation: g, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
			t.Fatal(err)
		}
	}
	cur := filepath.Join(dir, CurrentFile)
	// A directory in its place: unreadable for root too (tests run as root
	// in CI, where file modes do not stop a read).
	if err := os.Rename(cur, cur+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cur, 0o700); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	if st, err := s.Load(); err == nil || !strings.Contains(err.Error(), "not falling back") {
		t.Fatalf("Load = generation %d, %v; want an error that does not fall back", st.Generation, err)
	}
}

// Review finds on the damage fallback and the header checksum.
func TestDamageFallbackEdges(t *testing.T) {
	// saved2 is a store holding generations 1 and 2 of objects from file.
	saved2 := func(t *testing.T, file string) (string, *Store) {
		dir := t.TempDir()
		s := open(t, dir)
		for g := uint64(1); g <= 2; g++ {
			if err := s.Save(State{Generation: g, Objects: objects(t, file, vpcs2)}); err != nil {
				t.Fatal(err)
			}
		}
		return dir, s
	}
	rewrite := func(t *testing.T, dir string, damage func([]byte) []byte) {
		cur := filepath.Join(dir, CurrentFile)
		data, err := os.ReadFile(cur)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cur, damage(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cut := func(d []byte) []byte { return d[:len(d)-20] }
	loadGen := func(t *testing.T, s *Store, dir string, want uint64) {
		t.Helper()
		s = reopen(t, s, dir)
		if st, err := s.Load(); err != nil || st.Generation != want {
			t.Fatalf("Load = generation %d, %v; want %d", st.Generation, err, want)
		}
	}
	t.Run("a source path that is not UTF-8 still checks", func(t *testing.T) {
		dir, s := saved2(t, "/etc/peergate/conf-\xe4.yaml")
		loadGen(t, s, dir, 2)
		if kept, _ := filepath.Glob(filepath.Join(dir, CurrentFile+".damaged-*")); len(kept) != 0 {
			t.Errorf("a good file was taken for damaged: %q", kept)
		}
	})
	t.Run("a crash after keeping the damaged file raises the generation again", func(t *testing.T) {
		dir, s := saved2(t, "a.yaml")
		rewrite(t, dir, cut)
		// What a crash right after the hard link leaves.
		cur := filepath.Join(dir, CurrentFile)
		if err := os.Link(cur, cur+".damaged-before-the-crash"); err != nil {
			t.Fatal(err)
		}
		loadGen(t, s, dir, 3) // above the damaged file's 2
	})
	t.Run("a broken meta line still raises by the generation line", func(t *testing.T) {
		dir, s := saved2(t, "a.yaml")
		rewrite(t, dir, func(d []byte) []byte { return bytes.Replace(d, []byte(`# meta: {`), []byte(`# meta: {{`), 1) })
		loadGen(t, s, dir, 3)
	})
	t.Run("Save does not replace a current file it cannot read", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		cur := filepath.Join(dir, CurrentFile)
		if err := os.Mkdir(cur, 0o700); err != nil { // unreadable as a file, for root too
			t.Fatal(err)
		}
		if err := s.Save(State{Generation: 1, Objects: objects(t, "a.yaml", vpcs)}); err == nil || !strings.Contains(err.Error(), "cannot read the current state file") {
			t.Fatalf("Save over an unreadable current file = %v, want a refusal", err)
		}
	})
	t.Run("a damaged header at the largest generation does not wrap to 0", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		for _, g := range []uint64{1, math.MaxUint64} {
			if err := s.Save(State{Generation: g, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
				t.Fatal(err)
			}
		}
		rewrite(t, dir, cut)
		loadGen(t, s, dir, 1) // the previous copy's: no number above MaxUint64, and never 0
	})
}

// State files written before the header checksum existed still load.
func TestAFileWithoutTheHeaderChecksumStillLoads(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Save(State{Generation: 4, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, CurrentFile)
	data, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`,"check":"`))
	if i < 0 {
		t.Fatalf("no check field in:\n%s", data)
	}
	j := i + len(`,"check":"`) + 64 + 1
	old := append(append([]byte(nil), data[:i]...), data[j:]...)
	if err := os.WriteFile(cur, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Load(); err != nil || st.Generation != 4 {
		t.Fatalf("Load of a file without check = generation %d, %v", st.Generation, err)
	}
}

// The directory itself is locked: removing the lock file does not let a
// second store in.
func TestRemovingTheLockFileDoesNotAdmitASecondStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := os.Remove(filepath.Join(dir, LockFile)); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second Open after removing %s = %v, want ErrLocked", LockFile, err)
	}
	_ = s
}

func TestCrashBetweenRenamesLoadsThePreviousCopy(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Save(State{Generation: 1, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, CurrentFile), filepath.Join(dir, PreviousFile)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load()
	if err != nil || st.Generation != 1 {
		t.Fatalf("Load = generation %d, %v; want 1", st.Generation, err)
	}
}

func TestBothCopiesDamagedIsAnError(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{CurrentFile, PreviousFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := open(t, dir).Load(); err == nil {
		t.Fatal("Load succeeded with both copies damaged, want an error")
	}
}

func TestASecondOpenOfTheSameDirectoryIsRefusedUntilTheFirstCloses(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	// The lock is the kernel's: released on close (and on process death).
	reopen(t, s, dir)
}

func TestOpenRemovesTemporaryFilesOfAnInterruptedSave(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Save(State{Generation: 1, Objects: objects(t, "a.yaml", vpcs)}); err != nil {
		t.Fatal(err)
	}
	// What a SIGKILL between CreateTemp and Rename leaves.
	stale := filepath.Join(dir, ".config-123.tmp")
	if err := os.WriteFile(stale, []byte("half a state"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file after Open: %v, want it removed", err)
	}
	st, err := s.Load()
	if err != nil || st.Generation != 1 {
		t.Errorf("Load = generation %d, %v; want 1", st.Generation, err)
	}
}
