package bgp

import (
	"context"
	"net/netip"
	"testing"
)

const (
	gatewayASN = 65000
	e1ASN      = 65001
	e2ASN      = 65002
)

// A session with one external router: routes in both families, with MED,
// withdrawals, the session dropping and coming back, and the gateway's
// advertisements as the router sees them.
func TestSpeakerLearnsAndAdvertisesWithAGobgpPeer(t *testing.T) {
	ctx := context.Background()
	s := startSpeaker(t, gatewayASN)
	rec := record(t, s)
	port := freePort(t, "127.0.0.1")
	peer := startPeer(t, "127.0.0.1", port, e1ASN, "10.255.0.2", gatewayASN)
	peer.announce("10.1.0.0/16", "192.0.2.1", 5)
	peer.announce("10.2.0.0/16", "192.0.2.1", 0)
	peer.announce("2001:db8:1::/48", "2001:db8::1", 7)

	if err := s.SetNeighbors(ctx, []Neighbor{peer.neighbor("vpc-e1")}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second identical call must not reset the session.
	if err := s.SetNeighbors(ctx, []Neighbor{peer.neighbor("vpc-e1")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdvertised(ctx, "vpc-e1", mustPrefixes("198.51.100.0/24", "2001:db8:ffff::/48")); err != nil {
		t.Fatal(err)
	}
	nb := "127.0.0.1"

	t.Run("session comes up and routes of both families are learned with their MED", func(t *testing.T) {
		eventually(t, "session up", func() bool { return rec.session(nb) == SessionUp })
		eventually(t, "3 routes", func() bool { return rec.count() == 3 })
		cases := []struct {
			prefix, nextHop string
			med             uint32
		}{
			{"10.1.0.0/16", "127.0.0.1", 5},
			{"10.2.0.0/16", "127.0.0.1", 0},
			{"2001:db8:1::/48", "", 7},
		}
		for _, c := range cases {
			r, ok := rec.route("vpc-e1", nb, c.prefix)
			if !ok {
				t.Fatalf("%s not learned", c.prefix)
			}
			if r.MED != c.med || r.ASPathLen != 1 {
				t.Errorf("%s: MED %d AS path length %d, want %d and 1", c.prefix, r.MED, r.ASPathLen, c.med)
			}
			if !r.NextHop.IsValid() {
				t.Errorf("%s: no next hop", c.prefix)
			}
			t.Logf("learned %+v", r)
		}
		if got := len(s.Routes("vpc-e1")); got != 3 {
			t.Errorf("Routes(vpc-e1) has %d routes, want 3", got)
		}
		if got := len(s.Routes("vpc-other")); got != 0 {
			t.Errorf("Routes(vpc-other) has %d routes, want 0", got)
		}
	})

	t.Run("the peer sees the advertisements without the internal VPC tag", func(t *testing.T) {
		eventually(t, "advertisements at the peer", func() bool { return len(peer.received()) == 2 })
		for p, comms := range peer.received() {
			if len(comms) != 0 {
				t.Errorf("%v reached the peer with communities %v", p, comms)
			}
		}
	})

	t.Run("sessions report state and counts", func(t *testing.T) {
		ss := s.Sessions()
		if len(ss) != 1 || !ss[0].Up || ss[0].State != "established" || ss[0].Learned != 3 || ss[0].Received != 3 || ss[0].Advertised != 2 {
			t.Errorf("Sessions() = %+v", ss)
		}
	})

	t.Run("a withdrawn prefix disappears", func(t *testing.T) {
		peer.withdraw("10.2.0.0/16", "192.0.2.1")
		eventually(t, "withdrawal of 10.2.0.0/16", func() bool {
			_, ok := rec.route("vpc-e1", nb, "10.2.0.0/16")
			return !ok
		})
		if got := len(s.Routes("vpc-e1")); got != 2 {
			t.Errorf("Routes(vpc-e1) has %d routes, want 2", got)
		}
	})

	t.Run("a changed MED replaces the route", func(t *testing.T) {
		peer.announce("10.1.0.0/16", "192.0.2.1", 50)
		eventually(t, "MED 50", func() bool {
			r, _ := rec.route("vpc-e1", nb, "10.1.0.0/16")
			return r.MED == 50
		})
	})

	t.Run("an advertisement no longer listed is withdrawn from the peer", func(t *testing.T) {
		if err := s.SetAdvertised(ctx, "vpc-e1", mustPrefixes("198.51.100.0/24")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "only 198.51.100.0/24 at the peer", func() bool {
			got := peer.received()
			_, ok := got[netip.MustParsePrefix("198.51.100.0/24")]
			return len(got) == 1 && ok
		})
	})

	t.Run("losing the session withdraws its routes and reports it down", func(t *testing.T) {
		peer.stop()
		eventually(t, "session down", func() bool { return rec.session(nb) == SessionDown })
		if n := rec.count(); n != 0 {
			t.Errorf("%d routes left after session down", n)
		}
		if got := len(s.Routes("vpc-e1")); got != 0 {
			t.Errorf("Routes(vpc-e1) has %d routes after session down", got)
		}
	})

	t.Run("the routes come back with the peer", func(t *testing.T) {
		peer = startPeer(t, "127.0.0.1", port, e1ASN, "10.255.0.2", gatewayASN)
		peer.announce("10.1.0.0/16", "192.0.2.1", 5)
		eventually(t, "session up again", func() bool { return rec.session(nb) == SessionUp })
		eventually(t, "10.1.0.0/16 again", func() bool {
			r, ok := rec.route("vpc-e1", nb, "10.1.0.0/16")
			return ok && r.MED == 5
		})
		eventually(t, "advertisement at the returned peer", func() bool { return len(peer.received()) == 1 })
	})

	t.Run("removing the neighbour withdraws and reports down", func(t *testing.T) {
		if err := s.SetNeighbors(ctx, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "session down", func() bool { return rec.session(nb) == SessionDown })
		if n := rec.count(); n != 0 {
			t.Errorf("%d routes left after removing the neighbour", n)
		}
		if ss := s.Sessions(); len(ss) != 0 {
			t.Errorf("Sessions() = %+v after removal", ss)
		}
	})
}

// Two external VPCs: each one's neighbours are told only that VPC's
// advertisements, a prefix told to both survives its removal from one, and
// routes learned from one external never reach the other.
func TestSpeakerKeepsExternalVPCsApart(t *testing.T) {
	ctx := context.Background()
	s := startSpeaker(t, gatewayASN)
	rec := record(t, s)
	p1 := startPeer(t, "127.0.0.1", freePort(t, "127.0.0.1"), e1ASN, "10.255.0.2", gatewayASN)
	p2 := startPeer(t, "127.0.0.2", freePort(t, "127.0.0.2"), e2ASN, "10.255.0.3", gatewayASN)
	p1.announce("203.0.113.0/24", "192.0.2.1", 0)
	p2.announce("203.0.113.0/24", "192.0.2.2", 10)
	p2.announce("100.64.0.0/10", "192.0.2.2", 0)

	if err := s.SetAdvertised(ctx, "vpc-e1", mustPrefixes("198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdvertised(ctx, "vpc-e2", mustPrefixes("198.51.100.0/24", "192.0.2.128/25")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNeighbors(ctx, []Neighbor{p1.neighbor("vpc-e1"), p2.neighbor("vpc-e2")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both sessions up", func() bool {
		return rec.session("127.0.0.1") == SessionUp && rec.session("127.0.0.2") == SessionUp
	})
	eventually(t, "3 routes learned", func() bool { return rec.count() == 3 })
	if r, ok := rec.route("vpc-e2", "127.0.0.2", "203.0.113.0/24"); !ok || r.MED != 10 {
		t.Errorf("vpc-e2's 203.0.113.0/24 = %+v, %v; want MED 10", r, ok)
	}
	if got := len(s.Routes("vpc-e1")); got != 1 {
		t.Errorf("vpc-e1 holds %d routes, want 1", got)
	}

	want1 := map[string]bool{"198.51.100.0/24": true}
	want2 := map[string]bool{"198.51.100.0/24": true, "192.0.2.128/25": true}
	same := func(got map[netip.Prefix][]uint32, want map[string]bool) bool {
		if len(got) != len(want) {
			return false
		}
		for p := range got {
			if !want[p.String()] {
				return false
			}
		}
		return true
	}
	eventually(t, "each peer sees its VPC's advertisements only", func() bool {
		return same(p1.received(), want1) && same(p2.received(), want2)
	})

	if err := s.SetAdvertised(ctx, "vpc-e1", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "vpc-e1's peer loses the shared prefix, vpc-e2's keeps it", func() bool {
		return len(p1.received()) == 0 && same(p2.received(), want2)
	})
	t.Logf("peer 2 sees %s", keys(p2.received()))
}
