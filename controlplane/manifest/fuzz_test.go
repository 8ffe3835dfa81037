package manifest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
)

func addSeeds(f *testing.F) {
	for _, file := range seedFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("---\n...\n--- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"))
}

// FuzzParse: Parse never panics, and what it accepts Marshal writes back
// into the same objects.
//
//	go test ./controlplane/manifest -run '^$' -fuzz FuzzParse -fuzztime 30s -fuzzminimizetime 200x
//
// (without -fuzzminimizetime the engine may spend the whole run minimizing
// the first new inputs of these large seeds and report no progress).
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := manifest.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		back, err := manifest.Parse("fuzz.yaml", manifest.Marshal(objs))
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v", err)
		}
		if len(back) != len(objs) {
			t.Fatalf("round trip: %d objects, want %d", len(back), len(objs))
		}
		for i := range back {
			if back[i].Key != objs[i].Key || !bytes.Equal(manifest.Encode(back[i]), manifest.Encode(objs[i])) {
				t.Fatalf("object %d differs after round trip", i)
			}
		}
	})
}

// FuzzLoad: loading a file, validating and compiling it never panics,
// whatever the file holds.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	// Whole scenarios, so the fuzzer starts from configs that compile.
	dirs, _ := filepath.Glob(filepath.Join(seeds, "*"))
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.yaml"))
		var all []byte
		for _, file := range files {
			data, _ := os.ReadFile(file)
			all = append(append(all, data...), "\n---\n"...)
		}
		f.Add(all)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.LoadPaths(path)
		if err != nil {
			return
		}
		_, _, _ = compile.Compile(manifest.NewConfig(objs), nil)
	})
}
