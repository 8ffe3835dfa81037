package nat

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/peergate/peergate/flowtable"
)

const sec = int64(time.Second)

var pool30 = netip.MustParsePrefix("192.168.1.0/30")

// The fourth use case of the Peering document: vpc-1 (id 1) masqueraded onto
// 192.168.1.0/30 by two peerings (pools 1 and 2, toward vpc-e1 and vpc-e2).
func useCase4(t testing.TB, capacity int) *Stateful {
	t.Helper()
	s, err := NewStateful(Config{Capacity: capacity, Generation: 1, Seed: 42, Pools: []Pool{
		{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}},
		{ID: 2, VPC: 1, Prefixes: []netip.Prefix{pool30}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func inPool(a uint32) bool { return pool30.Contains(addr4(a)) }

func TestRoundTripTranslatesBothWays(t *testing.T) {
	cases := []struct {
		name  string
		out   func(t testing.TB) []byte
		reply func(t testing.TB, pub uint32, port uint16) []byte
		port  func(p []byte) uint16 // inner port/id of a packet toward the inside
	}{
		{"a UDP flow and its reply",
			func(t testing.TB) []byte { return udpPkt(t, "10.1.1.5", 5555, "8.8.4.4", 123) },
			func(t testing.TB, pub uint32, port uint16) []byte {
				return udpPkt(t, "8.8.4.4", 123, addr4(pub).String(), port)
			},
			func(p []byte) uint16 { return get16(p, 22) }},
		{"a TCP SYN and its SYN-ACK",
			func(t testing.TB) []byte {
				return tcpPkt(t, "10.1.1.5", 40000, "1.1.1.1", 443, true, false, false, false)
			},
			func(t testing.TB, pub uint32, port uint16) []byte {
				return tcpPkt(t, "1.1.1.1", 443, addr4(pub).String(), port, true, true, false, false)
			},
			func(p []byte) uint16 { return get16(p, 22) }},
		{"an ICMP echo and its reply, keyed by identifier",
			func(t testing.TB) []byte { return echoPkt(t, "10.1.1.5", "9.9.9.9", false, 777) },
			func(t testing.TB, pub uint32, port uint16) []byte {
				return echoPkt(t, "9.9.9.9", addr4(pub).String(), true, port)
			},
			func(p []byte) uint16 { return get16(p, 24) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := useCase4(t, 1000)
			p := c.out(t)
			orig := append([]byte(nil), p...)
			if r := s.TranslatePacket(sec, p, 1, 2, 1, false); r != OK {
				t.Fatalf("outbound: %v", r)
			}
			checkSums(t, p)
			pub := get32(p, 12)
			if !inPool(pub) || get32(p, 16) != get32(orig, 16) {
				t.Fatalf("outbound source %v", addr4(pub))
			}
			port := get16(p, 20)
			if p[9] == ipProtoICMP {
				port = get16(p, 24)
			}
			if port < 1024 {
				t.Fatalf("public port %d below 1024", port)
			}
			rp := c.reply(t, pub, port)
			if r := s.TranslatePacket(sec, rp, 2, 1, 2, true); r != OK {
				t.Fatalf("reply through the other peering's pool: %v", r)
			}
			checkSums(t, rp)
			if get32(rp, 16) != ip4("10.1.1.5") || c.port(rp) != origPort(orig) {
				t.Fatalf("reply delivered to %v:%d", addr4(get32(rp, 16)), c.port(rp))
			}
		})
	}
}

// origPort is the inside port (or echo identifier) of an outbound packet.
func origPort(p []byte) uint16 {
	if p[9] == ipProtoICMP {
		return get16(p, 24)
	}
	return get16(p, 20)
}

func TestOneHostGetsOneAddressAndHostsSpread(t *testing.T) {
	s := useCase4(t, 10000)
	used := map[uint32]int{}
	for h := 0; h < 64; h++ {
		var addr uint32
		for f := 0; f < 10; f++ {
			k := Key{VPC: 1, Proto: ipProtoUDP, Src: ip4("10.1.1.0") + uint32(h), Dst: ip4("8.8.8.8") + uint32(f), SrcPort: 1000, DstPort: 53}
			a, _, r := s.Outbound(1, &k, 0, sec)
			if r != OK {
				t.Fatal(r)
			}
			if f > 0 && a != addr {
				t.Fatalf("host %d got %v and %v", h, addr4(addr), addr4(a))
			}
			addr = a
		}
		used[addr]++
	}
	if len(used) != 4 {
		t.Fatalf("64 hosts used %d of the pool's 4 addresses: %v", len(used), used)
	}
}

func TestUnsolicitedTrafficIsDroppedAndCounted(t *testing.T) {
	s := useCase4(t, 100)
	cases := []struct {
		name string
		pkt  []byte
		want Reason
	}{
		{"a UDP packet to a pool address without a session", udpPkt(t, "8.8.8.8", 53, "192.168.1.1", 4000), DropUnsolicited},
		{"a TCP SYN to a pool address", tcpPkt(t, "8.8.8.8", 999, "192.168.1.2", 22, true, false, false, false), DropUnsolicited},
		{"a ping to a pool address", echoPkt(t, "8.8.8.8", "192.168.1.3", false, 1), DropUnsolicited},
		{"a port unreachable about nothing we sent", icmpError(t, "8.8.8.8", "192.168.1.1", 3, 3, udpPkt(t, "192.168.1.1", 5000, "8.8.8.8", 53)), DropUnsolicited},
		{"a GRE packet", append(ipLayerBytes(t, 47), make([]byte, 8)...), DropProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := s.TranslatePacket(sec, c.pkt, 2, 1, 1, true); r != c.want {
				t.Fatalf("got %v, want %v", r, c.want)
			}
		})
	}
	if n := s.Counters().Drops["nat_unsolicited"]; n != 4 {
		t.Fatalf("nat_unsolicited = %d", n)
	}
}

func ipLayerBytes(t testing.TB, proto uint8) []byte {
	p := udpPkt(t, "8.8.8.8", 1, "192.168.1.1", 2)[:20]
	p[9] = proto
	put16(p, 2, 28)
	put16(p, 10, 0)
	put16(p, 10, checksum(p))
	return p
}

// No public address:port may serve two live sessions toward one remote
// endpoint: with two peerings of vpc-1 and a second VPC all sharing the /30,
// and thousands of hosts talking to three DNS servers.
func TestPublicEndpointsAreUniqueAcrossPoolsSharingAPrefix(t *testing.T) {
	s, err := NewStateful(Config{Capacity: 100000, Generation: 1, Seed: 7, Pools: []Pool{
		{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}},
		{ID: 2, VPC: 1, Prefixes: []netip.Prefix{pool30}},
		{ID: 3, VPC: 2, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/29")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i := 0; i < 60000; i++ {
		pool := uint32(1 + i%3)
		vpc := uint32(1)
		if pool == 3 {
			vpc = 2
		}
		k := Key{VPC: vpc, Proto: ipProtoUDP, Src: ip4("10.1.0.0") + uint32(i%2000), Dst: ip4("8.8.8.0") + uint32(i%3), SrcPort: uint16(1000 + i/2000), DstPort: 53}
		if _, _, r := s.Outbound(pool, &k, 0, sec); r == OK {
			ok++
		}
	}
	type pub struct {
		public, remote netip.AddrPort
	}
	seen := map[pub]SessionInfo{}
	for _, si := range s.Sessions(sec, Filter{AllVPCs: true}) {
		k := pub{si.Public, si.Remote}
		if prev, dup := seen[k]; dup {
			t.Fatalf("%v toward %v serves %+v and %+v", si.Public, si.Remote, prev, si)
		}
		seen[k] = si
	}
	if len(seen) != ok || ok < 59000 {
		t.Fatalf("%d sessions listed, %d translated", len(seen), ok)
	}
}

func TestAPortFloodDropsWithTheCounterAndKeepsSessions(t *testing.T) {
	s := useCase4(t, 100000)
	// One host opens more flows to one server than its 8 blocks of 512
	// ports hold.
	first := Key{VPC: 1, Proto: ipProtoTCP, Src: ip4("10.1.1.9"), Dst: ip4("1.2.3.4"), SrcPort: 1, DstPort: 80}
	pub, port, r := s.Outbound(1, &first, flowtable.TCPSyn, sec)
	if r != OK {
		t.Fatal(r)
	}
	for i := 2; i < 6000; i++ {
		k := first
		k.SrcPort = uint16(i)
		s.Outbound(1, &k, flowtable.TCPSyn, sec)
	}
	c := s.Counters()
	if c.Drops["nat_ports_exhausted"] == 0 || c.Sessions > 4096 {
		t.Fatalf("counters after the flood: %+v", c)
	}
	reply := Key{Proto: ipProtoTCP, Src: first.Dst, Dst: pub, SrcPort: 80, DstPort: port}
	if _, addr, p, r := s.Inbound(1, &reply, flowtable.TCPSyn|flowtable.TCPAck, sec); r != OK || addr != first.Src || p != 1 {
		t.Fatalf("the first session after the flood: %v %v:%d", r, addr4(addr), p)
	}
	// Another server still gets ports.
	other := first
	other.Dst++
	if _, _, r := s.Outbound(1, &other, flowtable.TCPSyn, sec); r != OK {
		t.Fatalf("a flow to another server: %v", r)
	}
}

func TestFullTableDropsNewFlowsOnly(t *testing.T) {
	s := useCase4(t, 50)
	for i := 0; i < 60; i++ {
		k := Key{VPC: 1, Proto: ipProtoUDP, Src: ip4("10.1.1.1") + uint32(i), Dst: ip4("8.8.8.8"), SrcPort: 5, DstPort: 53}
		_, _, r := s.Outbound(1, &k, 0, sec)
		if want := map[bool]Reason{true: OK, false: DropFull}[i < 50]; r != want {
			t.Fatalf("flow %d: %v, want %v", i, r, want)
		}
	}
	if n := s.Counters().Drops["nat_table_full"]; n != 10 {
		t.Fatalf("nat_table_full = %d", n)
	}
}

func TestReconfigureKeepsSessionsWhosePeeringRemains(t *testing.T) {
	cases := []struct {
		name  string
		pools []Pool
		want  Reason
	}{
		{"the same pools", []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}}, {ID: 2, VPC: 1, Prefixes: []netip.Prefix{pool30}}}, OK},
		{"the peering removed", []Pool{{ID: 2, VPC: 1, Prefixes: []netip.Prefix{pool30}}}, DropStale},
		{"the pool moved to other addresses", []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.9.0/30")}}, {ID: 2, VPC: 1, Prefixes: []netip.Prefix{pool30}}}, DropStale},
		{"the pool given to another VPC", []Pool{{ID: 1, VPC: 3, Prefixes: []netip.Prefix{pool30}}, {ID: 2, VPC: 1, Prefixes: []netip.Prefix{pool30}}}, DropStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, k, pub, port := sessionThenReconfigure(t, c.pools)
			reply := Key{Proto: ipProtoUDP, Src: k.Dst, Dst: pub, SrcPort: 123, DstPort: port}
			if _, _, _, r := s.Inbound(2, &reply, 0, 2*sec); r != c.want {
				t.Fatalf("reply after reconfigure: %v, want %v", r, c.want)
			}
			if c.want != OK {
				if n := s.Sweep(2*sec, 1<<20); n != 1 {
					t.Fatalf("swept %d", n)
				}
				if cc := s.Counters(); cc.Killed != 1 || cc.Sessions != 0 {
					t.Fatalf("counters %+v", cc)
				}
			}
		})
	}
}

func TestRepliesThroughAnotherVPCsPoolAreDropped(t *testing.T) {
	s, err := NewStateful(Config{Capacity: 100, Seed: 1, Pools: []Pool{
		{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}},
		{ID: 2, VPC: 2, Prefixes: []netip.Prefix{pool30}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	k := Key{VPC: 1, Proto: ipProtoUDP, Src: ip4("10.1.1.7"), Dst: ip4("8.8.8.8"), SrcPort: 5000, DstPort: 123}
	pub, port, _ := s.Outbound(1, &k, 0, sec)
	reply := Key{Proto: ipProtoUDP, Src: k.Dst, Dst: pub, SrcPort: 123, DstPort: port}
	if _, _, _, r := s.Inbound(2, &reply, 0, sec); r != DropWrongVPC {
		t.Fatalf("reply through vpc 2's pool: %v", r)
	}
	if vpc, _, _, r := s.Inbound(1, &reply, 0, sec); r != OK || vpc != 1 {
		t.Fatalf("reply through vpc 1's pool: %v vpc %d", r, vpc)
	}
}

func TestDNSReplyClosesTheSession(t *testing.T) {
	s := useCase4(t, 100)
	q := udpPkt(t, "10.1.1.5", 3333, "8.8.8.8", 53)
	if r := s.TranslatePacket(sec, q, 1, 2, 1, false); r != OK {
		t.Fatal(r)
	}
	a := udpPkt(t, "8.8.8.8", 53, addr4(get32(q, 12)).String(), get16(q, 20))
	if r := s.TranslatePacket(sec, a, 2, 1, 1, true); r != OK {
		t.Fatal(r)
	}
	again := udpPkt(t, "8.8.8.8", 53, addr4(get32(q, 12)).String(), get16(q, 20))
	if r := s.TranslatePacket(sec, again, 2, 1, 1, true); r != DropUnsolicited {
		t.Fatalf("a second answer: %v", r)
	}
}

func TestICMPErrorsAreTranslatedBack(t *testing.T) {
	cases := []struct {
		name string
		out  func(t testing.TB) []byte
	}{
		{"port unreachable about a UDP packet", func(t testing.TB) []byte { return udpPkt(t, "10.1.1.5", 5555, "8.8.4.4", 33434) }},
		{"time exceeded about a TCP SYN", func(t testing.TB) []byte {
			return tcpPkt(t, "10.1.1.5", 40000, "1.1.1.1", 443, true, false, false, false)
		}},
		{"time exceeded about a ping", func(t testing.TB) []byte { return echoPkt(t, "10.1.1.5", "9.9.9.9", false, 4242) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := useCase4(t, 100)
			orig := c.out(t)
			p := append([]byte(nil), orig...)
			if r := s.TranslatePacket(sec, p, 1, 2, 1, false); r != OK {
				t.Fatal(r)
			}
			// A router on the way answers the translated packet.
			e := icmpError(t, "203.0.113.1", addr4(get32(p, 12)).String(), 11, 0, p)
			if r := s.TranslatePacket(sec, e, 2, 1, 1, true); r != OK {
				t.Fatalf("inbound error: %v", r)
			}
			checkSums(t, e)
			if get32(e, 16) != get32(orig, 12) {
				t.Fatalf("outer destination %v", addr4(get32(e, 16)))
			}
			emb := e[28:]
			if get32(emb, 12) != get32(orig, 12) || get32(emb, 16) != get32(orig, 16) {
				t.Fatalf("quoted addresses %v -> %v", addr4(get32(emb, 12)), addr4(get32(emb, 16)))
			}
			if got, want := emb[20:28], orig[20:28]; string(got) != string(want) && orig[9] != ipProtoICMP {
				t.Fatalf("quoted transport header % x, want % x", got, want)
			}
			if orig[9] == ipProtoICMP && get16(emb, 24) != get16(orig, 24) {
				t.Fatalf("quoted echo id %d", get16(emb, 24))
			}
		})
	}
}

func TestICMPErrorsFromInsideGetThePublicAddress(t *testing.T) {
	s := useCase4(t, 100)
	out := udpPkt(t, "10.1.1.5", 5555, "8.8.4.4", 4500)
	if r := s.TranslatePacket(sec, out, 1, 2, 1, false); r != OK {
		t.Fatal(r)
	}
	pub, port := get32(out, 12), get16(out, 20)
	reply := udpPkt(t, "8.8.4.4", 4500, addr4(pub).String(), port)
	if r := s.TranslatePacket(sec, reply, 2, 1, 1, true); r != OK {
		t.Fatal(r)
	}
	// The inside host rejects the reply it got.
	e := icmpError(t, "10.1.1.5", "8.8.4.4", 3, 3, reply)
	if r := s.TranslatePacket(sec, e, 1, 2, 1, false); r != OK {
		t.Fatalf("outbound error: %v", r)
	}
	checkSums(t, e)
	emb := e[28:]
	if get32(e, 12) != pub || get32(emb, 16) != pub || get16(emb, 22) != port {
		t.Fatalf("outer source %v, quoted destination %v:%d, want %v:%d", addr4(get32(e, 12)), addr4(get32(emb, 16)), get16(emb, 22), addr4(pub), port)
	}
}

func TestClampMSSLowersLargeMSSOnly(t *testing.T) {
	cases := []struct {
		name    string
		mss     uint16
		changed bool
		want    uint16
	}{
		{"an MSS above the clamp is lowered", 1410, true, 1410},
		{"an MSS below the clamp is kept", 1460, false, 1460},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := tcpPkt(t, "10.1.1.5", 40000, "1.1.1.1", 443, true, false, false, false)
			if got := ClampMSS(p, c.mss); got != c.changed {
				t.Fatalf("changed %v", got)
			}
			checkSums(t, p)
			if got := get16(p, 40+2); got != c.want {
				t.Fatalf("mss %d, want %d", got, c.want)
			}
		})
	}
}

func TestTranslateBurstMatchesOneByOne(t *testing.T) {
	a, b := useCase4(t, 1000), useCase4(t, 1000)
	var reqs []Request
	var singles [][]byte
	for i := 0; i < 70; i++ {
		p := udpPkt(t, fmt.Sprintf("10.1.1.%d", i%20), uint16(1000+i), "8.8.8.8", 53)
		if i%7 == 0 {
			p = udpPkt(t, "8.8.8.8", 53, "192.168.1.1", uint16(i)) // unsolicited
		}
		singles = append(singles, append([]byte(nil), p...))
		reqs = append(reqs, Request{Packet: p, SrcVPC: 1, DstVPC: 2, Pool: 1, Reverse: i%7 == 0})
	}
	a.Translate(sec, reqs)
	for i, p := range singles {
		if i%7 == 0 {
			if reqs[i].Result != DropUnsolicited || b.TranslatePacket(sec, p, 2, 1, 1, true) != DropUnsolicited {
				t.Fatalf("packet %d: %v", i, reqs[i].Result)
			}
			continue
		}
		if r := b.TranslatePacket(sec, p, 1, 2, 1, false); r != OK || reqs[i].Result != OK {
			t.Fatalf("packet %d: %v / %v", i, reqs[i].Result, r)
		}
		if !inPool(get32(reqs[i].Packet, 12)) {
			t.Fatalf("packet %d not translated", i)
		}
		checkSums(t, reqs[i].Packet)
	}
}

// Worker 0 sends the flows out, worker 1 handles every reply: both find the
// same session, under the race detector.
func TestTwoWorkersForwardAndReplyOnDifferentWorkers(t *testing.T) {
	s := useCase4(t, 20000)
	type sent struct {
		k         Key
		pub       uint32
		port      uint16
		inner     uint32
		innerPort uint16
	}
	ch := make(chan sent, 128)
	var wg sync.WaitGroup
	var failure error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		if failure == nil {
			failure = err
		}
		mu.Unlock()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer close(ch)
		reqs := make([]Request, 0, 32)
		for i := 0; i < 8000; i += 32 {
			reqs = reqs[:0]
			for j := i; j < i+32; j++ {
				reqs = append(reqs, Request{Packet: tcpPkt(t, addr4(ip4("10.1.1.1")+uint32(j%200)).String(), uint16(2000+j/200), "1.1.1.1", 443, true, false, false, false), SrcVPC: 1, DstVPC: 2, Pool: 1})
			}
			s.Translate(sec, reqs)
			for j, q := range reqs {
				if q.Result != OK {
					fail(fmt.Errorf("flow %d: %v", i+j, q.Result))
					return
				}
				ch <- sent{pub: get32(q.Packet, 12), port: get16(q.Packet, 20), inner: ip4("10.1.1.1") + uint32((i+j)%200), innerPort: uint16(2000 + (i+j)/200)}
			}
		}
	}()
	go func() {
		defer wg.Done()
		for x := range ch {
			p := tcpPkt(t, "1.1.1.1", 443, addr4(x.pub).String(), x.port, true, true, false, false)
			if r := s.TranslatePacket(sec, p, 2, 1, 2, true); r != OK {
				fail(fmt.Errorf("reply to %v:%d: %v", addr4(x.pub), x.port, r))
				return
			}
			if get32(p, 16) != x.inner || get16(p, 22) != x.innerPort {
				fail(fmt.Errorf("reply to %v:%d went to %v:%d", addr4(x.pub), x.port, addr4(get32(p, 16)), get16(p, 22)))
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			s.Sweep(sec, 64)
		}
	}()
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	if c := s.Counters(); c.Sessions != 8000 {
		t.Fatalf("counters %+v", c)
	}
}

func TestSessionsListsOneVPCOrAll(t *testing.T) {
	s, err := NewStateful(Config{Capacity: 100, Seed: 1, Pools: []Pool{
		{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}},
		{ID: 2, VPC: 2, Prefixes: []netip.Prefix{pool30}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		vpc := uint32(1 + i%2)
		k := Key{VPC: vpc, Proto: ipProtoTCP, Src: ip4("10.1.1.1") + uint32(i), Dst: ip4("1.1.1.1"), SrcPort: 999, DstPort: 443}
		if _, _, r := s.Outbound(vpc, &k, flowtable.TCPSyn, sec); r != OK {
			t.Fatal(r)
		}
	}
	cases := []struct {
		name string
		f    Filter
		want int
	}{
		{"all VPCs", Filter{AllVPCs: true}, 6},
		{"vpc 2 only", Filter{VPC: 2}, 3},
		{"a limit", Filter{AllVPCs: true, Limit: 4}, 4},
		{"an unknown VPC", Filter{VPC: 9}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := s.Sessions(sec, c.f)
			if len(got) != c.want {
				t.Fatalf("%d sessions, want %d: %+v", len(got), c.want, got)
			}
			for _, si := range got {
				if si.State != "syn-sent" || si.ExpiresIn != 240*time.Second || !pool30.Contains(si.Public.Addr()) {
					t.Fatalf("session %+v", si)
				}
			}
		})
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	to := flowtable.DefaultTimeouts()
	s, err := NewStateful(Config{Capacity: 100, Timeouts: to, Seed: 1, Pools: []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}}}})
	if err != nil {
		t.Fatal(err)
	}
	k := Key{VPC: 1, Proto: ipProtoICMP, Src: ip4("10.1.1.1"), Dst: ip4("1.1.1.1"), SrcPort: 5}
	if _, _, r := s.Outbound(1, &k, 0, sec); r != OK {
		t.Fatal(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx, func() int64 { return 100 * sec }, 20*time.Millisecond)
		close(done)
	}()
	for s.Counters().Sessions != 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if c := s.Counters(); c.Expired != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestIPv6IsRefusedWithAReason(t *testing.T) {
	s, err := NewStateful(Config{Capacity: 10, Seed: 1, Pools: []Pool{
		{ID: 1, VPC: 1, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/126")}},
	}})
	if err != nil {
		t.Fatalf("an IPv6 pool must not fail the configuration: %v", err)
	}
	p := make([]byte, 48)
	p[0] = 0x60
	if r := s.TranslatePacket(sec, p, 1, 2, 1, false); r != DropIPv6 {
		t.Fatalf("IPv6 packet: %v", r)
	}
	k := Key{VPC: 1, Proto: ipProtoUDP, Src: ip4("10.1.1.1"), Dst: ip4("8.8.8.8"), SrcPort: 1, DstPort: 53}
	if _, _, r := s.Outbound(1, &k, 0, sec); r != DropNoPool {
		t.Fatalf("IPv4 packet toward an IPv6-only pool: %v", r)
	}
}

// Translate's creation pass calls create without looking the flow up first,
// so create itself must not hand out a session of an older configuration
// that no longer holds: it revalidates a session Create finds, or kills it
// and creates the flow anew on the current pool.
func TestCreateRevalidatesTheSessionItFinds(t *testing.T) {
	moved := netip.MustParsePrefix("192.168.9.0/30")
	cases := []struct {
		name     string
		pools    []Pool
		same     bool // the old mapping is kept
		inPrefix netip.Prefix
		killed   uint64
	}{
		{"the same pools", []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{pool30}}}, true, pool30, 0},
		{"the pool moved to other addresses", []Pool{{ID: 1, VPC: 1, Prefixes: []netip.Prefix{moved}}}, false, moved, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, k, pub, port := sessionThenReconfigure(t, c.pools)
			ps := s.pools.Load()
			f := flowtable.Flow{Inner: k.Src, Remote: k.Dst, InnerPort: k.SrcPort, RemotePort: k.DstPort, VPC: uint16(k.VPC), Proto: k.Proto}
			pub2, port2, r := s.create(ps, ps.pool(1), 1, &f, s.tab.HashFlow(&f), 0, 2*sec, nil)
			if r != OK {
				t.Fatal(r)
			}
			if (pub2 == pub && port2 == port) != c.same || !c.inPrefix.Contains(addr4(pub2)) {
				t.Fatalf("create after reconfigure: %v:%d (was %v:%d), want same=%v in %v", addr4(pub2), port2, addr4(pub), port, c.same, c.inPrefix)
			}
			if cc := s.Counters(); cc.Killed != c.killed || cc.Sessions != 1 {
				t.Fatalf("counters %+v", cc)
			}
			// Whatever create returned is what the flow now maps to.
			if p3, port3, r := s.Outbound(1, &k, 0, 3*sec); r != OK || p3 != pub2 || port3 != port2 {
				t.Fatalf("outbound after create: %v:%d %v", addr4(p3), port3, r)
			}
		})
	}
}

// sessionThenReconfigure makes one UDP session of use case 4 (vpc-1's
// 10.1.1.7:5000 to 8.8.8.8:123) and then reconfigures the pools to pools
// as generation 2. It returns the state, the session's key and its
// public address and port.
func sessionThenReconfigure(t *testing.T, pools []Pool) (*Stateful, Key, uint32, uint16) {
	t.Helper()
	s := useCase4(t, 100)
	k := Key{VPC: 1, Proto: ipProtoUDP, Src: ip4("10.1.1.7"), Dst: ip4("8.8.8.8"), SrcPort: 5000, DstPort: 123}
	pub, port, r := s.Outbound(1, &k, 0, sec)
	if r != OK {
		t.Fatal(r)
	}
	if err := s.Reconfigure(pools, 2); err != nil {
		t.Fatal(err)
	}
	return s, k, pub, port
}
