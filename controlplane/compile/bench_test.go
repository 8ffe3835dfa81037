package compile

import (
	"fmt"
	"math/rand"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/peergate/peergate/controlplane/manifest"

	"github.com/peergate/peergate/internal/fulltable"
)

// benchConfig is the fourth use case's shape: vpc-1 reaching two
// externals, e2 at metric 10.
func benchConfig(b *testing.B) *manifest.Config {
	e1 := "  e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 192.168.0.0/16}, {not: 1.2.3.0/30}]\n"
	e2 := "  e2:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 192.168.0.0/16}, {not: 3.2.1.0/30}]\n    metric: 10\n"
	objs, err := manifest.Parse("bench.yaml", []byte(gateway+peering("a", vpc1Side, e1)+peering("b", vpc1Side, e2)))
	if err != nil {
		b.Fatal(err)
	}
	return manifest.NewConfig(objs)
}

// benchLearned draws n routes (/8 to /24) split between e1 and e2.
func benchLearned(n int) Learned {
	r := rand.New(rand.NewSource(1))
	learned := Learned{}
	for i := range n {
		bits := 8 + r.Intn(17)
		a := netip.AddrFrom4([4]byte{byte(r.Intn(224)), byte(r.Intn(256)), byte(r.Intn(256)), 0})
		p, _ := a.Prefix(bits)
		ext, nh := "e1", "203.0.113.1"
		if i%2 == 1 {
			ext, nh = "e2", "198.51.100.1"
		}
		learned[ext] = append(learned[ext], LearnedRoute{Prefix: p, NextHop: netip.MustParseAddr(nh), MED: uint32(r.Intn(3)), Neighbor: nh, ASPathLen: 2})
	}
	return learned
}

// BenchmarkCompileLearned compiles benchConfig with n BGP-learned routes.
//
//	go test ./controlplane/compile -run '^$' -bench CompileLearned -benchtime 1x -benchmem
func BenchmarkCompileLearned(b *testing.B) {
	c := benchConfig(b)
	for _, n := range benchSizes {
		learned := benchLearned(n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			for b.Loop() {
				t, _, err := Compile(c, learned)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(t.Vpcs[2].Routes)), "vpc1-routes")
			}
		})
	}
}

var benchSizes = []int{10_000, 100_000, 1_000_000}

// BenchmarkUpdateLearned measures one BGP update (a MED change, a
// withdrawal or a new /24, in turn) through UpdateLearned in a Compiler
// holding 1 M learned routes, and what the Compiler retains per route.
// Each iteration is one update; p50/p99 are over the iterations.
//
//	go test ./controlplane/compile -run '^$' -bench UpdateLearned -benchtime 2000x
func BenchmarkUpdateLearned(b *testing.B) {
	const n = 1_000_000
	c := benchConfig(b)
	learned := benchLearned(n)
	var before, withTables, compOnly runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	comp, tables, _, err := NewCompiler(c, learned)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&withTables)
	routes := 0
	for _, v := range tables.Vpcs {
		routes += len(v.Routes) + len(v.LocalRoutes)
	}
	tables = nil
	runtime.GC()
	runtime.ReadMemStats(&compOnly)

	r := rand.New(rand.NewSource(2))
	var lat []time.Duration
	changed := 0
	i := 0
	for b.Loop() {
		ext := []string{"e1", "e2"}[i%2]
		src := learned[ext][r.Intn(len(learned[ext]))]
		var add, withdraw []LearnedRoute
		switch i % 3 {
		case 0:
			src.MED = uint32(r.Intn(5))
			add = []LearnedRoute{src}
		case 1:
			withdraw = []LearnedRoute{src}
		default:
			a := netip.AddrFrom4([4]byte{byte(r.Intn(224)), byte(r.Intn(256)), byte(r.Intn(256)), 0})
			src.Prefix = netip.PrefixFrom(a, 24)
			add = []LearnedRoute{src}
		}
		i++
		start := time.Now()
		d, err := comp.UpdateLearned(ext, add, withdraw)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range d.Vpcs {
			changed += len(v.UpsertRoutes) + len(v.RemoveRoutes) + len(v.UpsertLocalRoutes) + len(v.RemoveLocalRoutes)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(changed)/float64(len(lat)), "routes-changed/update")
	b.ReportMetric(float64(compOnly.HeapAlloc-before.HeapAlloc)/n, "compiler-B/learned-route")
	b.ReportMetric(float64(withTables.HeapAlloc-compOnly.HeapAlloc)/float64(routes), "tables-B/route")
	b.ReportMetric(float64(withTables.HeapAlloc-before.HeapAlloc)/n, "compiler+tables-B/learned-route")
	runtime.KeepAlive(comp)
}

// BenchmarkSessionLearned measures a whole session through UpdateLearned
// in a Compiler holding 1 M learned routes: e1's neighbour withdraws its
// 500 k routes (vpc-1 fails over to e2), then announces them again.
//
//	go test ./controlplane/compile -run '^$' -bench SessionLearned -benchtime 1x -benchmem
func BenchmarkSessionLearned(b *testing.B) {
	c := benchConfig(b)
	learned := benchLearned(1_000_000)
	comp, _, _, err := NewCompiler(c, learned)
	if err != nil {
		b.Fatal(err)
	}
	for _, step := range []string{"withdraw", "announce"} {
		b.Run(step, func(b *testing.B) {
			for b.Loop() {
				var add, withdraw []LearnedRoute
				if step == "withdraw" {
					withdraw = learned["e1"]
				} else {
					add = learned["e1"]
				}
				d, err := comp.UpdateLearned("e1", add, withdraw)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, v := range d.Vpcs {
					n += len(v.UpsertRoutes) + len(v.RemoveRoutes) + len(v.UpsertLocalRoutes) + len(v.RemoveLocalRoutes)
				}
				b.ReportMetric(float64(n), "routes-changed")
			}
		})
	}
}

// BenchmarkInternetTable gives both externals of benchConfig the whole
// Internet table of ../shared/data (2.1 M learned routes; e1 preferred at
// metric 0), measures NewCompiler, what the Compiler and its tables hold,
// and then one update per iteration: e1 withdrawing a random prefix (vpc-1
// fails over to e2 for it) or announcing it again, in turn.
//
//	go test ./controlplane/compile -run '^$' -bench InternetTable -benchtime 2000x
func BenchmarkInternetTable(b *testing.B) {
	prefixes := fulltable.Prefixes(b)
	c := benchConfig(b)
	e1, e2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("198.51.100.1")
	learned := Learned{}
	for _, p := range prefixes {
		learned["e1"] = append(learned["e1"], LearnedRoute{Prefix: p, NextHop: e1, Neighbor: "203.0.113.1", ASPathLen: 3})
		learned["e2"] = append(learned["e2"], LearnedRoute{Prefix: p, NextHop: e2, Neighbor: "198.51.100.1", ASPathLen: 3})
	}
	n := 2 * len(prefixes)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	comp, tables, _, err := NewCompiler(c, learned)
	if err != nil {
		b.Fatal(err)
	}
	compile := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	routes := 0
	for _, v := range tables.Vpcs {
		routes += len(v.Routes) + len(v.LocalRoutes)
	}

	r := rand.New(rand.NewSource(3))
	var lat []time.Duration
	var gone []LearnedRoute
	i := 0
	for b.Loop() {
		var add, withdraw []LearnedRoute
		if i%2 == 0 {
			rt := learned["e1"][r.Intn(len(learned["e1"]))]
			withdraw, gone = []LearnedRoute{rt}, append(gone, rt)
		} else {
			add, gone = gone[len(gone)-1:], gone[:len(gone)-1]
		}
		i++
		t0 := time.Now()
		d, err := comp.UpdateLearned("e1", add, withdraw)
		if err != nil {
			b.Fatal(err)
		}
		if err := ApplyDelta(tables, d); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(compile.Seconds(), "newcompiler-s")
	b.ReportMetric(float64(routes), "table-routes")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "compiler+tables-B/learned-route")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	runtime.KeepAlive(comp)
}
