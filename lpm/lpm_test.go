package lpm

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/peergate/peergate/internal/fulltable"
)

// ref is the naive reference: a map scanned linearly on every lookup.
type ref map[netip.Prefix]uint32

func (r ref) lookup(a netip.Addr) (uint32, bool) {
	best, bv, ok := -1, uint32(0), false
	for p, v := range r {
		if p.Bits() > best && p.Contains(a) {
			best, bv, ok = p.Bits(), v, true
		}
	}
	return bv, ok
}

func (r ref) sorted() []Route {
	out := make([]Route, 0, len(r))
	for p, v := range r {
		out = append(out, Route{p, v})
	}
	slices.SortFunc(out, func(a, b Route) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

// comparePrefix orders IPv4 before IPv6, then by address, then by length:
// the order of Table.All.
func comparePrefix(a, b netip.Prefix) int {
	if a.Addr().Is4() != b.Addr().Is4() {
		if a.Addr().Is4() {
			return -1
		}
		return 1
	}
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// gen makes prefixes and addresses that overlap a lot: addresses come from
// a few random bases with a few random bits flipped.
type gen struct {
	r     *rand.Rand
	bases [][16]byte
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for range 4 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], g.r.Uint64())
		binary.BigEndian.PutUint64(b[8:], g.r.Uint64())
		g.bases = append(g.bases, b)
	}
	return g
}

func (g *gen) addr(v4 bool) netip.Addr {
	b := g.bases[g.r.IntN(len(g.bases))]
	n := 128
	if v4 {
		n = 32
	}
	for range g.r.IntN(4) {
		i := g.r.IntN(n)
		b[i/8] ^= 0x80 >> (i % 8)
	}
	if g.r.IntN(8) == 0 { // some fully random addresses
		binary.BigEndian.PutUint64(b[:8], g.r.Uint64())
		binary.BigEndian.PutUint64(b[8:], g.r.Uint64())
	}
	if v4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

func (g *gen) prefix(v4 bool) netip.Prefix {
	a := g.addr(v4)
	var l int
	switch x := g.r.IntN(10); {
	case x == 0:
		l = 0
	case x == 1:
		l = a.BitLen()
	default:
		l = g.r.IntN(a.BitLen() + 1)
	}
	return netip.PrefixFrom(a, l).Masked()
}

// directModes are the direct-pointing thresholds the differential tests
// run with: the default (small tables have none), always on, and one a
// churning table crosses in both directions.
var directModes = []struct {
	name string
	min  int
}{{"default", 0}, {"direct", 1}, {"direct-toggling", 40}}

// withDirect sets tab's direct-pointing threshold and republishes it.
func withDirect(tab *Table, min int) *Table {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	tab.dpMin = min
	tab.ready()
	tab.publish()
	return tab
}

// checkBatches compares the batched lookups of addrs with single ones.
func checkBatches(t *testing.T, tab *Table, addrs []netip.Addr) {
	t.Helper()
	var a4, want4, want6 []uint32
	var hi, lo []uint64
	for _, a := range addrs {
		v, ok := tab.Lookup(a)
		if !ok {
			v = NoValue
		}
		if a.Is4() {
			b := a.As4()
			a4 = append(a4, binary.BigEndian.Uint32(b[:]))
			want4 = append(want4, v)
			continue
		}
		b := a.As16()
		hi = append(hi, binary.BigEndian.Uint64(b[:8]))
		lo = append(lo, binary.BigEndian.Uint64(b[8:]))
		want6 = append(want6, v)
	}
	hits := func(vals []uint32) int {
		n := 0
		for _, v := range vals {
			if v != NoValue {
				n++
			}
		}
		return n
	}
	// Both ways of a batch: address by address (the table's own, as
	// small as tests make them) and the level-by-level walk of large
	// tables.
	for _, walk := range []bool{false, true} {
		s := *tab.Snapshot()
		s.walk = walk
		got := make([]uint32, len(a4))
		if n := s.Lookup4Batch(a4, got); !slices.Equal(got, want4) || n != hits(want4) {
			t.Fatalf("Lookup4Batch (walk %v) = %v (%d hits), want %v", walk, got, n, want4)
		}
		got = make([]uint32, len(hi))
		if n := s.Lookup6Batch(hi, lo, got); !slices.Equal(got, want6) || n != hits(want6) {
			t.Fatalf("Lookup6Batch (walk %v) = %v (%d hits), want %v", walk, got, n, want6)
		}
	}
}

func checkAgainst(t *testing.T, tab *Table, r ref, g *gen, probes int) {
	t.Helper()
	var seen []netip.Addr
	defer func() { checkBatches(t, tab, seen) }()
	check := func(a netip.Addr) {
		t.Helper()
		seen = append(seen, a)
		wv, wok := r.lookup(a)
		v, ok := tab.Lookup(a)
		if v != wv || ok != wok {
			t.Fatalf("Lookup(%v) = %d,%v, want %d,%v", a, v, ok, wv, wok)
		}
		if a.Is4() {
			b := a.As4()
			v, ok = tab.Lookup4(binary.BigEndian.Uint32(b[:]))
			if v != wv || ok != wok {
				t.Fatalf("Lookup4(%v) = %d,%v, want %d,%v", a, v, ok, wv, wok)
			}
		}
	}
	for range probes {
		check(g.addr(g.r.IntN(2) == 0))
	}
	for p := range r { // both ends of every prefix and just outside them
		check(p.Addr())
		last := lastAddr(p)
		check(last)
		if n := last.Next(); n.IsValid() {
			check(n)
		}
		if pr := p.Addr().Prev(); pr.IsValid() {
			check(pr)
		}
	}
	if tab.Len() != len(r) {
		t.Fatalf("Len() = %d, want %d", tab.Len(), len(r))
	}
	var got []Route
	for p, v := range tab.All() {
		got = append(got, Route{p, v})
	}
	if want := r.sorted(); !slices.Equal(got, want) {
		t.Fatalf("All() = %v\nwant %v", got, want)
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := p.Bits() + off; i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

func TestTableMatchesLinearScanOnRandomTables(t *testing.T) {
	cases := []struct {
		name    string
		seed    uint64
		v4Share int // percent of IPv4 prefixes
		ops     int
		delete  int // percent of operations that delete
	}{
		{"ipv4 only, inserts", 1, 100, 300, 0},
		{"ipv6 only, inserts", 2, 0, 300, 0},
		{"mixed families with deletes", 3, 50, 600, 30},
		{"heavy churn of a small set", 4, 50, 2000, 45},
		{"ipv4 with many deletes", 5, 100, 1500, 40},
		{"ipv6 with many deletes", 6, 0, 1500, 40},
	}
	for _, c := range cases {
		for _, dm := range directModes {
			t.Run(c.name+"/"+dm.name, func(t *testing.T) {
				testRandomTable(t, c.seed, c.v4Share, c.ops, c.delete, dm.min)
			})
		}
	}
}

// testRandomTable runs random inserts and deletes against the reference.
func testRandomTable(t *testing.T, seed uint64, v4Share, ops, delPct, dpMin int) {
	g := newGen(seed)
	tab, r := withDirect(New(), dpMin), ref{}
	var keys []netip.Prefix
	for i := range ops {
		if len(keys) > 0 && g.r.IntN(100) < delPct {
			p := keys[g.r.IntN(len(keys))]
			_, want := r[p]
			if got := tab.Delete(p); got != want {
				t.Fatalf("Delete(%v) = %v, want %v", p, got, want)
			}
			delete(r, p)
		} else {
			p := g.prefix(g.r.IntN(100) < v4Share)
			v := g.r.Uint32N(4) // few values, so leaf runs merge
			if g.r.IntN(2) == 0 {
				v = uint32(i)
			}
			if err := tab.Insert(p, v); err != nil {
				t.Fatal(err)
			}
			r[p] = v
			keys = append(keys, p)
		}
		if i%50 == 49 {
			checkAgainst(t, tab, r, g, 200)
		}
	}
	checkAgainst(t, tab, r, g, 500)
	built, err := Build(r.sorted())
	if err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, withDirect(built, dpMin), r, g, 500)
}

func TestEdgeCasesMatchLinearScan(t *testing.T) {
	pp := netip.MustParsePrefix
	type step struct {
		p   netip.Prefix
		v   uint32
		del bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"default routes alone", []step{{p: pp("0.0.0.0/0"), v: 1}, {p: pp("::/0"), v: 2}}},
		{"host routes under a default", []step{{p: pp("0.0.0.0/0"), v: 1}, {p: pp("10.1.2.3/32"), v: 2}, {p: pp("2001:db8::1/128"), v: 3}, {p: pp("::/0"), v: 4}}},
		{"replacing a covering prefix keeps more specifics", []step{{p: pp("10.0.0.0/8"), v: 1}, {p: pp("10.1.0.0/16"), v: 2}, {p: pp("10.1.2.0/24"), v: 3}, {p: pp("10.0.0.0/8"), v: 9}}},
		{"deleting a covering prefix keeps more specifics", []step{{p: pp("10.0.0.0/8"), v: 1}, {p: pp("10.1.0.0/16"), v: 2}, {p: pp("10.1.2.128/25"), v: 3}, {p: pp("10.0.0.0/8"), del: true}}},
		{"deleting the default under deep routes", []step{{p: pp("0.0.0.0/0"), v: 1}, {p: pp("192.168.1.1/32"), v: 2}, {p: pp("0.0.0.0/0"), del: true}}},
		{"deleting the only deep route prunes its nodes", []step{{p: pp("2001:db8:1:2:3:4:5:6/128"), v: 1}, {p: pp("2001:db8:1:2:3:4:5:6/128"), del: true}}},
		{"inserting a short prefix over many children", []step{{p: pp("10.1.0.0/16"), v: 1}, {p: pp("10.2.3.0/24"), v: 2}, {p: pp("10.255.255.255/32"), v: 3}, {p: pp("8.0.0.0/5"), v: 4}, {p: pp("8.0.0.0/5"), v: 5}}},
		{"prefixes at every stride boundary", []step{{p: pp("1.0.0.0/8"), v: 1}, {p: pp("1.2.0.0/16"), v: 2}, {p: pp("1.2.3.0/24"), v: 3}, {p: pp("1.2.3.4/32"), v: 4}, {p: pp("1.2.3.0/25"), v: 5}, {p: pp("1.0.0.0/7"), v: 6}, {p: pp("1.2.0.0/16"), del: true}}},
		{"unmasked prefix is masked", []step{{p: pp("10.1.2.3/8"), v: 1}, {p: pp("10.0.0.0/8"), del: true}}},
		{"deleting an absent prefix", []step{{p: pp("10.0.0.0/8"), v: 1}, {p: pp("10.0.0.0/9"), del: true}, {p: pp("11.0.0.0/8"), del: true}}},
		{"mapped ipv4 is ipv6", []step{{p: pp("::ffff:10.0.0.0/104"), v: 1}, {p: pp("10.0.0.0/8"), v: 2}}},
	}
	for _, c := range cases {
		for _, dm := range directModes {
			t.Run(c.name+"/"+dm.name, func(t *testing.T) {
				tab, r := withDirect(New(), dm.min), ref{}
				for _, s := range c.steps {
					m := s.p.Masked()
					if s.del {
						_, want := r[m]
						if got := tab.Delete(s.p); got != want {
							t.Fatalf("Delete(%v) = %v, want %v", s.p, got, want)
						}
						delete(r, m)
						continue
					}
					if err := tab.Insert(s.p, s.v); err != nil {
						t.Fatal(err)
					}
					r[m] = s.v
				}
				checkAgainst(t, tab, r, newGen(7), 2000)
				for p, v := range r {
					if got, ok := tab.Get(p); !ok || got != v {
						t.Fatalf("Get(%v) = %d,%v, want %d", p, got, ok, v)
					}
				}
			})
		}
	}
}

func TestInsertRejectsBadInput(t *testing.T) {
	tab := New()
	if err := tab.Insert(netip.Prefix{}, 1); err == nil {
		t.Error("Insert of the zero prefix succeeded")
	}
	if err := tab.Insert(netip.MustParsePrefix("10.0.0.0/8"), NoValue); err == nil {
		t.Error("Insert of NoValue succeeded")
	}
	if _, err := Build([]Route{{netip.MustParsePrefix("10.0.0.0/8"), NoValue}}); err == nil {
		t.Error("Build with NoValue succeeded")
	}
	if tab.Delete(netip.Prefix{}) {
		t.Error("Delete of the zero prefix reported true")
	}
	if _, ok := tab.Lookup(netip.Addr{}); ok {
		t.Error("Lookup of the zero address found a route")
	}
}

func TestDeletingEverythingShrinksBackToAnEmptyTable(t *testing.T) {
	tab, empty := New(), New().Stats()
	g := newGen(11)
	var ps []netip.Prefix
	for i := range 5000 {
		p := g.prefix(i%2 == 0)
		ps = append(ps, p)
		if err := tab.Insert(p, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range ps {
		tab.Delete(p)
	}
	st := tab.Stats()
	if st.Prefixes != 0 || st.LookupBytes != empty.LookupBytes || st.RIBBytes > 4<<10 {
		t.Fatalf("after deleting all: %+v, want the empty table's %+v", st, empty)
	}
	if st.Bytes > 48<<10 {
		t.Fatalf("empty table after churn holds %d bytes", st.Bytes)
	}
}

func TestSmallTableStaysSmall(t *testing.T) {
	tab := New()
	for i := range 10 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
		if err := tab.Insert(p, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	if b := tab.Bytes(); b > 32<<10 {
		t.Fatalf("a ten-route table holds %d bytes, want kilobytes", b)
	}
}

func TestLoadReplacesContentAndBatchMatchesSingle(t *testing.T) {
	g := newGen(12)
	r := ref{}
	for range 300 {
		r[g.prefix(true)] = g.r.Uint32N(1000)
	}
	tab := New()
	if err := tab.Insert(netip.MustParsePrefix("1.2.3.0/24"), 5); err != nil {
		t.Fatal(err)
	}
	if err := tab.Load(r.sorted()); err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, tab, r, g, 1000)
	addrs := make([]uint32, 64)
	for i := range addrs {
		b := g.addr(true).As4()
		addrs[i] = binary.BigEndian.Uint32(b[:])
	}
	vals := make([]uint32, len(addrs))
	hits := tab.Lookup4Batch(addrs, vals)
	want := 0
	for i, a := range addrs {
		v, ok := tab.Lookup4(a)
		if ok {
			want++
		} else {
			v = NoValue
		}
		if vals[i] != v {
			t.Fatalf("batch[%d] = %d, want %d", i, vals[i], v)
		}
	}
	if hits != want {
		t.Fatalf("batch hits = %d, want %d", hits, want)
	}
}

// TestReadersNeverSeeHalfAppliedUpdates runs lock-free readers against a
// writer under the race detector. The writer keeps 10.0.0.0/8 at value 1 and
// churns routes beneath it whose values are even; a reader must always find
// either 1 or an even value, and 172.16.0.0/12 (never touched) always 7.
func TestReadersNeverSeeHalfAppliedUpdates(t *testing.T) {
	for _, dm := range directModes {
		t.Run(dm.name, func(t *testing.T) { testReaders(t, withDirect(New(), dm.min)) })
	}
}

func testReaders(t *testing.T, tab *Table) {
	must := func(err error) {
		if err != nil {
			t.Error(err)
		}
	}
	must(tab.Insert(netip.MustParsePrefix("10.0.0.0/8"), 1))
	must(tab.Insert(netip.MustParsePrefix("172.16.0.0/12"), 7))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := 10<<24 | rnd.Uint32N(1<<24)
				if v, ok := tab.Lookup4(a); !ok || (v != 1 && v%2 != 0) {
					t.Errorf("Lookup4(%08x) = %d,%v", a, v, ok)
					return
				}
				if v, ok := tab.Lookup4(172<<24 | 16<<16 | rnd.Uint32N(1<<20)); !ok || v != 7 {
					t.Errorf("Lookup4 in 172.16/12 = %d,%v", v, ok)
					return
				}
				if _, ok := tab.Lookup(netip.MustParseAddr("2001:db8::1")); ok {
					t.Error("found an IPv6 route in an IPv4-only table")
					return
				}
			}
		}()
	}
	rnd := rand.New(rand.NewPCG(99, 1))
	var live []netip.Prefix
	for i := range 3000 {
		if len(live) > 50 && rnd.IntN(2) == 0 {
			j := rnd.IntN(len(live))
			tab.Delete(live[j])
			live = slices.Delete(live, j, j+1)
			continue
		}
		a := netip.AddrFrom4([4]byte{10, byte(rnd.IntN(256)), byte(rnd.IntN(256)), byte(rnd.IntN(256))})
		p := netip.PrefixFrom(a, 9+rnd.IntN(24)).Masked()
		must(tab.Insert(p, uint32(2*i+2)))
		live = append(live, p)
	}
	close(stop)
	wg.Wait()
}

// FuzzTable decodes the input as operations (insert, delete, lookup) on
// short prefixes of both families and checks every lookup against the
// reference.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 8, 10, 0, 0, 0, 1, 2, 0, 10, 1, 2, 3})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 5, 1, 1, 0, 0, 0, 0, 0, 0, 2, 1, 0xfe, 0x80, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each input runs without and with direct pointing (on from the
		// first route), so the fuzzer drives its chunk updates too.
		for _, dm := range directModes {
			fuzzOps(t, dm.min, data)
		}
	})
}

// fuzzOps applies the operations data encodes (see FuzzTable).
func fuzzOps(t *testing.T, dpMin int, data []byte) {
	tab, r := withDirect(New(), dpMin), ref{}
	next := func(n int) []byte {
		if len(data) < n {
			return nil
		}
		b := data[:n]
		data = data[n:]
		return b
	}
	for {
		h := next(2)
		if h == nil {
			break
		}
		v4 := h[1]&1 == 0
		alen := 16
		if v4 {
			alen = 4
		}
		switch h[0] % 3 {
		case 0, 1:
			lb := next(1)
			ab := next(4)
			if lb == nil || ab == nil {
				return
			}
			a := fuzzAddr(ab, v4)
			p := netip.PrefixFrom(a, int(lb[0])%(8*alen+1)).Masked()
			if h[0]%3 == 0 {
				v := uint32(h[1] >> 1)
				if err := tab.Insert(p, v); err != nil {
					t.Fatal(err)
				}
				r[p] = v
			} else {
				_, want := r[p]
				if got := tab.Delete(p); got != want {
					t.Fatalf("Delete(%v) = %v, want %v", p, got, want)
				}
				delete(r, p)
			}
		case 2:
			ab := next(4)
			if ab == nil {
				return
			}
			a := fuzzAddr(ab, v4)
			wv, wok := r.lookup(a)
			if v, ok := tab.Lookup(a); v != wv || ok != wok {
				t.Fatalf("Lookup(%v) = %d,%v, want %d,%v", a, v, ok, wv, wok)
			}
		}
	}
	if tab.Len() != len(r) {
		t.Fatalf("Len() = %d, want %d", tab.Len(), len(r))
	}
}

// loadInternet reads the full-table prefix list, values = line numbers.
func loadInternet(tb testing.TB) []Route {
	tb.Helper()
	ps := fulltable.Prefixes(tb)
	out := make([]Route, len(ps))
	for i, p := range ps {
		out[i] = Route{p, uint32(i)}
	}
	return out
}

func TestFullTableBuildMatchesIncrementalInserts(t *testing.T) {
	if testing.Short() {
		t.Skip("full table in -short mode")
	}
	routes := loadInternet(t)
	built, err := Build(routes)
	if err != nil {
		t.Fatal(err)
	}
	inc := New()
	for _, rt := range routes {
		if err := inc.Insert(rt.Prefix, rt.Value); err != nil {
			t.Fatal(err)
		}
	}
	if built.Len() != inc.Len() {
		t.Fatalf("Len: built %d, incremental %d", built.Len(), inc.Len())
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		rt := routes[rnd.IntN(len(routes))]
		a := rt.Prefix.Addr().As16()
		if rt.Prefix.Addr().Is4() {
			binary.BigEndian.PutUint32(a[12:], binary.BigEndian.Uint32(a[12:])|rnd.Uint32()>>rt.Prefix.Bits())
		} else {
			a[15] ^= byte(rnd.Uint32()) // inside unless it is a /121+
		}
		addr := netip.AddrFrom16(a)
		if rt.Prefix.Addr().Is4() {
			addr = addr.Unmap()
		}
		v1, ok1 := built.Lookup(addr)
		v2, ok2 := inc.Lookup(addr)
		if v1 != v2 || ok1 != ok2 {
			t.Fatalf("Lookup(%v): built %d,%v, incremental %d,%v", addr, v1, ok1, v2, ok2)
		}
	}
	// Spot-check against the reference on a slice of the table: every
	// route's own first address must resolve to a prefix at least as long.
	for _, rt := range routes[:5000] {
		v, ok := built.Lookup(rt.Prefix.Addr())
		if !ok {
			t.Fatalf("Lookup(%v) found nothing", rt.Prefix.Addr())
		}
		if got := routes[v].Prefix; got.Bits() < rt.Prefix.Bits() || !got.Contains(rt.Prefix.Addr()) {
			t.Fatalf("Lookup(%v) = %v, shorter than %v", rt.Prefix.Addr(), got, rt.Prefix)
		}
	}
	i := 0
	for p := range built.All() {
		_ = p
		i++
	}
	if i != built.Len() {
		t.Fatalf("All yielded %d, Len %d", i, built.Len())
	}
}

func TestZeroTableIsUsable(t *testing.T) {
	var tab Table
	if _, ok := tab.Lookup4(1); ok {
		t.Fatal("zero table found a route")
	}
	if err := tab.Insert(netip.MustParsePrefix("10.0.0.0/8"), 3); err != nil {
		t.Fatal(err)
	}
	if v, ok := tab.Lookup(netip.MustParseAddr("10.1.2.3")); !ok || v != 3 {
		t.Fatalf("Lookup = %d,%v, want 3", v, ok)
	}
	var fresh Table
	if fresh.Len() != 0 || fresh.Delete(netip.MustParsePrefix("10.0.0.0/8")) {
		t.Fatal("a zero table is not empty")
	}
}

// fuzzAddr makes the fuzz input's 4 address bytes an IPv4 address, or the
// start of an IPv6 one.
func fuzzAddr(ab []byte, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte(ab))
	}
	var b [16]byte
	copy(b[:], ab)
	return netip.AddrFrom16(b)
}
