package flowtable

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

const sec = int64(time.Second)

var allPorts = Ports{Min: 1024, Total: 65536 - 1024, Start: 0, Span: 65536 - 1024, Tries: 16}

func newTable(t testing.TB, capacity int) *Table {
	t.Helper()
	tab, err := New(Config{Capacity: capacity, Timeouts: DefaultTimeouts(), Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func flow(i int, proto uint8) Flow {
	return Flow{Inner: 0x0a010100 + uint32(i%250), Remote: 0x08080808, InnerPort: uint16(10000 + i/250), RemotePort: 443, VPC: 1, Proto: proto}
}

func create(t testing.TB, tab *Table, f Flow, flags uint8, now int64) Entry {
	t.Helper()
	rnd := uint64(7)
	e, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, flags, now)
	if st != Created {
		t.Fatalf("create %+v: %v", f, st)
	}
	return e
}

func lookupOut(tab *Table, f Flow, flags uint8, now int64) (Entry, bool) {
	var e Entry
	ok := tab.LookupFlow(&f, tab.HashFlow(&f), flags, true, now, &e)
	return e, ok
}

func lookupIn(tab *Table, e Entry, flags uint8, now int64) (Entry, bool) {
	r := e.Reply()
	var got Entry
	ok := tab.LookupReply(&r, tab.HashReply(&r), flags, true, now, &got)
	return got, ok
}

func TestTCPStateMachine(t *testing.T) {
	type pkt struct {
		out   bool
		flags uint8
	}
	cases := []struct {
		name    string
		pkts    []pkt
		state   string
		timeout time.Duration
	}{
		{"a SYN from inside opens a syn-sent session with the transitory timeout", []pkt{{true, TCPSyn}}, "syn-sent", 240 * time.Second},
		{"a SYN-ACK reply establishes it with the established timeout", []pkt{{true, TCPSyn}, {false, TCPSyn | TCPAck}, {true, TCPAck}}, "established", 7440 * time.Second},
		{"a FIN from inside makes it half-closed and transitory", []pkt{{true, TCPSyn}, {false, TCPSyn | TCPAck}, {true, TCPFin | TCPAck}}, "half-closed", 240 * time.Second},
		{"FINs both ways close it", []pkt{{true, TCPSyn}, {false, TCPSyn | TCPAck}, {true, TCPFin | TCPAck}, {false, TCPFin | TCPAck}}, "closing", 240 * time.Second},
		{"a RST from the remote end resets it", []pkt{{true, TCPSyn}, {false, TCPSyn | TCPAck}, {false, TCPRst}}, "reset", 240 * time.Second},
		{"a RST from inside resets it", []pkt{{true, TCPSyn}, {false, TCPSyn | TCPAck}, {true, TCPRst | TCPAck}}, "reset", 240 * time.Second},
		{"a new SYN after a reset reopens the tuple", []pkt{{true, TCPSyn}, {false, TCPSyn | TCPAck}, {false, TCPRst}, {true, TCPSyn}}, "syn-sent", 240 * time.Second},
		{"a flow picked up mid-stream stays transitory", []pkt{{true, TCPAck}, {false, TCPAck}}, "active", 240 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := newTable(t, 16)
			f := flow(1, ProtoTCP)
			now := 1000 * sec
			var e Entry
			for n, p := range c.pkts {
				var ok bool
				switch {
				case n == 0:
					e = create(t, tab, f, p.flags, now)
					ok = true
				case p.out:
					e, ok = lookupOut(tab, f, p.flags, now)
				default:
					e, ok = lookupIn(tab, e, p.flags, now)
				}
				if !ok {
					t.Fatalf("packet %d: session not found", n)
				}
			}
			if got := e.State.String(); got != c.state {
				t.Errorf("state %q, want %q", got, c.state)
			}
			if got := time.Duration(int64(e.Deadline)*sec - now); got != c.timeout {
				t.Errorf("timeout %v, want %v", got, c.timeout)
			}
		})
	}
}

func TestEveryTimeoutExpiresItsSession(t *testing.T) {
	cases := []struct {
		name    string
		proto   uint8
		flags   []uint8 // outbound, inbound, outbound...
		timeout time.Duration
	}{
		{"an established TCP session lives 7440 s idle", ProtoTCP, []uint8{TCPSyn, TCPSyn | TCPAck, TCPAck}, 7440 * time.Second},
		{"a TCP session that never completed lives 240 s", ProtoTCP, []uint8{TCPSyn}, 240 * time.Second},
		{"a closing TCP session lives 240 s", ProtoTCP, []uint8{TCPSyn, TCPSyn | TCPAck, TCPFin | TCPAck, TCPFin | TCPAck}, 240 * time.Second},
		{"a UDP session lives 300 s", ProtoUDP, []uint8{0, 0}, 300 * time.Second},
		{"an ICMP session lives 60 s", ProtoICMP, []uint8{0, 0}, 60 * time.Second},
		{"another protocol lives 300 s", 47, []uint8{0}, 300 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := newTable(t, 16)
			f := flow(3, c.proto)
			t0 := 5000 * sec
			e := create(t, tab, f, c.flags[0], t0)
			for n, fl := range c.flags[1:] {
				var ok bool
				if n%2 == 0 {
					e, ok = lookupIn(tab, e, fl, t0)
				} else {
					e, ok = lookupOut(tab, f, fl, t0)
				}
				if !ok {
					t.Fatal("session lost")
				}
			}
			last := t0 + int64(c.timeout) - sec
			if _, ok := lookupIn(tab, e, TCPAck, last); !ok {
				t.Fatalf("session gone a second before its %v timeout", c.timeout)
			}
			// That reply refreshed it: it now lives until last+timeout.
			end := last + int64(c.timeout)
			if n := tab.Sweep(end-sec, tab.Slots()); n != 0 {
				t.Fatalf("sweep a second early freed %d", n)
			}
			if _, ok := lookupOut(tab, f, 0, end); ok {
				t.Fatal("session still matches after its timeout")
			}
			if n := tab.Sweep(end, tab.Slots()); n != 1 {
				t.Fatalf("sweep freed %d sessions, want 1", n)
			}
			if c := tab.Counters(); c.Expired != 1 || c.Live != 0 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

func TestDNSReplyClosesItsSession(t *testing.T) {
	cases := []struct {
		name     string
		keep     bool
		wantOpen bool
	}{
		{"by default the reply closes the session at once", false, false},
		{"with KeepDNS the session stays for the UDP timeout", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			to := DefaultTimeouts()
			to.KeepDNS = c.keep
			tab, err := New(Config{Capacity: 8, Timeouts: to, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			f := flow(1, ProtoUDP)
			f.RemotePort = DNSPort
			e := create(t, tab, f, 0, 10*sec)
			if _, ok := lookupIn(tab, e, 0, 10*sec); !ok {
				t.Fatal("the DNS reply found no session")
			}
			_, open := lookupOut(tab, f, 0, 10*sec)
			if open != c.wantOpen {
				t.Fatalf("session open after the reply: %v, want %v", open, c.wantOpen)
			}
		})
	}
}

func TestFullTableDropsNewSessionsAndKeepsOld(t *testing.T) {
	tab := newTable(t, 100)
	rnd := uint64(3)
	now := 100 * sec
	for i := 0; i < 100; i++ {
		f := flow(i, ProtoUDP)
		if _, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, 0, now); st != Created {
			t.Fatalf("flow %d: %v", i, st)
		}
	}
	for i := 100; i < 110; i++ {
		f := flow(i, ProtoUDP)
		if _, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, 0, now); st != Full {
			t.Fatalf("flow %d beyond capacity: %v", i, st)
		}
	}
	for i := 0; i < 100; i++ {
		if _, ok := lookupOut(tab, flow(i, ProtoUDP), 0, now); !ok {
			t.Fatalf("existing flow %d lost", i)
		}
	}
	if c := tab.Counters(); c.DroppedFull != 10 || c.Live != 100 || c.Created != 100 {
		t.Fatalf("counters %+v", c)
	}
}

func TestPortExhaustionIsDroppedAndCounted(t *testing.T) {
	tab := newTable(t, 100)
	ports := Ports{Min: 2000, Total: 1000, Start: 10, Span: 4, Tries: 200}
	rnd := uint64(9)
	used := map[uint16]bool{}
	for i := 0; i < 6; i++ {
		f := flow(i, ProtoTCP) // same remote endpoint, different inner hosts
		e, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &ports, &rnd, 1, 1, TCPSyn, 0)
		if i < 4 {
			if st != Created {
				t.Fatalf("flow %d: %v", i, st)
			}
			if e.PublicPort < 2010 || e.PublicPort > 2013 || used[e.PublicPort] {
				t.Fatalf("flow %d got port %d (used %v)", i, e.PublicPort, used)
			}
			used[e.PublicPort] = true
			continue
		}
		if st != NoPort {
			t.Fatalf("flow %d with 4 ports taken: %v", i, st)
		}
	}
	if c := tab.Counters(); c.DroppedPortsExhausted != 2 || c.Live != 4 {
		t.Fatalf("counters %+v", c)
	}
	// Another remote endpoint may reuse the same public ports.
	f := flow(9, ProtoTCP)
	f.Remote++
	if _, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &ports, &rnd, 1, 1, TCPSyn, 0); st != Created {
		t.Fatalf("flow to another endpoint: %v", st)
	}
}

func TestChurnReusesMemory(t *testing.T) {
	tab := newTable(t, 1000)
	rnd := uint64(5)
	now := int64(0)
	for round := 0; round < 20; round++ {
		for i := 0; i < 1000; i++ {
			f := flow(round*1000+i, ProtoICMP)
			f.InnerPort = uint16(round*1000 + i)
			if _, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, 0, now); st != Created {
				t.Fatalf("round %d flow %d: %v", round, i, st)
			}
		}
		now += 61 * sec
		if n := tab.Sweep(now, tab.Slots()); n != 1000 {
			t.Fatalf("round %d: swept %d", round, n)
		}
	}
	if c := tab.Counters(); c.Created != 20000 || c.Expired != 20000 || c.Live != 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestPublicPortIsUniquePerRemoteEndpoint(t *testing.T) {
	tab := newTable(t, 50000)
	ports := Ports{Min: 1024, Total: 64512, Start: 0, Span: 512, Tries: 32}
	rnd := uint64(11)
	for i := 0; i < 40000; i++ {
		f := Flow{Inner: 0x0a000000 + uint32(i%1000), Remote: 0x01010100 + uint32(i%3), InnerPort: uint16(i / 1000), RemotePort: 53, VPC: uint16(i % 2), Proto: ProtoUDP}
		tab.Create(&f, tab.HashFlow(&f), 0xc0a80100+uint32(i%2), &ports, &rnd, 1, 1, 0, 0)
	}
	seen := map[Reply]Flow{}
	tab.Walk(0, func(e *Entry) bool {
		r := e.Reply()
		if prev, dup := seen[r]; dup {
			t.Fatalf("%+v serves %+v and %+v", r, prev, e.Flow)
		}
		seen[r] = e.Flow
		return true
	})
	c := tab.Counters()
	if int(c.Live) != len(seen) || c.Created+c.DroppedPortsExhausted != 40000 {
		t.Fatalf("counters %+v, walked %d", c, len(seen))
	}
	t.Logf("%d sessions, %d dropped for ports", c.Live, c.DroppedPortsExhausted)
}

// Forward packets are handled by one worker, replies by another, a third
// sweeps: every reply finds the session its forward packet created.
func TestTwoWorkersSeeOneSessionFromBothDirections(t *testing.T) {
	tab, err := New(Config{Capacity: 20000, Timeouts: DefaultTimeouts(), Stripes: 16, Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	entries := make(chan Entry, 256)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(3)
	go func() { // worker 0: outbound
		defer wg.Done()
		defer close(entries)
		rnd := uint64(1)
		for i := 0; i < n; i++ {
			f := flow(i, ProtoTCP)
			e, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, TCPSyn, sec)
			if st != Created {
				errs <- fmt.Errorf("flow %d: %v", i, st)
				return
			}
			entries <- e
		}
	}()
	go func() { // worker 1: replies, then the next outbound packet
		defer wg.Done()
		for e := range entries {
			got, ok := lookupIn(tab, e, TCPSyn|TCPAck, sec)
			if !ok || got.Index != e.Index || got.Flow != e.Flow {
				errs <- fmt.Errorf("reply of %+v found %+v (%v)", e.Flow, got, ok)
				return
			}
			if again, ok := lookupOut(tab, e.Flow, TCPAck, sec); !ok || !again.State.Established() {
				errs <- fmt.Errorf("flow %+v after its reply: %+v", e.Flow, again)
				return
			}
		}
	}()
	stop := make(chan struct{})
	go func() { // sweeper: nothing is expired, it must free nothing
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if k := tab.Sweep(2*sec, 64); k != 0 {
				errs <- fmt.Errorf("sweeper freed %d live sessions", k)
				return
			}
		}
	}()
	go func() {
		for len(entries) > 0 || tab.Len() < n {
			if len(errs) > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		close(stop)
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Two workers creating the same flows at once end up with one session each.
func TestConcurrentCreatesOfOneFlowMakeOneSession(t *testing.T) {
	tab, err := New(Config{Capacity: 5000, Timeouts: DefaultTimeouts(), Stripes: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	idx := make([][]uint32, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := uint64(w + 1)
			for i := 0; i < 2000; i++ {
				f := flow(i, ProtoUDP)
				e, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, 0, sec)
				if st != Created && st != Found {
					t.Errorf("flow %d: %v", i, st)
					return
				}
				idx[w] = append(idx[w], e.Index)
			}
		}(w)
	}
	wg.Wait()
	if tab.Len() != 2000 {
		t.Fatalf("%d sessions for 2000 flows", tab.Len())
	}
	for i := range idx[0] {
		if idx[0][i] != idx[1][i] {
			t.Fatalf("flow %d: workers saw sessions %d and %d", i, idx[0][i], idx[1][i])
		}
	}
}

func TestKilledSessionsStopMatchingAndAreCounted(t *testing.T) {
	tab := newTable(t, 10)
	f := flow(1, ProtoUDP)
	e := create(t, tab, f, 0, sec)
	tab.Kill(&e)
	if _, ok := lookupOut(tab, f, 0, sec); ok {
		t.Fatal("killed session still matches")
	}
	if _, ok := lookupIn(tab, e, 0, sec); ok {
		t.Fatal("killed session still matches replies")
	}
	if n := tab.Sweep(sec, tab.Slots()); n != 1 {
		t.Fatalf("swept %d", n)
	}
	if c := tab.Counters(); c.Killed != 1 || c.Expired != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// LookupBurst gives what the one-packet lookups give, for forward and reply
// keys, present and absent, in a table full enough that many keys sit in
// overflow buckets.
func TestLookupBurstMatchesOnePacketLookups(t *testing.T) {
	const n = 3000
	tab := newTable(t, n)
	var entries []Entry
	for i := 0; i < n; i++ {
		entries = append(entries, createSpread(t, tab, i, ProtoUDP, 0))
	}
	cases := []struct {
		name string
		q    func(i int) Query
	}{
		{"forward keys of live sessions", func(i int) Query { return Query{Flow: entries[i].Flow} }},
		{"reply keys of live sessions", func(i int) Query { return Query{Reply: entries[i].Reply(), Reverse: true} }},
		{"absent forward keys", func(i int) Query { f := entries[i].Flow; f.RemotePort = 80; return Query{Flow: f} }},
		{"absent reply keys", func(i int) Query {
			r := entries[i].Reply()
			r.PublicPort++
			r.Remote++
			return Query{Reply: r, Reverse: true}
		}},
		{"alternating directions", func(i int) Query {
			if i%2 == 0 {
				return Query{Flow: entries[i].Flow}
			}
			return Query{Reply: entries[i].Reply(), Reverse: true}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			qs := make([]Query, n)
			for i := range qs {
				qs[i] = c.q(i)
			}
			tab.LookupBurst(qs, sec) // several bursts and a partial one
			for i := range qs {
				q := &qs[i]
				var want Entry
				var found bool
				if q.Reverse {
					found = tab.LookupReply(&q.Reply, tab.HashReply(&q.Reply), 0, false, sec, &want)
				} else {
					found = tab.LookupFlow(&q.Flow, tab.HashFlow(&q.Flow), 0, false, sec, &want)
				}
				if q.Found != found || (found && q.Entry != want) {
					t.Fatalf("query %d: burst found %v %+v, one-packet lookup %v %+v", i, q.Found, q.Entry, found, want)
				}
			}
		})
	}
}

// Burst lookups of long-lived sessions keep finding them while another
// worker creates and expires sessions in the same stripes (run with -race).
func TestLookupBurstUnderChurn(t *testing.T) {
	to := DefaultTimeouts()
	to.UDP = time.Second
	// The stable sessions (TCP, opening) must outlive the churn's clock,
	// which moves a quarter second per 64 creations: with the default 240 s
	// the sweeper expired them after ~61 000 creations, which a churn
	// goroutine scheduled ahead of the lookups reached (1 run in ~400).
	to.TCPTransitory = 365 * 24 * time.Hour
	tab, err := New(Config{Capacity: 4000, Timeouts: to, Stripes: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	const stable = 500
	var entries []Entry
	for i := 0; i < stable; i++ {
		entries = append(entries, createSpread(t, tab, i, ProtoTCP, TCPSyn))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // churn: UDP sessions live one second and are swept
		defer close(done)
		rnd := uint64(3)
		for i, now := 0, 2*sec; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := flow(100000+i%3000, ProtoUDP)
			f.Remote += uint32(i % 3000)
			tab.Create(&f, tab.HashFlow(&f), 0xc0a80102, &allPorts, &rnd, 1, 1, 0, now)
			if i%64 == 63 {
				now += sec / 4
				tab.Sweep(now, 256)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	qs := make([]Query, stable)
	for round := 0; round < 200; round++ {
		for i := range qs {
			if i%2 == 0 {
				qs[i] = Query{Flow: entries[i].Flow}
			} else {
				qs[i] = Query{Reply: entries[i].Reply(), Reverse: true}
			}
		}
		tab.LookupBurst(qs, sec)
		for i := range qs {
			if !qs[i].Found || qs[i].Entry.Index != entries[i].Index || qs[i].Entry.Flow != entries[i].Flow {
				t.Fatalf("round %d, session %d: found %v %+v, want %+v", round, i, qs[i].Found, qs[i].Entry, entries[i])
			}
		}
	}
}

// createSpread creates session i toward its own remote endpoint.
func createSpread(t *testing.T, tab *Table, i int, proto, flags uint8) Entry {
	t.Helper()
	f := flow(i, proto)
	f.Remote += uint32(i)
	rnd := uint64(i + 1)
	e, st := tab.Create(&f, tab.HashFlow(&f), 0xc0a80101, &allPorts, &rnd, 1, 1, flags, sec)
	if st != Created {
		t.Fatalf("create %+v: %v", f, st)
	}
	return e
}

// TestSeeHashesAsKeys: the hashes Sweep computes from a session's words
// (see) are those of its forward and reverse keys, for every field at its
// extremes; expire would otherwise look for the session in the wrong
// buckets.
func TestSeeHashesAsKeys(t *testing.T) {
	tab := newTable(t, 64)
	cases := []struct {
		name string
		f    Flow
		pub  uint32
		port uint16
	}{
		{"udp", Flow{Inner: 0x0a000001, Remote: 0x08080808, InnerPort: 1000, RemotePort: 53, VPC: 1, Proto: ProtoUDP}, 0xc0a80101, 40000},
		{"tcp high bits", Flow{Inner: 0xffffffff, Remote: 0xfffffffe, InnerPort: 0xffff, RemotePort: 0xfffe, VPC: 0xffff, Proto: ProtoTCP}, 0xfffffffd, 0xffff},
		{"icmp zeros", Flow{Inner: 0, Remote: 0, InnerPort: 7, RemotePort: 0, VPC: 0, Proto: ProtoICMP}, 0, 1024},
		{"other proto", Flow{Inner: 0x80000000, Remote: 1, InnerPort: 0x8000, RemotePort: 1, VPC: 0x8000, Proto: 0xff}, 0x80000001, 0x8001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fw0, _, _ := flowWords(&c.f)
			w1 := uint64(c.pub) | uint64(c.f.InnerPort)<<32 | uint64(c.f.RemotePort)<<48
			w2 := uint64(c.port) | uint64(c.f.VPC)<<16 | uint64(3)<<32 | uint64(c.f.Proto)<<48
			var v victim
			tab.see(&v, 5, fw0, w1, w2)
			e := unpack(5, fw0, w1, w2, 0)
			r := e.Reply()
			if e.Flow != c.f || e.Public != c.pub || e.PublicPort != c.port {
				t.Fatalf("words unpack to %+v", e)
			}
			if want := tab.HashFlow(&c.f); v.fh != want {
				t.Errorf("forward hash %#x, want %#x", v.fh, want)
			}
			if want := tab.HashReply(&r); v.rh != want {
				t.Errorf("reverse hash %#x, want %#x", v.rh, want)
			}
		})
	}
}

// TestSpinLock: the stripe lock excludes (a plain counter incremented under
// it by several goroutines adds up; the race detector checks the ordering),
// TryLock fails while it is held, and waiters get it when more goroutines
// than processors contend (a preempted holder is yielded to).
func TestSpinLock(t *testing.T) {
	for _, workers := range []int{1, 4, 32} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			var l spinLock
			n := 0
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < 2000; k++ {
						if k%2 == 0 {
							l.Lock()
						} else {
							for !l.TryLock() {
								runtime.Gosched()
							}
						}
						n++
						l.Unlock()
					}
				}()
			}
			wg.Wait()
			if n != workers*2000 {
				t.Fatalf("counter %d, want %d", n, workers*2000)
			}
			l.Lock()
			if l.TryLock() {
				t.Fatal("TryLock took a held lock")
			}
			l.Unlock()
			if !l.TryLock() {
				t.Fatal("TryLock failed on a free lock")
			}
		})
	}
}
