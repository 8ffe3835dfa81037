package compile

import (
	"math/rand"
	"net/netip"
	"slices"
	"testing"

	"github.com/peergate/peergate/internal/fulltable"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
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

// BenchmarkStreamingInternetTable: the same table streaming into an empty
// external, as bgpsync hands it over while it arrives: batches of the
// prefixes in a shuffled order (BIRD sends its table in hash order), each
// compiled incrementally and applied to the tables (one op is the whole
// table). over reads the routes before each batch from the tables
// (UpdateLearnedOver, what the server does); resolve resolves them again
// (UpdateLearned). Compare its ns/op with BenchmarkNewCompilerInternetTable
// (one complete compilation).
//
//	go test ./controlplane/compile -run '^$' -bench 'StreamingInternetTable|NewCompilerInternetTable' -benchtime 1x -benchmem
func BenchmarkStreamingInternetTable(b *testing.B) {
	c := benchConfig(b)
	e1 := netip.MustParseAddr("203.0.113.1")
	prefixes := slices.Clone(fulltable.Prefixes(b))
	rand.New(rand.NewSource(1)).Shuffle(len(prefixes), func(i, j int) { prefixes[i], prefixes[j] = prefixes[j], prefixes[i] })
	routes := make([]LearnedRoute, len(prefixes))
	for i, p := range prefixes {
		routes[i] = LearnedRoute{Prefix: p, NextHop: e1, MED: 1, Neighbor: "203.0.113.1", ASPathLen: 3}
	}
	for _, bc := range []struct {
		name  string
		over  bool
		batch int
	}{{"over/batch=4096", true, 4096}, {"over/batch=32768", true, 32768}, {"resolve/batch=32768", false, 32768}, {"over/doubling", true, 0}, {"over/one-batch", true, -1}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				comp, tables, _, err := NewCompiler(c, nil)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < len(routes); {
					// 0: each batch as large as the table so far (bgpsync
					// paces a transfer's compilations so).
					// -1: the whole table in one batch (bgpsync holds a
					// transfer's batches that are large against the table
					// until the stream pauses).
					n := bc.batch
					switch n {
					case 0:
						n = max(4096, i)
					case -1:
						n = len(routes)
					}
					batch := routes[i:min(i+n, len(routes))]
					i += len(batch)
					var d *tablesv1.TableDelta
					if bc.over {
						d, err = comp.UpdateLearnedOver(tables, "e1", batch, nil)
					} else {
						d, err = comp.UpdateLearned("e1", batch, nil)
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := ApplyDelta(tables, d); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(tables.Vpcs[2].Routes)), "vpc1-routes")
			}
		})
	}
}
