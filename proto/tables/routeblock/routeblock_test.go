package routeblock

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func forward(vpc uint32) []*tablesv1.Action {
	return []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: vpc, TtlDecrement: 1}}
}

// randomRoutes returns n routes of both families, every length included,
// whose attributes repeat as a compiler's do: a few shared action lists,
// and now and then an equal list in a slice of its own.
func randomRoutes(r *rand.Rand, n int) []*tablesv1.Route {
	shared := [][]*tablesv1.Action{forward(1), forward(2), {{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: "192.0.2.1"}}}
	out := make([]*tablesv1.Route, n)
	for i := range out {
		var a [16]byte
		for j := range a {
			a[j] = byte(r.Uint32())
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte(a[:4])), r.IntN(33))
		if r.IntN(4) == 0 {
			p = netip.PrefixFrom(netip.AddrFrom16(a), r.IntN(129))
		}
		acts := shared[r.IntN(len(shared))]
		if r.IntN(8) == 0 {
			acts = forward(uint32(r.IntN(3)))
		}
		out[i] = &tablesv1.Route{Prefix: p.Masked().String(), Metric: uint32(r.IntN(3)), Source: fmt.Sprint("bgp:192.0.2.", r.IntN(2)),
			Actions: acts, MatchSource: r.IntN(16) == 0}
	}
	return out
}

func TestPackRoundTrips(t *testing.T) {
	for seed := range uint64(5) {
		routes := randomRoutes(rand.New(rand.NewPCG(seed, 1)), 2000)
		b, err := Pack(routes)
		require.NoError(t, err)
		// Through the wire, as a dataplane gets it.
		wire, err := proto.Marshal(b)
		require.NoError(t, err)
		var got tablesv1.RouteBlock
		require.NoError(t, proto.Unmarshal(wire, &got))
		back, err := Routes(&got)
		require.NoError(t, err)
		want := routes
		require.Len(t, back, len(want))
		for i := range want {
			require.Truef(t, proto.Equal(want[i], back[i]), "route %d: want %v, got %v", i, want[i], back[i])
		}
		// Routes sharing an action slice and the other attributes share a
		// template.
		keys := map[templateKey]bool{}
		for _, r := range routes {
			keys[keyOf(r)] = true
		}
		assert.LessOrEqual(t, len(b.Templates), len(keys))
		assert.Less(t, 4*len(keys), len(routes), "the test shares attributes")
		plain, err := proto.Marshal(&tablesv1.VpcRouteDelta{UpsertRoutes: routes})
		require.NoError(t, err)
		assert.Less(t, 3*len(wire), len(plain), "a third of the plain form at most")
	}
}

func TestPackMasksAndRefuses(t *testing.T) {
	b, err := Pack([]*tablesv1.Route{{Prefix: "10.1.2.3/23", Actions: forward(1)}, {Prefix: "2001:db8::1/127", Actions: forward(1)}})
	require.NoError(t, err)
	back, err := Routes(b)
	require.NoError(t, err)
	assert.Equal(t, "10.1.2.0/23", back[0].Prefix)
	assert.Equal(t, "2001:db8::/127", back[1].Prefix)
	assert.Len(t, b.Templates, 1)

	_, err = Pack([]*tablesv1.Route{{Prefix: "10.0.0.0/8"}, {Prefix: "nope"}})
	assert.ErrorContains(t, err, `"nope"`)
	_, err = Pack([]*tablesv1.Route{{Prefix: "::ffff:10.0.0.0/104"}})
	assert.ErrorContains(t, err, "IPv4-mapped")
}

// ECMP routes share the candidates' actions, not the list: routes whose
// lists start with the same action keep their own lists.
func TestPackKeepsEachECMPList(t *testing.T) {
	a1, a2, a3 := forward(1)[0], forward(2)[0], forward(3)[0]
	routes := []*tablesv1.Route{
		{Prefix: "10.1.0.0/16", Actions: []*tablesv1.Action{a1, a2}},
		{Prefix: "10.2.0.0/16", Actions: []*tablesv1.Action{a1, a2}}, // equal to the last, own slice
		{Prefix: "10.3.0.0/16", Actions: []*tablesv1.Action{a1, a3}},
		{Prefix: "10.4.0.0/16", Actions: []*tablesv1.Action{a1}},
	}
	b, err := Pack(routes)
	require.NoError(t, err)
	back, err := Routes(b)
	require.NoError(t, err)
	for i := range routes {
		assert.Truef(t, proto.Equal(routes[i], back[i]), "route %d: want %v, got %v", i, routes[i], back[i])
	}
	assert.Len(t, b.Templates, 3, "equal lists in a row share a template")
}

// A template is a Route without its prefix, whatever fields Route has.
func TestTemplatesKeepEveryField(t *testing.T) {
	r := &tablesv1.Route{Prefix: "10.0.0.0/8", Metric: 7, Source: "bgp:192.0.2.1", Actions: forward(1), MatchSource: true}
	fields := r.ProtoReflect().Descriptor().Fields()
	set := 0
	r.ProtoReflect().Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool { set++; return true })
	require.Equal(t, fields.Len(), set, "the test route sets every field of Route")
	back, err := Routes(must(Pack([]*tablesv1.Route{r})))
	require.NoError(t, err)
	assert.True(t, proto.Equal(r, back[0]), "got %v", back[0])
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestReaderRefusesBadBlocks(t *testing.T) {
	tmpl := []*tablesv1.Route{{Actions: forward(1)}}
	for _, tc := range []struct {
		name string
		b    *tablesv1.RouteBlock
		want string
	}{
		{"a template index past the templates", &tablesv1.RouteBlock{Templates: tmpl, Prefixes: []byte{8, 10}, RouteTemplates: []uint32{1}}, "template 1 of 1"},
		{"an IPv6 prefix longer than 128 bits", &tablesv1.RouteBlock{Templates: tmpl, Prefixes: []byte{v6Bias + 129}, RouteTemplates: []uint32{0}}, "length byte 162"},
		{"an address cut short", &tablesv1.RouteBlock{Templates: tmpl, Prefixes: []byte{24, 10, 1}, RouteTemplates: []uint32{0}}, "2 bytes left"},
		{"more template indexes than prefixes", &tablesv1.RouteBlock{Templates: tmpl, Prefixes: []byte{8, 10}, RouteTemplates: []uint32{0, 0}}, "no prefix"},
		{"more prefixes than template indexes", &tablesv1.RouteBlock{Templates: tmpl, Prefixes: []byte{0, v6Bias}, RouteTemplates: []uint32{0}}, "1 bytes beyond"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Routes(tc.b)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	routes, err := Routes(nil)
	require.NoError(t, err)
	assert.Empty(t, routes, "a nil block has no routes")
}

func TestReaderAllocatesNothing(t *testing.T) {
	b, err := Pack(randomRoutes(rand.New(rand.NewPCG(1, 2)), 1000))
	require.NoError(t, err)
	n := 0
	allocs := testing.AllocsPerRun(10, func() {
		r := NewReader(b)
		for r.Next() {
			n++
		}
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 10*1000+1000, n) // AllocsPerRun warms up once
}

func TestPackDelta(t *testing.T) {
	big := randomRoutes(rand.New(rand.NewPCG(3, 4)), PackMin)
	small := big[:PackMin-1]
	d := &tablesv1.TableDelta{BaseGeneration: 4, Generation: 5, Vpcs: []*tablesv1.VpcRouteDelta{
		{VpcId: 1, UpsertRoutes: small, RemoveRoutes: []string{"10.0.0.0/8"}},
		{VpcId: 2, UpsertRoutes: small, UpsertLocalRoutes: big, RemoveLocalRoutes: []string{"10.9.0.0/16"}},
	}}
	orig := proto.Clone(d)

	packed := PackDelta(d)
	assert.True(t, proto.Equal(orig, d), "the delta given is unchanged")
	assert.Same(t, d.Vpcs[0], packed.Vpcs[0], "a VPC with small lists only is shared")
	v := packed.Vpcs[1]
	assert.Len(t, v.UpsertRoutes, PackMin-1, "a small list stays plain")
	assert.Nil(t, v.UpsertLocalRoutes)
	assert.Equal(t, PackMin, Len(v.UpsertLocalRouteBlock))
	assert.Equal(t, []string{"10.9.0.0/16"}, v.RemoveLocalRoutes)

	back, err := UnpackDelta(packed)
	require.NoError(t, err)
	want := proto.Clone(d).(*tablesv1.TableDelta)
	want.Vpcs[1].UpsertLocalRoutes = big
	assert.True(t, proto.Equal(want, back), "unpacked: %v", back)

	plain := &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 1, UpsertRoutes: small}}}
	assert.Same(t, plain, PackDelta(plain), "nothing to pack: the delta itself")
	bad := &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 1, UpsertRoutes: append(append([]*tablesv1.Route(nil), big...), &tablesv1.Route{Prefix: "nope"})}}}
	assert.Same(t, bad, PackDelta(bad), "a list with a bad prefix stays plain, for the receiver to refuse")
}

func FuzzReader(f *testing.F) {
	b, err := Pack(randomRoutes(rand.New(rand.NewPCG(5, 6)), 20))
	require.NoError(f, err)
	wire, err := proto.Marshal(b)
	require.NoError(f, err)
	f.Add(wire)
	f.Fuzz(func(t *testing.T, wire []byte) {
		var b tablesv1.RouteBlock
		if proto.Unmarshal(wire, &b) != nil {
			return
		}
		routes, err := Routes(&b)
		if err != nil {
			return
		}
		// What decodes packs back to the same block's routes.
		again, err := Pack(routes)
		require.NoError(t, err)
		back, err := Routes(again)
		require.NoError(t, err)
		require.Equal(t, len(routes), len(back))
		for i := range routes {
			require.True(t, proto.Equal(routes[i], back[i]))
		}
	})
}

func TestPackTables(t *testing.T) {
	big := randomRoutes(rand.New(rand.NewPCG(7, 8)), 3*PackMin)
	tb := &tablesv1.Tables{
		Generation: 9, Gateway: &tablesv1.Gateway{Asn: 65000, RouterId: "192.0.2.1"},
		Ports:     []*tablesv1.Port{{Id: 1, Name: "p1"}},
		NatTables: []*tablesv1.NatTable{{Segments: []*tablesv1.NatSegment{{From: "10.0.0.0/8", To: "172.16.0.0/12"}}}},
		Vpcs: []*tablesv1.Vpc{
			{Id: 0, Name: "small", Subnets: []string{"10.0.0.0/16"}, RouterIps: []string{"10.0.0.1"}, Routes: big[:3]},
			{Id: 1, Name: "e", External: true, Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_UNTAGGED, PortId: 1},
				Routes: big[:PackMin], LocalRoutes: big},
		},
	}
	orig := proto.Clone(tb)

	packed := PackTables(tb)
	assert.True(t, proto.Equal(orig, tb), "the tables given are unchanged")
	assert.Same(t, tb.Vpcs[0], packed.Vpcs[0], "a VPC with small lists only is shared")
	assert.Same(t, tb.Gateway, packed.Gateway)
	e := packed.Vpcs[1]
	assert.Empty(t, e.Routes)
	assert.Empty(t, e.LocalRoutes)
	assert.Equal(t, PackMin, Len(e.RouteBlock))
	assert.Equal(t, 3*PackMin, Len(e.LocalRouteBlock))
	assert.Equal(t, "e", e.Name)
	assert.True(t, e.External)
	assert.Same(t, tb.Vpcs[1].Attachment, e.Attachment)

	back, err := UnpackTables(packed)
	require.NoError(t, err)
	want := proto.Clone(tb).(*tablesv1.Tables)
	want.Vpcs[1].Routes, want.Vpcs[1].LocalRoutes = big[:PackMin], big
	assert.True(t, proto.Equal(want, back), "unpacked: %v", back)
	small := &tablesv1.Tables{Vpcs: []*tablesv1.Vpc{{Routes: big[:3]}}}
	assert.Same(t, small, PackTables(small), "nothing to pack: the tables themselves")
}
