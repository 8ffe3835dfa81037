package flowtable

import (
	"fmt"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/peergate/peergate/internal/prefetch"
)

const burst = 32

func fill(b *testing.B, sessions int) (*Table, []Flow) {
	b.Helper()
	tab, err := New(Config{Capacity: sessions, Timeouts: DefaultTimeouts(), Seed: 77})
	if err != nil {
		b.Fatal(err)
	}
	flows := make([]Flow, sessions)
	rnd := uint64(12345)
	for i := range flows {
		flows[i] = Flow{Inner: 0x0a000000 + uint32(i>>8), Remote: 0x08000000 + uint32(i*2654435761), InnerPort: uint16(i), RemotePort: 443, VPC: 1, Proto: ProtoTCP}
		f := &flows[i]
		if _, st := tab.Create(f, tab.HashFlow(f), 0xc0a80100+uint32(i&3), &allPorts, &rnd, 1, 1, TCPSyn, sec); st != Created {
			b.Fatalf("fill %d: %v", i, st)
		}
	}
	// Visit the flows in a random order so lookups miss the cache the way
	// real traffic does.
	for i := len(flows) - 1; i > 0; i-- {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		j := int(rnd % uint64(i+1))
		flows[i], flows[j] = flows[j], flows[i]
	}
	return tab, flows
}

// BenchmarkEstablished measures one outbound packet of an existing session:
// burst: LookupBurst over bursts of 32 (hash, prefetch buckets, peek tags and
// prefetch sessions, check candidates); passes: the same three passes made
// by the caller through the per-packet API (PrefetchBucket, PeekFlow,
// LookupFlow); single: one packet at a time, nothing prefetched.
func BenchmarkEstablished(b *testing.B) {
	sizes := []int{1000, 1 << 20}
	if os.Getenv("FLOWTABLE_BENCH_10M") != "" {
		sizes = append(sizes, 10<<20) // VPP's anchor size; 600 MB, slow to fill
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("sessions=%d/burst", n), func(b *testing.B) {
			tab, flows := fill(b, n)
			qs := make([]Query, burst)
			for k := range qs {
				qs[k].Touch, qs[k].TCPFlags = true, TCPAck
			}
			b.ReportAllocs()
			cpu := startCPU(b)
			b.ResetTimer()
			found := 0
			for i := 0; i < b.N; i += burst {
				base := i % (n - burst)
				for k := range qs {
					qs[k].Flow = flows[base+k]
				}
				tab.LookupBurst(qs, 2*sec)
				for k := range qs {
					if qs[k].Found {
						found++
					}
				}
			}
			b.StopTimer()
			cpu.report(b)
			if found < b.N-burst {
				b.Fatalf("found %d of %d", found, b.N)
			}
		})
		b.Run(fmt.Sprintf("sessions=%d/passes", n), func(b *testing.B) {
			tab, flows := fill(b, n)
			var h [burst]uint64
			b.ReportAllocs()
			cpu := startCPU(b)
			b.ResetTimer()
			found := 0
			var e Entry
			for i := 0; i < b.N; i += burst {
				base := i % (n - burst)
				fs := flows[base : base+burst]
				for k := range fs {
					h[k] = tab.HashFlow(&fs[k])
					tab.PrefetchBucket(h[k])
				}
				for k := range fs {
					tab.PeekFlow(h[k])
				}
				for k := range fs {
					if tab.LookupFlow(&fs[k], h[k], TCPAck, true, 2*sec, &e) {
						found++
					}
				}
			}
			b.StopTimer()
			cpu.report(b)
			if found < b.N-burst {
				b.Fatalf("found %d of %d", found, b.N)
			}
		})
		b.Run(fmt.Sprintf("sessions=%d/single", n), func(b *testing.B) {
			tab, flows := fill(b, n)
			b.ReportAllocs()
			cpu := startCPU(b)
			var e Entry
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := &flows[i%n]
				if !tab.LookupFlow(f, tab.HashFlow(f), TCPAck, true, 2*sec, &e) {
					b.Fatal("miss")
				}
			}
			b.StopTimer()
			cpu.report(b)
		})
	}
}

// BenchmarkNewSessions measures session creation in steady churn, with UDP
// sessions timing out so the table stays about half full and every 32nd
// creation sweeps 64 slots (two per session), as the pipeline does once per
// burst. single: one Create at a time, nothing prefetched; burst: bursts of
// 32 as nat.Translate makes them, every creation's buckets and free slot
// prefetched (PrefetchBucket, then PrepareNew with the hash already made)
// before the first CreateDrawn, which takes the port draw PrepareNew made.
func BenchmarkNewSessions(b *testing.B) {
	for _, mode := range []string{"single", "burst"} {
		b.Run(mode, func(b *testing.B) { benchNewSessions(b, mode == "burst") })
	}
}

func benchNewSessions(b *testing.B, prefetchBurst bool) {
	const capacity = 1 << 20
	to := DefaultTimeouts()
	to.UDP = time.Second
	tab, err := New(Config{Capacity: capacity, Timeouts: to, Seed: 5})
	if err != nil {
		b.Fatal(err)
	}
	ports := Ports{Min: 1024, Total: 64512, Start: 0, Span: 64512, Tries: 16}
	rnd := uint64(99)
	now := int64(0)
	dropped := 0
	var fs [burst]Flow
	var hs [burst]uint64
	var ds [burst]Draw
	var ent Entry
	b.ReportAllocs()
	cpu := startCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		if i%(capacity/4) < burst {
			now += int64(time.Second)
		}
		n := min(burst, b.N-i)
		for k := 0; k < n; k++ {
			j := i + k
			fs[k] = Flow{Inner: 0x0a000000 + uint32(j>>10), Remote: 0x08000000 + uint32(j&1023)*7919, InnerPort: uint16(j), RemotePort: 53, VPC: 1, Proto: ProtoUDP}
			hs[k] = tab.HashFlow(&fs[k])
			if prefetchBurst {
				tab.PrefetchBucket(hs[k])
			}
		}
		if prefetchBurst {
			r := rnd
			for k := 0; k < n; k++ {
				tab.PrepareNew(&ds[k], &fs[k], hs[k], 0xc0a80100+uint32((i+k)&3), &ports, r)
				r = nextRand(r)
			}
			for k := 0; k < n; k++ {
				if tab.CreateDrawn(&ent, &fs[k], hs[k], 0xc0a80100+uint32((i+k)&3), &ports, &rnd, &ds[k], 1, 1, 0, now) != Created {
					dropped++
				}
			}
		} else {
			for k := 0; k < n; k++ {
				if _, st := tab.Create(&fs[k], hs[k], 0xc0a80100+uint32((i+k)&3), &ports, &rnd, 1, 1, 0, now); st != Created {
					dropped++
				}
			}
		}
		tab.Sweep(now, 64)
	}
	b.StopTimer()
	cpu.report(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Msessions/s")
	b.ReportMetric(float64(dropped), "dropped")
}

// BenchmarkBytesPerSession reports the memory a table holds per session of
// capacity (all of it allocated by New).
func BenchmarkBytesPerSession(b *testing.B) {
	for _, n := range []int{1000, 1 << 20, 10 << 20} {
		b.Run(fmt.Sprintf("capacity=%d", n), func(b *testing.B) {
			var tab *Table
			for i := 0; i < b.N; i++ {
				var err error
				if tab, err = New(Config{Capacity: n, Timeouts: DefaultTimeouts(), Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(tab.Bytes())/float64(n), "bytes/session")
		})
	}
}

// BenchmarkGoMapReference is the same-run reference: a Go map from forward
// key to session index, looked up in the same random order, without any
// session state, aging, reverse key or concurrency safety. It shows what the
// machine's memory gives a plain hash table at the time of the run.
func BenchmarkGoMapReference(b *testing.B) {
	for _, n := range []int{1000, 1 << 20} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			_, flows := fill(b, n)
			m := make(map[Flow]uint32, n)
			for i := range flows {
				m[flows[i]] = uint32(i)
			}
			cpu := startCPU(b)
			b.ReportAllocs()
			b.ResetTimer()
			var sink uint32
			for i := 0; i < b.N; i++ {
				sink += m[flows[i%n]]
			}
			b.StopTimer()
			cpu.report(b)
			_ = sink
		})
	}
}

// BenchmarkMemoryReference measures what this machine's memory gives at the
// time of the run, over 96 MB of huge-page-advised arrays (the 1 M session
// table is 57 MB): latency, one dependent random load at a time (a pointer
// chase); chains=32, 32 independent chases (the random-line throughput with
// as many misses in flight as the core takes); lookup-shape, per packet one
// random line then a second random line whose address it holds, in three
// passes over bursts of 32 with prefetches, as LookupBurst does (bucket,
// then session), with nothing else: the floor of an established lookup.
func BenchmarkMemoryReference(b *testing.B) {
	const lines = 1 << 20
	a := make([]uint64, lines*8)   // 64 MB
	c := make([]uint64, lines*8/2) // 32 MB
	adviseHuge(unsafe.Pointer(&a[0]), uintptr(len(a)*8))
	adviseHuge(unsafe.Pointer(&c[0]), uintptr(len(c)*8))
	// A random cyclic order of a's lines for the chases; each line also
	// holds a random line of c for lookup-shape.
	perm := make([]uint32, lines)
	for i := range perm {
		perm[i] = uint32(i)
	}
	x := uint64(1)
	for i := lines - 1; i > 0; i-- {
		x = nextRand(x)
		j := int(x % uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	for i := range perm {
		x = nextRand(x)
		a[perm[i]*8] = uint64(perm[(i+1)%lines]) * 8
		a[perm[i]*8+1] = x % uint64(len(c)/8) * 8
	}
	for i := range c {
		c[i] = uint64(i)
	}
	chase := func(b *testing.B, chains int) {
		pos := make([]uint64, chains)
		for k := range pos {
			pos[k] = uint64(perm[k*(lines/chains)]) * 8
		}
		cpu := startCPU(b)
		b.ResetTimer()
		for i := 0; i < b.N; i += chains {
			for k := range pos {
				pos[k] = a[pos[k]]
			}
		}
		b.StopTimer()
		cpu.report(b)
		benchSink += pos[0]
	}
	b.Run("latency", func(b *testing.B) { chase(b, 1) })
	b.Run("chains=32", func(b *testing.B) { chase(b, 32) })
	b.Run("lookup-shape", func(b *testing.B) {
		var t [burst]uint64
		n := uint64(0)
		cpu := startCPU(b)
		b.ResetTimer()
		for i := 0; i < b.N; i += burst {
			base := i % (lines - burst)
			for k := 0; k < burst; k++ {
				prefetch.Line(uintptr(unsafe.Pointer(&a[perm[base+k]*8])))
			}
			for k := 0; k < burst; k++ {
				t[k] = a[perm[base+k]*8+1]
				prefetch.Line(uintptr(unsafe.Pointer(&c[t[k]])))
			}
			for k := 0; k < burst; k++ {
				if c[t[k]] == t[k] {
					n++
				}
			}
		}
		b.StopTimer()
		cpu.report(b)
		benchSink += n
	})
}

var benchSink uint64
