// Package fulltable loads the real Internet routing table that tests and
// benchmarks use (../shared/data/internet-prefixes.txt.gz beside the
// repository), so that every test reads it the same way.
package fulltable

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// File is the table's path below a directory that holds "shared".
const File = "shared/data/internet-prefixes.txt.gz"

// Find returns the table's path, walking up from the working directory (a
// test runs in its package's directory), or "" when no parent holds it.
func Find() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		f := filepath.Join(dir, File)
		if _, err := os.Stat(f); err == nil {
			return f
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Read returns the prefixes of the gzip'd list name, masked and each once,
// in file order. Lines that are not prefixes are skipped.
func Read(name string) ([]netip.Prefix, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	seen := make(map[netip.Prefix]struct{}, 1<<20)
	out := make([]netip.Prefix, 0, 1<<20)
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		p, err := netip.ParsePrefix(strings.TrimSpace(sc.Text()))
		if err != nil {
			continue
		}
		p = p.Masked()
		if _, dup := seen[p]; !dup {
			seen[p] = struct{}{}
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Prefixes is Find and Read for a test: it skips the test when the table
// is absent and fails it when the file cannot be read.
func Prefixes(t testing.TB) []netip.Prefix {
	t.Helper()
	name := Find()
	if name == "" {
		t.Skipf("%s not found above the working directory: skipping the full-table test", File)
	}
	ps, err := Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
