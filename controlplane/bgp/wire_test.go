package bgp

import (
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// protoParse is the reference: the same reading of a path through
// proto.Unmarshal (what the speaker did before wire.go).
func protoParse(p *api.Path, asn uint32) (parsedPath, bool) {
	var pfx api.IPAddressPrefix
	if p.GetNlri() == nil || !typeIs(p.GetNlri(), "IPAddressPrefix") || proto.Unmarshal(p.GetNlri().GetValue(), &pfx) != nil {
		return parsedPath{}, false
	}
	a, err := netip.ParseAddr(pfx.Prefix)
	if err != nil {
		return parsedPath{}, false
	}
	prefix, err := a.Unmap().Prefix(int(pfx.PrefixLen))
	if err != nil {
		return parsedPath{}, false
	}
	out := parsedPath{neighbor: netip.MustParseAddr(p.GetNeighborIp()).Unmap(), prefix: prefix, withdraw: p.GetIsWithdraw()}
	if out.withdraw {
		return out, true
	}
	var nh netip.Addr
	var med uint32
	asLen := 0
	for _, attr := range p.GetPattrs() {
		switch {
		case typeIs(attr, "NextHopAttribute"):
			var m api.NextHopAttribute
			if proto.Unmarshal(attr.GetValue(), &m) == nil {
				nh, _ = netip.ParseAddr(m.NextHop)
			}
		case typeIs(attr, "MpReachNLRIAttribute"):
			var m api.MpReachNLRIAttribute
			if proto.Unmarshal(attr.GetValue(), &m) == nil && len(m.NextHops) > 0 {
				nh, _ = netip.ParseAddr(m.NextHops[0])
			}
		case typeIs(attr, "MultiExitDiscAttribute"):
			var m api.MultiExitDiscAttribute
			if proto.Unmarshal(attr.GetValue(), &m) == nil {
				med = m.Med
			}
		case typeIs(attr, "AsPathAttribute"):
			var m api.AsPathAttribute
			if proto.Unmarshal(attr.GetValue(), &m) != nil {
				continue
			}
			for _, seg := range m.Segments {
				if seg.Type == api.AsSegment_AS_SET || seg.Type == api.AsSegment_AS_CONFED_SET {
					asLen++
				} else {
					asLen += len(seg.Numbers)
				}
				for _, n := range seg.Numbers {
					if n == asn {
						out.withdraw, out.looped = true, true
					}
				}
			}
		}
	}
	out.val = makeVal(nh, med, asLen)
	return out, true
}

func withASPath(p *api.Path, segs ...*api.AsSegment) *api.Path {
	a, _ := anypb.New(&api.AsPathAttribute{Segments: segs})
	p.Pattrs = append(p.Pattrs, a)
	return p
}

func TestWireDecodingReadsPathsAsProtoUnmarshalDoes(t *testing.T) {
	seq := func(n ...uint32) *api.AsSegment { return &api.AsSegment{Type: api.AsSegment_AS_SEQUENCE, Numbers: n} }
	set := func(n ...uint32) *api.AsSegment { return &api.AsSegment{Type: api.AsSegment_AS_SET, Numbers: n} }
	confedSet := &api.AsSegment{Type: api.AsSegment_AS_CONFED_SET, Numbers: []uint32{1, 2, 3}}
	withdrawn := peerPath("10.9.0.0/16", "192.0.2.1", 0, false)
	withdrawn.IsWithdraw = true
	mp2, _ := anypb.New(&api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{"2001:db8::1", "fe80::1"}})
	twoNextHops := &api.Path{Family: familyV6, Nlri: peerPath("2001:db8:1::/48", "::", 0, false).Nlri, Pattrs: []*anypb.Any{mp2}}
	for _, c := range []struct {
		name string
		path *api.Path
	}{
		{"IPv4 with a MED", peerPath("10.1.0.0/16", "192.0.2.1", 7, true)},
		{"IPv4 without a MED", peerPath("10.1.2.0/24", "192.0.2.9", 0, false)},
		{"a MED at its maximum", peerPath("10.1.2.0/24", "192.0.2.9", 1<<32-1, true)},
		{"IPv6 through MP_REACH", peerPath("2001:db8::/32", "2001:db8::9", 3, true)},
		{"the first of two IPv6 next hops", twoNextHops},
		{"a default route", peerPath("0.0.0.0/0", "192.0.2.1", 0, true)},
		{"a host route", peerPath("192.0.2.77/32", "192.0.2.1", 0, true)},
		{"a withdrawal", withdrawn},
		{"an AS sequence", withASPath(peerPath("10.2.0.0/16", "192.0.2.1", 1, true), seq(65001, 64999, 64998))},
		{"an AS set counts once", withASPath(peerPath("10.2.0.0/16", "192.0.2.1", 1, true), seq(65001), set(1, 2, 3))},
		{"a confederation set counts once", withASPath(peerPath("10.2.0.0/16", "192.0.2.1", 1, true), confedSet, seq(65001))},
		{"an empty AS path", withASPath(peerPath("10.2.0.0/16", "192.0.2.1", 1, true))},
		{"our ASN in a sequence", withASPath(peerPath("10.3.0.0/16", "192.0.2.1", 1, true), seq(65001, gatewayASN))},
		{"our ASN in a set", withASPath(peerPath("10.3.0.0/16", "192.0.2.1", 1, true), seq(65001), set(5, gatewayASN))},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.path.NeighborIp = "192.0.2.1"
			want, wantOK := protoParse(c.path, gatewayASN)
			pp := pathParser{asn: gatewayASN}
			var got parsedPath
			ok := pp.parse(c.path, &got)
			if ok != wantOK || got != want {
				t.Errorf("parse = %+v, %v; proto.Unmarshal reads %+v, %v", got, ok, want, wantOK)
			}
		})
	}
}

func TestWireDecodingRefusesMalformedPrefixes(t *testing.T) {
	for _, c := range []struct {
		name string
		nlri []byte
	}{
		{"truncated", []byte{0x08}},
		{"not an address", func() []byte { b, _ := proto.Marshal(&api.IPAddressPrefix{Prefix: "nope", PrefixLen: 8}); return b }()},
		{"too long for IPv4", func() []byte {
			b, _ := proto.Marshal(&api.IPAddressPrefix{Prefix: "10.0.0.0", PrefixLen: 33})
			return b
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			if p, ok := wirePrefix(c.nlri); ok {
				t.Errorf("wirePrefix = %v, want refused", p)
			}
		})
	}
}

// BenchmarkParsePath: one path of a full table (IPv4 /24, next hop, MED,
// AS path of four), decoded from the wire and through proto.Unmarshal.
func BenchmarkParsePath(b *testing.B) {
	p := withASPath(peerPath("100.64.12.0/24", "192.0.2.1", 5, true),
		&api.AsSegment{Type: api.AsSegment_AS_SEQUENCE, Numbers: []uint32{65001, 3356, 1299, 13335}})
	p.NeighborIp = "192.0.2.1"
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		pp := pathParser{asn: gatewayASN}
		var out parsedPath
		for b.Loop() {
			pp.parse(p, &out)
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			protoParse(p, gatewayASN)
		}
	})
}
