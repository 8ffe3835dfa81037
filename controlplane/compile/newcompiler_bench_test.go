package compile

import (
	"bufio"
	"compress/gzip"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// BenchmarkNewCompilerInternetTable: the complete compilation the
// controlplane runs once a full table has streamed in (one external with
// the Internet table of ../shared/data), as bgpsync's flushFull does.
func BenchmarkNewCompilerInternetTable(b *testing.B) {
	f, err := os.Open(internetTable)
	if err != nil {
		b.Skipf("no Internet table: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	c := benchConfig(b)
	e1 := netip.MustParseAddr("203.0.113.1")
	learned := Learned{}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		if p, err := netip.ParsePrefix(strings.TrimSpace(sc.Text())); err == nil {
			learned["e1"] = append(learned["e1"], LearnedRoute{Prefix: p, NextHop: e1, MED: 1, Neighbor: "203.0.113.1", ASPathLen: 3})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := NewCompiler(c, learned); err != nil {
			b.Fatal(err)
		}
	}
}
