package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/peergate/peergate/internal/fulltable"
)

// internetPrefixes is the full Internet table of ../shared/data.
func internetPrefixes(t testing.TB) []netip.Prefix { return fulltable.Prefixes(t) }

// feed makes the test peer originate every prefix; a few MED values and
// next hops vary the attributes as a real table does.
func (p *testPeer) feed(prefixes []netip.Prefix) {
	p.t.Helper()
	ctx := context.Background()
	for i, pfx := range prefixes {
		nh := "192.0.2.1"
		if pfx.Addr().Is6() {
			nh = "2001:db8::1"
		}
		path := peerPath(pfx.String(), nh, uint32(i%16), true)
		if _, err := p.srv.AddPath(ctx, &api.AddPathRequest{Path: path}); err != nil {
			p.t.Fatalf("test peer: announce %v: %v", pfx, err)
		}
	}
}

// counter is a light subscriber for large tables: it counts routes held
// and reports when a watched prefix arrives.
type counter struct {
	mu      sync.Mutex
	held    int
	batches int
	up      time.Time
	full    time.Time
	target  int
	watch   netip.Prefix
	hit     chan time.Time
}

func count(t testing.TB, s *Speaker, target int) *counter {
	ch, cancel := s.Subscribe()
	t.Cleanup(cancel)
	c := &counter{target: target, hit: make(chan time.Time, 1)}
	go func() {
		for ev := range ch {
			now := time.Now()
			c.mu.Lock()
			switch ev.Kind {
			case SessionUp:
				c.up = now
			case RoutesChanged:
				c.batches++
				for i := range ev.Updates {
					u := &ev.Updates[i]
					if u.Withdraw {
						c.held--
					} else {
						c.held++ // the full table arrives once per prefix
					}
					if u.Route.Prefix == c.watch && c.watch.IsValid() {
						select {
						case c.hit <- now:
						default:
						}
					}
				}
				if c.full.IsZero() && c.held >= c.target {
					c.full = now
				}
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *counter) snapshot() (held, batches int, up, full time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held, c.batches, c.up, c.full
}

func (c *counter) setWatch(p netip.Prefix) {
	c.mu.Lock()
	c.watch = p
	c.mu.Unlock()
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// updateLatencies announces and withdraws one prefix n times and returns
// the sorted times from the peer's API call to the subscriber seeing it.
func updateLatencies(t testing.TB, peer *testPeer, c *counter, n int) []time.Duration {
	const probe = "192.0.2.0/24"
	c.setWatch(netip.MustParsePrefix(probe))
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if i%2 == 0 {
			peer.announce(probe, "192.0.2.1", uint32(i))
		} else {
			peer.withdraw(probe, "192.0.2.1")
		}
		select {
		case at := <-c.hit:
			out = append(out, at.Sub(start))
		case <-time.After(waitLimit):
			t.Fatalf("update %d of %s never reached the subscriber", i, probe)
		}
	}
	slices.Sort(out)
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// fullTableBird is BIRD originating the whole table from two static
// protocols and exporting it to the gateway, with a MED on IPv4.
func fullTableBird(dir string, prefixes []netip.Prefix, port uint16) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id 10.255.0.9;\nlog \"%s/bird.log\" { warning, error, fatal };\nprotocol device {}\n", dir)
	for _, fam := range []struct {
		name string
		v6   bool
	}{{"ipv4", false}, {"ipv6", true}} {
		fmt.Fprintf(&b, "protocol static table_%s {\n  %s;\n", fam.name, fam.name)
		for _, p := range prefixes {
			if p.Addr().Is6() == fam.v6 {
				fmt.Fprintf(&b, "  route %s blackhole;\n", p)
			}
		}
		b.WriteString("}\n")
	}
	fmt.Fprintf(&b, `protocol bgp peergate {
  local 127.0.0.2 port %d as %d;
  neighbor 127.0.0.1 as %d;
  multihop;
  passive on;
  ipv4 { import none; export filter { bgp_med = 10; accept; }; };
  ipv6 { import none; export all; next hop address 2001:db8::9; };
}
`, port, e1ASN, gatewayASN)
	return b.String()
}

// The full Internet table from BIRD: time from session up to every route
// delivered to a subscriber, memory, then the latency of single updates
// from a second (gobgp) neighbour while the table is held. Figures are
// logged, not asserted.
func TestSpeakerTakesAFullInternetTableFromBird(t *testing.T) {
	if testing.Short() {
		t.Skip("full-table test skipped with -short")
	}
	prefixes := internetPrefixes(t)
	v6 := 0
	for _, p := range prefixes {
		if p.Addr().Is6() {
			v6++
		}
	}
	t.Logf("table: %d prefixes (%d IPv4, %d IPv6)", len(prefixes), len(prefixes)-v6, v6)

	ctx := context.Background()
	birdPort := freePort(t, "127.0.0.2")
	start := time.Now()
	b := startBirdWith(t, func(dir string) string { return fullTableBird(dir, prefixes, birdPort) })
	wantCount := fmt.Sprintf("Total: %d of %d routes", len(prefixes), len(prefixes))
	eventually(t, "bird's table loaded", func() bool {
		out, err := b.birdc("show", "route", "count")
		return err == nil && strings.Contains(out, wantCount)
	})
	t.Logf("bird loaded the table in %v", time.Since(start))
	probe := startPeer(t, "127.0.0.1", freePort(t, "127.0.0.1"), e2ASN, "10.255.0.3", gatewayASN)

	s := startSpeaker(t, gatewayASN)
	c := count(t, s, len(prefixes))
	before := heapAfterGC()
	cpuBefore := cpuTime()
	birdNb := Neighbor{VPC: "vpc-e1", Address: netip.MustParseAddr("127.0.0.2"), Port: birdPort, ASN: e1ASN}
	if err := s.SetNeighbors(ctx, []Neighbor{birdNb, probe.neighbor("vpc-e2")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * waitLimit); ; time.Sleep(time.Second) {
		held, batches, up, full := c.snapshot()
		if !full.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for the full table: %d routes in %d batches, session up at %v", held, batches, up)
		}
		if !up.IsZero() && time.Since(up).Round(time.Second)%(5*time.Second) == 0 {
			t.Logf("%v after session up: %d routes in %d batches", time.Since(up).Round(time.Second), held, batches)
		}
	}
	held, batches, up, full := c.snapshot()
	t.Logf("session up to %d routes at the subscriber: %v in %d batches; CPU used by this process meanwhile: %v (GOGC=%s, load average %s)",
		held, full.Sub(up), batches, cpuTime()-cpuBefore, os.Getenv("GOGC"), loadAverage())
	if got := s.RouteCount("vpc-e1"); got != len(prefixes) {
		t.Errorf("speaker holds %d routes, want %d", got, len(prefixes))
	}
	if r, ok := findRoute(s.Routes("vpc-e1"), "1.0.0.0/24"); !ok || r.MED != 10 || r.NextHop != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("1.0.0.0/24 = %+v (%v), want MED 10 via 127.0.0.2", r, ok)
	}
	after := heapAfterGC()
	t.Logf("heap growth with the table (gobgp adj-rib-in and RIB included): %.0f MB, %.0f bytes per route",
		float64(after-before)/1e6, float64(after-before)/float64(len(prefixes)))

	eventually(t, "probe session up", func() bool {
		for _, si := range s.Sessions() {
			if si.VPC == "vpc-e2" && si.Up {
				return true
			}
		}
		return false
	})
	lat := updateLatencies(t, probe, c, 200)
	t.Logf("single update with the full table held, peer API call to subscriber, %d updates: p50 %v, p99 %v, max %v",
		len(lat), percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1])

	start, cpuBefore = time.Now(), cpuTime()
	b.must("disable", "peergate")
	eventually(t, "full table withdrawn after session loss", func() bool {
		held, _, _, _ := c.snapshot()
		return held == 0
	})
	t.Logf("session loss to %d withdrawals at the subscriber: %v, CPU used meanwhile: %v (load average %s)",
		len(prefixes), time.Since(start), cpuTime()-cpuBefore, loadAverage())
	runtime.KeepAlive(s)
}

// cpuTime is the CPU (user and system) this process used so far: on a
// shared machine it says more than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func findRoute(rs []Route, prefix string) (Route, bool) {
	p := netip.MustParsePrefix(prefix)
	for _, r := range rs {
		if r.Prefix == p {
			return r, true
		}
	}
	return Route{}, false
}

// The store alone: what the speaker holds per route beyond gobgp's RIB.
func TestStoreHoldsAFullTableInUnder200BytesPerRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("full-table test skipped with -short")
	}
	prefixes := internetPrefixes(t)
	nh4, nh6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	before := heapAfterGC()
	n := newNeighbor(Neighbor{VPC: "vpc-e1", Address: netip.MustParseAddr("127.0.0.1"), ASN: e1ASN})
	for i, p := range prefixes {
		nh := nh4
		if p.Addr().Is6() {
			nh = nh6
		}
		n.learn(p, makeVal(nh, uint32(i%16), 3))
	}
	streaming := heapAfterGC()
	// What the speaker does when the stream pauses.
	n.compact()
	after := heapAfterGC()
	// The table was live at "before": keep it so until "after", or its
	// ~34 MB freed in between are subtracted from the store's size.
	runtime.KeepAlive(prefixes)
	per := float64(after-before) / float64(len(prefixes))
	t.Logf("store: %d routes, %.1f MB, %.1f bytes per route (%.1f while the changes were in maps)",
		n.count(), float64(after-before)/1e6, per, float64(streaming-before)/float64(len(prefixes)))
	if n.count() != len(prefixes) {
		t.Errorf("store holds %d routes, want %d", n.count(), len(prefixes))
	}
	if per > 200 {
		t.Errorf("store uses %.0f bytes per route, the bound is 200", per)
	}
	// What a consumer pays to re-read a full VPC instead of applying the
	// events' updates.
	s := New(testLogger(t))
	s.neighbors[n.cfg.Address] = n
	start := time.Now()
	rs := s.Routes("vpc-e1")
	t.Logf("Routes() of a full table: %d routes in %v", len(rs), time.Since(start))
}

// BenchmarkSingleUpdateLatency measures one BGP update from the peer's API
// call to the subscriber, with a 10 k-route table loaded.
func BenchmarkSingleUpdateLatency(b *testing.B) {
	ctx := context.Background()
	port := freePort(b, "127.0.0.1")
	peer := startPeer(b, "127.0.0.1", port, e1ASN, "10.255.0.2", gatewayASN)
	var table []netip.Prefix
	for i := range 10000 {
		table = append(table, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	peer.feed(table)
	s := startSpeaker(b, gatewayASN)
	c := count(b, s, len(table))
	if err := s.SetNeighbors(ctx, []Neighbor{peer.neighbor("vpc-e1")}); err != nil {
		b.Fatal(err)
	}
	eventually(b, "table loaded", func() bool {
		held, _, _, full := c.snapshot()
		return held >= len(table) && !full.IsZero()
	})
	b.ResetTimer()
	lat := updateLatencies(b, peer, c, b.N)
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
}
