package compile

import (
	"net/netip"
	"testing"

	"github.com/peergate/peergate/internal/fulltable"
)

// BenchmarkNewCompilerInternetTable: the complete compilation the
// controlplane runs once a full table has streamed in (one external with
// the Internet table of ../shared/data), as bgpsync's flushFull does.
func BenchmarkNewCompilerInternetTable(b *testing.B) {
	c := benchConfig(b)
	e1 := netip.MustParseAddr("203.0.113.1")
	learned := Learned{}
	for _, p := range fulltable.Prefixes(b) {
		learned["e1"] = append(learned["e1"], LearnedRoute{Prefix: p, NextHop: e1, MED: 1, Neighbor: "203.0.113.1", ASPathLen: 3})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := NewCompiler(c, learned); err != nil {
			b.Fatal(err)
		}
	}
}
