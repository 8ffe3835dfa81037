package fib

import (
	"net/netip"
	"strings"
	"testing"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func twoVPCs() *tablesv1.Tables {
	return &tablesv1.Tables{
		Gateway: &tablesv1.Gateway{VtepIp: "192.0.2.1"},
		Ports:   []*tablesv1.Port{{Id: 0, Name: "fabric", Ips: []string{"192.0.2.1/24"}}, {Id: 1, Name: "access", Mac: "02:00:00:00:00:99", Mtu: 9000}},
		Vpcs: []*tablesv1.Vpc{
			{Id: 0, Name: "a", RouterIps: []string{"10.1.0.1", "fd00::1"},
				Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VXLAN, Vni: 100, Vteps: []string{"192.0.2.10"}},
				Routes: []*tablesv1.Route{
					{Prefix: "10.1.0.0/16", Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, TtlDecrement: 1}}},
					{Prefix: "10.1.0.1/32", Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER}}},
					{Prefix: "10.9.0.0/16", Actions: []*tablesv1.Action{
						{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 1, DstNat: "10.2.0.0/16"},
						{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 1, DstNat: "10.3.0.0/16"}}},
				}},
			{Id: 1, Name: "b", Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VLAN, PortId: 1, Vlan: 20<<12 | 30}},
		},
	}
}

func TestBuildClassifiesEveryAttachmentKind(t *testing.T) {
	s, err := Build(twoVPCs(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		got  func() (int, bool)
		want int
		ok   bool
	}{
		{"vni 100 on the fabric is vpc a", func() (int, bool) { return s.ClassifyVXLAN(0, 100) }, 0, true},
		{"vni 100 on another port is nothing", func() (int, bool) { return s.ClassifyVXLAN(1, 100) }, 0, false},
		{"QinQ 20/30 on access is vpc b", func() (int, bool) { return s.ClassifyVLAN(1, 20, 30) }, 1, true},
		{"single tag 30 is not QinQ 20/30", func() (int, bool) { return s.ClassifyVLAN(1, 0, 30) }, 0, false},
		{"untagged access is nothing", func() (int, bool) { return s.ClassifyUntagged(1) }, 0, false},
	}
	for _, c := range cases {
		if v, ok := c.got(); v != c.want || ok != c.ok {
			t.Errorf("%s: got %d %v", c.name, v, ok)
		}
	}
	if s.Ports[1].MAC != [6]byte{2, 0, 0, 0, 0, 0x99} || s.Ports[0].MAC != DefaultPortMAC(0) || s.Ports[0].MTU != DefaultMTU {
		t.Errorf("ports: %+v", s.Ports)
	}
	if s.VPCs[1].MAC != s.Ports[1].MAC || s.VPCs[1].MTU != 9000 {
		t.Errorf("vpc b takes its port's MAC and MTU: %+v", s.VPCs[1])
	}
}

func TestRouterIPsAreLocalWhateverTheRoutesSay(t *testing.T) {
	s, err := Build(twoVPCs(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.1.0.1", "fd00::1"} {
		g, ok := s.VPCs[0].Routes.Lookup(netip.MustParseAddr(a))
		if !ok || s.Actions[s.Groups[g].First].Kind != ActLocal {
			t.Errorf("%s: group %d found %v, want a local action", a, g, ok)
		}
	}
	g, _ := s.VPCs[0].Routes.Lookup(netip.MustParseAddr("10.9.1.1"))
	if s.Groups[g].N != 2 {
		t.Errorf("ECMP group has %d actions, want 2", s.Groups[g].N)
	}
}

func TestBuildRejectsInconsistentTables(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(*tablesv1.Tables)
	}{
		{"forward to a missing VPC", "no such vpc", func(t *tablesv1.Tables) {
			t.Vpcs[0].Routes[0].Actions[0] = &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 7}
		}},
		{"missing NAT table", "no such table", func(t *tablesv1.Tables) { t.Vpcs[0].Routes[2].Actions[0].SrcNat = 3 }},
		{"dst_nat of another length", "does not match", func(t *tablesv1.Tables) { t.Vpcs[0].Routes[2].Actions[0].DstNat = "10.2.0.0/24" }},
		{"vxlan without vteps", "without vteps", func(t *tablesv1.Tables) { t.Vpcs[0].Attachment.Vteps = nil }},
		{"two VPCs on one attachment", "shared", func(t *tablesv1.Tables) { t.Vpcs[1].Attachment = t.Vpcs[0].Attachment }},
		{"bad prefix", "not a prefix", func(t *tablesv1.Tables) { t.Vpcs[0].Routes[0].Prefix = "10.1/16" }},
		{"port id out of order", "id", func(t *tablesv1.Tables) { t.Ports[1].Id = 5 }},
	}
	for _, c := range cases {
		tb := twoVPCs()
		c.edit(tb)
		if _, err := Build(tb, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestNatTableLookupFindsTheSegment(t *testing.T) {
	for _, n := range []int{1, 8} {
		tb := twoVPCs()
		var segs []*tablesv1.NatSegment
		for i := 0; i < n; i++ {
			segs = append(segs, &tablesv1.NatSegment{From: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 24).String(),
				To: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24).String()})
		}
		tb.NatTables = []*tablesv1.NatTable{{Segments: segs}}
		s, err := Build(tb, Options{})
		if err != nil {
			t.Fatal(err)
		}
		nt := &s.NatTables[0]
		if nt.Small != (n <= SmallNat) {
			t.Errorf("%d segments: small = %v", n, nt.Small)
		}
		seg, ok := nt.Lookup4(0x0a010005 | uint32(n-1)<<8)
		if !ok || seg.To.String() != segs[n-1].To {
			t.Errorf("%d segments: lookup got %v %v", n, seg, ok)
		}
		if _, ok := nt.Lookup4(0x0b000001); ok {
			t.Errorf("%d segments: 11.0.0.1 found", n)
		}
	}
}

func TestHolderPublishesWholeSnapshots(t *testing.T) {
	var h Holder
	if h.Load() != nil {
		t.Fatal("zero holder is not empty")
	}
	s1, s2 := &Snapshot{Generation: 1}, &Snapshot{Generation: 2}
	h.Store(s1)
	h.Store(s2)
	if h.Load().Generation != 2 {
		t.Errorf("generation %d, want 2", h.Load().Generation)
	}
}

// TestIPv4RewritesArePrecomputed checks the host-order value and mask the
// pipeline rewrites IPv4 addresses with (To4 | a&^Mask4 for a NAT segment,
// DstNAT4 | a&^DstNATMask4 for a route's dst_nat), at every length.
func TestIPv4RewritesArePrecomputed(t *testing.T) {
	tests := []struct {
		from, to string
		in, want uint32
	}{
		{"10.1.0.0/16", "172.16.0.0/16", 0x0a010205, 0xac100205},
		{"10.1.2.0/24", "192.168.7.0/24", 0x0a010205, 0xc0a80705},
		{"10.1.2.5/32", "10.9.9.9/32", 0x0a010205, 0x0a090909},
		{"10.1.2.4/31", "10.9.9.8/31", 0x0a010205, 0x0a090909},
		{"0.0.0.0/0", "0.0.0.0/0", 0x0a010205, 0x0a010205},
	}
	for _, tc := range tests {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			tb := twoVPCs()
			tb.NatTables = []*tablesv1.NatTable{{Segments: []*tablesv1.NatSegment{{From: tc.from, To: tc.to}}}}
			tb.Vpcs[0].Routes = append(tb.Vpcs[0].Routes, &tablesv1.Route{Prefix: tc.from,
				Actions: []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 1, DstNat: tc.to}}})
			s, err := Build(tb, Options{})
			if err != nil {
				t.Fatal(err)
			}
			seg := &s.NatTables[0].Segments[0]
			if got := seg.To4 | tc.in&^seg.Mask4; got != tc.want {
				t.Errorf("segment: %08x -> %08x, want %08x", tc.in, got, tc.want)
			}
			var act *Action
			for i := range s.Actions {
				if s.Actions[i].HasDstNAT && s.Actions[i].DstNATBits == uint8(netip.MustParsePrefix(tc.to).Bits()) &&
					s.Actions[i].DstNATPfx == netip.MustParsePrefix(tc.to).Masked().Addr().As16() {
					act = &s.Actions[i]
				}
			}
			if act == nil {
				t.Fatalf("no action with dst_nat %s", tc.to)
			}
			if got := act.DstNAT4 | tc.in&^act.DstNATMask4; got != tc.want {
				t.Errorf("dst_nat: %08x -> %08x, want %08x", tc.in, got, tc.want)
			}
		})
	}
}
