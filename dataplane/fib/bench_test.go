package fib

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/internal/fulltable"
	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

var (
	internetOnce   sync.Once
	internetTables *tablesv1.Tables
)

// internet returns deltaTables with the full Internet table in the
// external e's local routes (delivered via its neighbour) and in a's
// routes (forwarded to e), as a controlplane compiles an external that
// announces it: ~2 M routes in all.
func internet(b *testing.B) *tablesv1.Tables {
	ps := fulltable.Prefixes(b)
	internetOnce.Do(func() {
		t := deltaTables()
		e, a := t.Vpcs[2], t.Vpcs[0]
		for _, p := range ps {
			e.LocalRoutes = append(e.LocalRoutes, &tablesv1.Route{Prefix: p.String(), Source: "bgp:192.0.2.1",
				Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: "192.0.2.1"}}})
			a.Routes = append(a.Routes, &tablesv1.Route{Prefix: p.String(), Source: "peering:a-e",
				Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 2, TtlDecrement: 1, Peering: "a-e"}}})
		}
		internetTables = t
	})
	return internetTables
}

// oneUpdate is the delta of one BGP update of a full table: one prefix
// changes its next hop in e and is upserted in a.
func oneUpdate(t *tablesv1.Tables, gen uint64, i int) *tablesv1.TableDelta {
	r := t.Vpcs[2].LocalRoutes[i*7919%len(t.Vpcs[2].LocalRoutes)]
	via := fmt.Sprintf("192.0.2.%d", 1+gen%2)
	return &tablesv1.TableDelta{BaseGeneration: gen, Generation: gen + 1, Vpcs: []*tablesv1.VpcRouteDelta{
		{VpcId: 2, UpsertLocalRoutes: []*tablesv1.Route{{Prefix: r.GetPrefix(), Source: "bgp:" + via,
			Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: via}}}}},
		{VpcId: 0, UpsertRoutes: []*tablesv1.Route{{Prefix: r.GetPrefix(), Source: "peering:a-e",
			Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 2, TtlDecrement: 1, Peering: "a-e"}}}}},
	}}
}

// BenchmarkDeltaInternetTable is one BGP update reaching a dataplane that
// holds the full Internet table: ApplyDelta, against the rebuild it
// replaces (clone the tables, patch the route lists, Build), measured in
// the same run.
//
//	go test -run '^$' -bench DeltaInternetTable -benchmem ./dataplane/fib/
func BenchmarkDeltaInternetTable(b *testing.B) {
	base := internet(b)
	b.Run("apply-delta", func(b *testing.B) {
		s, err := Build(proto.Clone(base).(*tablesv1.Tables), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if s, err = s.ApplyDelta(oneUpdate(base, s.Generation, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		t := proto.Clone(base).(*tablesv1.Tables)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			d := oneUpdate(base, t.GetGeneration(), i)
			t = proto.Clone(t).(*tablesv1.Tables)
			refTables{t}.applyWith(d, patchIndexed)
			if _, err := Build(t, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTransferInternetTable is a full table streaming in as one
// delta (what a controlplane sends when a session's transfer ends) over
// tables without it, beside Build of the complete tables in the same run.
//
//	go test -run '^$' -bench TransferInternetTable -benchmem ./dataplane/fib/
func BenchmarkTransferInternetTable(b *testing.B) {
	full := internet(b)
	empty := deltaTables()
	d := &tablesv1.TableDelta{BaseGeneration: empty.GetGeneration(), Generation: empty.GetGeneration() + 1, Vpcs: []*tablesv1.VpcRouteDelta{
		{VpcId: 0, UpsertRoutes: full.Vpcs[0].Routes[len(empty.Vpcs[0].Routes):]},
		{VpcId: 2, UpsertLocalRoutes: full.Vpcs[2].LocalRoutes},
	}}
	b.Run("apply-delta", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			s := untimedBuild(b, empty)
			if _, err := s.ApplyDelta(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the dataplane pays from the wire on: decode the delta, then
	// apply it, with the routes as Route messages or as route blocks (the
	// form the controlplane's hub sends a transfer in).
	for _, form := range []struct {
		name string
		d    *tablesv1.TableDelta
	}{{"receive-plain", d}, {"receive-block", routeblock.PackDelta(d)}} {
		b.Run(form.name, func(b *testing.B) {
			wire, err := proto.Marshal(form.d)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(wire))/1e6, "wire-MB")
			b.ReportAllocs()
			for range b.N {
				s := untimedBuild(b, empty)
				var got tablesv1.TableDelta
				if err := proto.Unmarshal(wire, &got); err != nil {
					b.Fatal(err)
				}
				if _, err := s.ApplyDelta(&got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := Build(full, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// untimedBuild builds t with the benchmark's timer stopped and collects
// the garbage, so that the timed part starts from a clean heap.
func untimedBuild(b *testing.B, t *tablesv1.Tables) *Snapshot {
	b.StopTimer()
	defer b.StartTimer()
	s, err := Build(t, Options{})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	return s
}

// BenchmarkSnapshotMemoryInternetTable reports the heap a snapshot of the
// full table holds once the tables it was built from are gone (the
// dataplane keeps no route lists), B/route over its ~2.1 M routes, beside
// what the tables themselves held as Route messages (tables-B/route), which
// the dataplane kept before, and as received in their wire form, the large
// lists in route blocks (received-B/route).
//
//	go test -run '^$' -bench SnapshotMemoryInternetTable ./dataplane/fib/
func BenchmarkSnapshotMemoryInternetTable(b *testing.B) {
	full := internet(b)
	routes := float64(len(full.Vpcs[0].Routes) + len(full.Vpcs[2].LocalRoutes))
	for range b.N {
		before := liveHeap()
		s, tables := buildFromCopy(b, full)
		b.ReportMetric(float64(liveHeap()-before)/routes, "B/route")
		b.ReportMetric(float64(tables)/routes, "tables-B/route")
		runtime.KeepAlive(s)
		// The tables as a dataplane receives them now: the large route
		// lists in route blocks.
		wire, err := proto.Marshal(routeblock.PackTables(full))
		if err != nil {
			b.Fatal(err)
		}
		before = liveHeap()
		var got tablesv1.Tables
		if err := proto.Unmarshal(wire, &got); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(liveHeap()-before)/routes, "received-B/route")
		runtime.KeepAlive(&got)
	}
}

// buildFromCopy builds a snapshot from a copy of t, which is garbage when
// it returns, and returns the heap the copy held.
func buildFromCopy(b *testing.B, t *tablesv1.Tables) (*Snapshot, int64) {
	before := liveHeap()
	c := proto.Clone(t).(*tablesv1.Tables)
	tables := liveHeap() - before
	s, err := Build(c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s, tables
}

// liveHeap is the heap in use after two collections.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// patchIndexed is patch with the route index by map that the dataplane
// used before ApplyDelta (patch scans, fine for tests).
func patchIndexed(routes, upsert []*tablesv1.Route, remove []string) []*tablesv1.Route {
	type key struct {
		prefix string
		src    bool
	}
	gone := make(map[string]bool, len(remove))
	for _, p := range remove {
		gone[p] = true
	}
	idx := make(map[key]int, len(routes))
	out := make([]*tablesv1.Route, 0, len(routes)+len(upsert))
	for _, r := range routes {
		if gone[r.GetPrefix()] {
			continue
		}
		idx[key{r.GetPrefix(), r.GetMatchSource()}] = len(out)
		out = append(out, r)
	}
	for _, r := range upsert {
		k := key{r.GetPrefix(), r.GetMatchSource()}
		if i, ok := idx[k]; ok {
			out[i] = r
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	return out
}
