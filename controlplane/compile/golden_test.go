package compile

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/validate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/compiled")

const (
	manifestsDir = "../../testdata/manifests"
	compiledDir  = "../../testdata/compiled"
)

// TestSeedScenariosCompileToTheGoldenTables compiles every scenario of
// testdata/manifests (the seed documents' examples with their peergate
// attachments) and compares the tables, warnings and errors with the
// golden files, which were reviewed by hand.
func TestSeedScenariosCompileToTheGoldenTables(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(manifestsDir, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios in %s: %v", manifestsDir, err)
	}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue // README
		}
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			tables, diags, err := Files(dir)
			files := map[string][]byte{}
			if err != nil {
				files[name+".errors.txt"] = render(diags)
			} else {
				js, jerr := JSON(tables)
				if jerr != nil {
					t.Fatal(jerr)
				}
				files[name+".json"] = js
				if len(diags) > 0 {
					files[name+".warnings.txt"] = render(diags)
				}
			}
			for _, suffix := range []string{".json", ".warnings.txt", ".errors.txt"} {
				golden(t, name+suffix, files[name+suffix])
			}
		})
	}
}

func render(ds []validate.Diagnostic) []byte {
	var b bytes.Buffer
	for _, d := range ds {
		b.WriteString(strings.TrimPrefix(d.String(), manifestsDir+"/"))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// golden compares got with the golden file (absent when got is nil).
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join(compiledDir, file)
	if *update {
		if got == nil {
			os.Remove(path)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if got == nil {
		if err == nil {
			t.Errorf("%s exists but the scenario produced nothing for it (run with -update?)", path)
		}
		return
	}
	if err != nil {
		t.Fatalf("read golden file (run `go test ./controlplane/compile -update`): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the compiled output (run with -update after reviewing):\n%s", path, firstDiff(want, got))
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return "(same lines, different bytes)"
}
