package dpdk

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveRuntimeDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x"} {
		if err := RemoveRuntimeDir(bad); err == nil {
			t.Errorf("RemoveRuntimeDir(%q) accepted an invalid prefix", bad)
		}
	}

	prefix := "pgtestrm" + filepath.Base(t.TempDir())
	dir := RuntimeDir(prefix)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// What a finished EAL without --no-shconf leaves behind.
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRuntimeDir(prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", dir, err)
	}
	if err := RemoveRuntimeDir(prefix); err != nil {
		t.Fatalf("removing an absent dir: %v", err)
	}
}
