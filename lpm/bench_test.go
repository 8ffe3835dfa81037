package lpm

// Benchmarks on the full Internet table, peergate beside gaissmai/bart in
// one run (make bench-lpm). Sub-benchmark names are the implementation, so
// the output reads as a side-by-side table:
//
//	BenchmarkLookup4/peergate   BenchmarkLookup4/bart-fast   BenchmarkLookup4/bart
//
// Addresses are drawn inside random prefixes of the table (fixed seed), so
// every lookup walks to a real route; Lookup4Uniform draws them uniformly.

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaissmai/bart"
	"golang.org/x/sys/unix"

	"github.com/peergate/peergate/internal/fulltable"
)

// cpuTime reads a CPU-time clock. The machine these benchmarks run on is
// shared, so wall time per operation includes time spent descheduled; CPU
// time does not, and the summary reports both.
func cpuTime(clock int32) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func procCPU() time.Duration { return cpuTime(unix.CLOCK_PROCESS_CPUTIME_ID) }

type fullTable struct {
	routes       []Route
	v4, v6       []Route
	pg           *Table
	pgFlat       *Table // the same table without direct pointing (A/B in one run)
	bt           *bart.Table[uint32]
	bf           *bart.Fast[uint32]
	addr4        []uint32
	addr4u       []uint32
	addr4n       []netip.Addr
	addr4un      []netip.Addr
	addr6        []netip.Addr
	hi6, lo6     []uint64
	skip         string
	buildErr     error
	routesSorted []Route
}

var (
	fullOnce sync.Once
	full     fullTable
)

const nAddr = 1 << 20 // power of two: the loops index with i&(nAddr-1)

// loadFull reads the table and builds every implementation once per process.
func loadFull(b *testing.B) *fullTable {
	b.Helper()
	fullOnce.Do(func() {
		if fulltable.Find() == "" {
			full.skip = fulltable.File + " not found above the working directory"
			return
		}
		full.routes = loadInternet(b)
		full.routesSorted = slices.Clone(full.routes)
		slices.SortFunc(full.routesSorted, func(x, y Route) int { return comparePrefix(x.Prefix, y.Prefix) })
		for _, r := range full.routes {
			if r.Prefix.Addr().Is4() {
				full.v4 = append(full.v4, r)
			} else {
				full.v6 = append(full.v6, r)
			}
		}
		full.pg, full.buildErr = Build(full.routesSorted)
		if full.buildErr == nil {
			full.pgFlat, _ = Build(full.routesSorted)
			withDirect(full.pgFlat, 1<<62)
		}
		full.bt = new(bart.Table[uint32])
		full.bf = new(bart.Fast[uint32])
		for _, r := range full.routes {
			full.bt.Insert(r.Prefix, r.Value)
			full.bf.Insert(r.Prefix, r.Value)
		}
		rnd := rand.New(rand.NewPCG(42, 42))
		for range nAddr {
			p := full.v4[rnd.IntN(len(full.v4))].Prefix
			a4 := p.Addr().As4()
			a := binary.BigEndian.Uint32(a4[:])
			if p.Bits() < 32 {
				a |= rnd.Uint32() >> p.Bits()
			}
			full.addr4 = append(full.addr4, a)
			full.addr4n = append(full.addr4n, netip.AddrFrom4(addr4Bytes(a)))
			u := rnd.Uint32()
			full.addr4u = append(full.addr4u, u)
			full.addr4un = append(full.addr4un, netip.AddrFrom4(addr4Bytes(u)))

			p = full.v6[rnd.IntN(len(full.v6))].Prefix
			a16 := p.Addr().As16()
			hi, lo := binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:])
			if l := p.Bits(); l < 64 {
				hi |= rnd.Uint64() >> l
				lo = rnd.Uint64()
			} else if l < 128 {
				lo |= rnd.Uint64() >> (l - 64)
			}
			binary.BigEndian.PutUint64(a16[:8], hi)
			binary.BigEndian.PutUint64(a16[8:], lo)
			full.hi6 = append(full.hi6, hi)
			full.lo6 = append(full.lo6, lo)
			full.addr6 = append(full.addr6, netip.AddrFrom16(a16))
		}
	})
	if full.skip != "" {
		b.Skip(full.skip)
	}
	if full.buildErr != nil {
		b.Fatal(full.buildErr)
	}
	return &full
}

func addr4Bytes(a uint32) [4]byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return b
}

var sink uint32

func BenchmarkLookup4(b *testing.B) {
	f := loadFull(b)
	for _, im := range []struct {
		name string
		t    *Table
	}{{"peergate", f.pg}, {"peergate-nodirect", f.pgFlat}} {
		b.Run(im.name, func(b *testing.B) {
			s := im.t.Snapshot()
			var x uint32
			c0 := procCPU()
			for i := 0; b.Loop(); i++ {
				v, _ := s.Lookup4(f.addr4[i&(nAddr-1)])
				x += v
			}
			sink = x
			recordNs(b, c0)
		})
	}
	b.Run("peergate-netip", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.pg.Lookup(f.addr4n[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
	b.Run("bart-fast", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.bf.Lookup(f.addr4n[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
	b.Run("bart", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.bt.Lookup(f.addr4n[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
}

func BenchmarkLookup4Uniform(b *testing.B) {
	f := loadFull(b)
	b.Run("peergate", func(b *testing.B) {
		s := f.pg.Snapshot()
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := s.Lookup4(f.addr4u[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
	b.Run("bart-fast", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.bf.Lookup(f.addr4un[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
}

// BenchmarkLookup4Batch reports ns per address for bursts of 32, the
// figure to set beside rte_lpm's lookup_bulk / lpm_perf_autotest (which
// also overlaps independent lookups). -nodirect is the same table without
// direct pointing, -uniform the same walk on uniform random addresses.
func BenchmarkLookup4Batch(b *testing.B) {
	f := loadFull(b)
	for _, im := range []struct {
		name  string
		t     *Table
		addrs []uint32
	}{{"peergate", f.pg, f.addr4}, {"peergate-nodirect", f.pgFlat, f.addr4}, {"peergate-uniform", f.pg, f.addr4u}} {
		b.Run(im.name, func(b *testing.B) {
			vals := make([]uint32, 32)
			i := 0
			c0 := procCPU()
			for b.Loop() {
				im.t.Lookup4Batch(im.addrs[i:i+32], vals)
				i = (i + 32) & (nAddr - 1)
			}
			recordAddr(b, c0, 32)
		})
	}
}

// BenchmarkLookup6Batch is BenchmarkLookup4Batch for IPv6.
func BenchmarkLookup6Batch(b *testing.B) {
	f := loadFull(b)
	for _, im := range []struct {
		name string
		t    *Table
	}{{"peergate", f.pg}, {"peergate-nodirect", f.pgFlat}} {
		b.Run(im.name, func(b *testing.B) {
			vals := make([]uint32, 32)
			i := 0
			c0 := procCPU()
			for b.Loop() {
				im.t.Lookup6Batch(f.hi6[i:i+32], f.lo6[i:i+32], vals)
				i = (i + 32) & (nAddr - 1)
			}
			recordAddr(b, c0, 32)
		})
	}
}

// recordAddr reports wall and CPU ns per address of bursts of n.
func recordAddr(b *testing.B, c0 time.Duration, n int) {
	wall := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
	cpu := float64((procCPU() - c0).Nanoseconds()) / float64(b.N) / float64(n)
	b.ReportMetric(wall, "ns/addr")
	b.ReportMetric(cpu, "cpu-ns/addr")
	record(b, "ns/addr", wall)
	record(b, "cpu-ns/addr", cpu)
}

func BenchmarkLookup6(b *testing.B) {
	f := loadFull(b)
	for _, im := range []struct {
		name string
		t    *Table
	}{{"peergate", f.pg}, {"peergate-nodirect", f.pgFlat}} {
		b.Run(im.name, func(b *testing.B) {
			s := im.t.Snapshot()
			var x uint32
			c0 := procCPU()
			for i := 0; b.Loop(); i++ {
				j := i & (nAddr - 1)
				v, _ := s.Lookup6(f.hi6[j], f.lo6[j])
				x += v
			}
			sink = x
			recordNs(b, c0)
		})
	}
	b.Run("peergate-netip", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.pg.Lookup(f.addr6[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
	b.Run("bart-fast", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.bf.Lookup(f.addr6[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
	b.Run("bart", func(b *testing.B) {
		var x uint32
		c0 := procCPU()
		for i := 0; b.Loop(); i++ {
			v, _ := f.bt.Lookup(f.addr6[i&(nAddr-1)])
			x += v
		}
		sink = x
		recordNs(b, c0)
	})
}

// heapOf returns the heap bytes that build leaves reachable.
func heapOf(build func() any) int {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	x := build()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(x)
	return int(m1.HeapAlloc) - int(m0.HeapAlloc)
}

// BenchmarkMemory reports heap bytes per route of the full table (IPv4 and
// IPv6 together). The measured build runs once, whatever b.N is.
func BenchmarkMemory(b *testing.B) {
	f := loadFull(b)
	n := float64(len(f.routes))
	impls := []struct {
		name  string
		build func() any
	}{
		{"peergate", func() any { t, _ := Build(f.routesSorted); return t }},
		{"bart-lite", func() any {
			t := new(bart.Lite)
			for _, r := range f.routes {
				t.Insert(r.Prefix)
			}
			return t
		}},
		{"bart", func() any {
			t := new(bart.Table[uint32])
			for _, r := range f.routes {
				t.Insert(r.Prefix, r.Value)
			}
			return t
		}},
		{"bart-fast", func() any {
			t := new(bart.Fast[uint32])
			for _, r := range f.routes {
				t.Insert(r.Prefix, r.Value)
			}
			return t
		}},
	}
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			bytes := heapOf(im.build)
			for b.Loop() {
			}
			b.ReportMetric(float64(bytes)/n, "B/route")
			b.ReportMetric(float64(bytes)/(1<<20), "MiB")
			record(b, "B/route", float64(bytes)/n)
		})
	}
	b.Run("peergate-stats", func(b *testing.B) {
		st := f.pg.Stats()
		for b.Loop() {
		}
		b.ReportMetric(float64(st.Bytes)/n, "B/route")
		b.ReportMetric(float64(st.LookupBytes)/n, "lookup-B/route")
		b.ReportMetric(float64(st.RIBBytes)/n, "rib-B/route")
	})
}

// BenchmarkBuild builds the full table: peergate from the sorted list,
// bart by inserting (it has no bulk build).
func BenchmarkBuild(b *testing.B) {
	f := loadFull(b)
	b.Run("peergate", func(b *testing.B) {
		for b.Loop() {
			if _, err := Build(f.routesSorted); err != nil {
				b.Fatal(err)
			}
		}
		record(b, "ms/op", float64(b.Elapsed().Milliseconds())/float64(b.N))
	})
	b.Run("bart", func(b *testing.B) {
		for b.Loop() {
			t := new(bart.Table[uint32])
			for _, r := range f.routesSorted {
				t.Insert(r.Prefix, r.Value)
			}
		}
		record(b, "ms/op", float64(b.Elapsed().Milliseconds())/float64(b.N))
	})
}

// BenchmarkUpdate deletes a random route of the full table and inserts it
// back, timing each operation on its own to report the p50 and p99
// latency. peergate's updates are copy-on-write and publish a snapshot
// readers can use concurrently; bart-persist is bart's equivalent
// (InsertPersist/DeletePersist), bart its in-place update, which needs the
// caller to lock out readers. peergate-nodirect is peergate without the
// direct-pointing table, whose chunks each update rebuilds; peergate-copy
// is peergate with the in-place overwrite of level-1 records turned off
// (every level-1 change copies its sibling block and the root), an A/B in
// the same process.
func BenchmarkUpdate(b *testing.B) {
	f := loadFull(b)
	pick := func(rnd *rand.Rand) Route { return f.routes[rnd.IntN(len(f.routes))] }
	// timed runs op and returns its wall and thread CPU time; the caller
	// holds its OS thread so the thread clock is the operation's own.
	timed := func(op func()) (wall, cpu time.Duration) {
		c0 := cpuTime(unix.CLOCK_THREAD_CPUTIME_ID)
		t0 := time.Now()
		op()
		return time.Since(t0), cpuTime(unix.CLOCK_THREAD_CPUTIME_ID) - c0
	}
	report := func(b *testing.B, lat, cpu []time.Duration) {
		for _, m := range []struct {
			unit string
			d    []time.Duration
		}{{"", lat}, {"cpu-", cpu}} {
			slices.Sort(m.d)
			p50 := float64(m.d[len(m.d)/2].Nanoseconds())
			p99 := float64(m.d[len(m.d)*99/100].Nanoseconds())
			b.ReportMetric(p50, m.unit+"p50-ns")
			b.ReportMetric(p99, m.unit+"p99-ns")
			b.ReportMetric(float64(m.d[len(m.d)-1].Nanoseconds()), m.unit+"max-ns")
			record(b, m.unit+"p50-ns", p50)
			record(b, m.unit+"p99-ns", p99)
		}
	}
	// run times delete and re-insert of random routes of the full table.
	run := func(b *testing.B, del func(Route), ins func(Route)) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		rnd := rand.New(rand.NewPCG(7, 7))
		var lat, cpu []time.Duration
		for b.Loop() {
			r := pick(rnd)
			w1, c1 := timed(func() { del(r) })
			w2, c2 := timed(func() { ins(r) })
			lat = append(lat, w1, w2)
			cpu = append(cpu, c1, c2)
		}
		report(b, lat, cpu)
	}
	for _, im := range []struct {
		name    string
		dpMin   int
		copyAll bool
	}{{"peergate", 0, false}, {"peergate-copy", 0, true}, {"peergate-nodirect", 1 << 62, false}} {
		b.Run(im.name, func(b *testing.B) {
			t, err := Build(f.routesSorted)
			if err != nil {
				b.Fatal(err)
			}
			t.w.copyAll = im.copyAll
			withDirect(t, im.dpMin)
			run(b, func(r Route) { t.Delete(r.Prefix) }, func(r Route) {
				if err := t.Insert(r.Prefix, r.Value); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	// control is no update: a fixed in-cache copy of 8 KiB (a few µs, the
	// order of an update), timed the same way on the same locked thread,
	// so that its p99 shows how much of a p99 this machine adds by itself
	// (interrupts, steal, clock reads) in the same run.
	b.Run("control", func(b *testing.B) {
		src, dst := make([]byte, 8<<10), make([]byte, 8<<10)
		copyN := func(Route) {
			for range 32 {
				copy(dst, src)
			}
		}
		run(b, copyN, copyN)
	})
	b.Run("bart-persist", func(b *testing.B) {
		t := f.bt.Clone()
		run(b, func(r Route) { t = t.DeletePersist(r.Prefix) }, func(r Route) { t = t.InsertPersist(r.Prefix, r.Value) })
	})
	b.Run("bart", func(b *testing.B) {
		t := f.bt.Clone()
		run(b, func(r Route) { t.Delete(r.Prefix) }, func(r Route) { t.Insert(r.Prefix, r.Value) })
	})
}

// result is one figure of one implementation, kept for the summary table
// TestMain prints after a benchmark run.
type result struct {
	bench, impl, unit string
	v                 float64
}

var (
	resultsMu sync.Mutex
	results   []result
	procsRE   = regexp.MustCompile(`-\d+$`)
)

func record(b *testing.B, unit string, v float64) {
	name := strings.TrimPrefix(b.Name(), "Benchmark")
	bench, impl, _ := strings.Cut(name, "/")
	impl = procsRE.ReplaceAllString(impl, "")
	resultsMu.Lock()
	results = append(results, result{bench, impl, unit, v})
	resultsMu.Unlock()
}

// recordNs records wall and process CPU time per operation since c0.
func recordNs(b *testing.B, c0 time.Duration) {
	cpu := float64((procCPU() - c0).Nanoseconds()) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	record(b, "ns/op", float64(b.Elapsed().Nanoseconds())/float64(b.N))
	record(b, "cpu-ns/op", cpu)
}

func TestMain(m *testing.M) {
	code := m.Run()
	printSummary(os.Stdout)
	os.Exit(code)
}

// printSummary prints peergate beside every bart variant of the same
// benchmark with the ratio best-bart / peergate (above 1: peergate is
// faster or smaller).
func printSummary(w io.Writer) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(results) == 0 {
		return
	}
	type key struct{ bench, unit string }
	var keys []key
	vals := map[key]map[string]float64{}
	for _, r := range results {
		k := key{r.bench, r.unit}
		if vals[k] == nil {
			vals[k] = map[string]float64{}
			keys = append(keys, k)
		}
		vals[k][r.impl] = r.v
	}
	fmt.Fprintf(w, "\nsummary (lower is better; ratio = best bart / peergate)\n")
	fmt.Fprintf(w, "%-22s %-8s %12s %12s %12s %12s %12s %8s\n", "benchmark", "unit", "peergate", "bart-fast", "bart", "bart-lite", "bart-persist", "ratio")
	for _, k := range keys {
		v := vals[k]
		pg, ok := v["peergate"]
		if !ok {
			continue
		}
		col := func(impl string) string {
			if x, ok := v[impl]; ok {
				return fmt.Sprintf("%12.1f", x)
			}
			return fmt.Sprintf("%12s", "-")
		}
		best := 0.0
		for impl, x := range v {
			if strings.HasPrefix(impl, "bart") && (best == 0 || x < best) {
				best = x
			}
		}
		ratio := "-"
		if best > 0 && pg > 0 {
			ratio = fmt.Sprintf("%.2fx", best/pg)
		}
		fmt.Fprintf(w, "%-22s %-8s %12.1f %s %s %s %s %8s\n", k.bench, k.unit, pg,
			col("bart-fast"), col("bart"), col("bart-lite"), col("bart-persist"), ratio)
	}
}

// BenchmarkBatchSmallTable measures Lookup4Batch over bursts of 32 in a
// VPC-sized table (seven routes, all in cache), ns per burst: address by
// address, as tables below walkMin do, against the level-by-level walk of
// large tables (forced).
func BenchmarkBatchSmallTable(b *testing.B) {
	tab := New()
	for i, p := range []string{"10.1.0.0/16", "10.2.0.0/16", "172.16.0.0/16", "192.168.2.0/24", "10.9.0.0/16", "0.0.0.0/0", "10.2.0.7/32"} {
		if err := tab.Insert(netip.MustParsePrefix(p), uint32(i)); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	addrs := make([]uint32, 32)
	for i := range addrs {
		addrs[i] = 0xac100000 | r.Uint32()&0xffff // 172.16.0.0/16
	}
	vals := make([]uint32, len(addrs))
	for _, walk := range []bool{false, true} {
		s := *tab.Snapshot()
		if s.walk {
			b.Fatal("a seven-route table walks its batches")
		}
		s.walk = walk
		b.Run(map[bool]string{false: "by-address", true: "walk"}[walk], func(b *testing.B) {
			for b.Loop() {
				s.Lookup4Batch(addrs, vals)
			}
		})
	}
}
