package bgp

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestStoreKeysRoundTripEveryPrefixShape(t *testing.T) {
	for _, s := range []string{"0.0.0.0/0", "10.0.0.0/8", "192.0.2.1/32", "255.255.255.255/32", "::/0", "2001:db8::/32", "2001:db8::1/128", "ffff::/16"} {
		t.Run(s, func(t *testing.T) {
			p := netip.MustParsePrefix(s)
			var got netip.Prefix
			if p.Addr().Is4() {
				got = makeKey4(p).prefix()
			} else {
				got = makeKey6(p).prefix()
			}
			if got != p {
				t.Errorf("round trip of %v gave %v", p, got)
			}
		})
	}
}

func TestStoreKeepsTheNextHopFamily(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"", "invalid IP"},
	} {
		t.Run(c.in, func(t *testing.T) {
			var a netip.Addr
			if c.in != "" {
				a = netip.MustParseAddr(c.in)
			}
			if got := makeVal(a, 0, 0).nextHop().String(); got != c.want {
				t.Errorf("next hop %q stored as %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestStoreReportsOnlyRealChanges(t *testing.T) {
	n := newNeighbor(Neighbor{VPC: "v", Address: netip.MustParseAddr("192.0.2.1"), ASN: 1})
	p := netip.MustParsePrefix("10.0.0.0/8")
	v := makeVal(netip.MustParseAddr("192.0.2.1"), 5, 2)
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"a new route is a change", func() bool { _, ok := n.learn(p, v); return ok }, true},
		{"the same route again is not", func() bool { _, ok := n.learn(p, v); return ok }, false},
		{"a new MED is", func() bool { v.med = 6; _, ok := n.learn(p, v); return ok }, true},
		{"a new next hop is", func() bool { v = makeVal(netip.MustParseAddr("192.0.2.9"), 6, 2); _, ok := n.learn(p, v); return ok }, true},
		{"the first next hop again is", func() bool { v = makeVal(netip.MustParseAddr("192.0.2.1"), 6, 2); _, ok := n.learn(p, v); return ok }, true},
		{"and then it is not", func() bool { _, ok := n.learn(p, v); return ok }, false},
		{"forgetting a held route is", func() bool { _, ok := n.forget(p); return ok }, true},
		{"forgetting it twice is not", func() bool { _, ok := n.forget(p); return ok }, false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("%s: got %v", s.name, got)
		}
	}
}

func TestSpeakerRejectsBadNeighbors(t *testing.T) {
	s := startSpeaker(t, gatewayASN)
	a := netip.MustParseAddr("192.0.2.1")
	cases := []struct {
		name string
		ns   []Neighbor
		want string
	}{
		{"a neighbour without a VPC", []Neighbor{{Address: a, ASN: 1}}, "no VPC"},
		{"a neighbour without an address", []Neighbor{{VPC: "e", ASN: 1}}, "invalid neighbor address"},
		{"an unspecified address", []Neighbor{{VPC: "e", Address: netip.IPv4Unspecified(), ASN: 1}}, "invalid neighbor address"},
		{"ASN 0", []Neighbor{{VPC: "e", Address: a}}, "ASN 0"},
		{"one address in two VPCs", []Neighbor{{VPC: "e1", Address: a, ASN: 1}, {VPC: "e2", Address: a, ASN: 1}}, "listed twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.SetNeighbors(context.Background(), c.ns)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("SetNeighbors(%v) = %v, want an error with %q", c.ns, err, c.want)
			}
		})
	}
	if ss := s.Sessions(); len(ss) != 0 {
		t.Errorf("rejected neighbours were configured: %+v", ss)
	}
}

func TestSpeakerRefusesWorkOutsideItsLifetime(t *testing.T) {
	ctx := context.Background()
	s := New(testLogger(t))
	if err := s.SetNeighbors(ctx, nil); err == nil {
		t.Error("SetNeighbors before Start succeeded")
	}
	if err := s.Start(ctx, Global{ASN: 0, RouterID: netip.MustParseAddr("10.0.0.1")}); err == nil {
		t.Error("Start with ASN 0 succeeded")
	}
	if err := s.Start(ctx, Global{ASN: 1, RouterID: netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("Start with an IPv6 router ID succeeded")
	}
	s = startSpeaker(t, gatewayASN)
	ch, cancel := s.Subscribe()
	defer cancel()
	s.Stop()
	if _, open := <-ch; open {
		t.Error("subscription still open after Stop")
	}
	if err := s.SetAdvertised(ctx, "e", nil); err == nil {
		t.Error("SetAdvertised after Stop succeeded")
	}
	late, cancelLate := s.Subscribe()
	defer cancelLate()
	if _, open := <-late; open {
		t.Error("a subscription made after Stop is open")
	}
	s.Stop() // twice is harmless
}

// A path whose AS path already holds the gateway's ASN is a loop: gobgp
// keeps it in adj-rib-in but never uses it, and neither does the speaker.
// (gobgp senders suppress such paths, so this is tested on the parser.)
func TestParserTreatsLoopedPathsAsWithdrawn(t *testing.T) {
	for _, c := range []struct {
		name     string
		asPath   []uint32
		withdraw bool
		asLen    int
	}{
		{"a path through other ASes is learned", []uint32{65001, 64999}, false, 2},
		{"a path through the gateway's AS is not", []uint32{65001, gatewayASN}, true, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := peerPath("10.99.0.0/16", "192.0.2.1", 3, true)
			asp, _ := anypb.New(&api.AsPathAttribute{Segments: []*api.AsSegment{{Type: api.AsSegment_AS_SEQUENCE, Numbers: c.asPath}}})
			p.Pattrs = append(p.Pattrs, asp)
			p.NeighborIp = "192.0.2.1"
			pp := pathParser{asn: gatewayASN}
			var got parsedPath
			if !pp.parse(p, &got) {
				t.Fatal("path not parsed")
			}
			if got.withdraw != c.withdraw || (!c.withdraw && (int(got.val.asLen) != c.asLen || got.val.med != 3)) {
				t.Errorf("parsed %+v, want withdraw %v, AS path length %d, MED 3", got, c.withdraw, c.asLen)
			}
			if got.prefix != netip.MustParsePrefix("10.99.0.0/16") || got.neighbor != netip.MustParseAddr("192.0.2.1") {
				t.Errorf("parsed prefix %v from %v", got.prefix, got.neighbor)
			}
		})
	}
}
