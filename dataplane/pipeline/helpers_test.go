package pipeline

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/internal/fulltable"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Two VXLAN VPCs on one fabric port, peered with stateless NAT both ways:
// A's 10.1.0.0/16 appears in B as 172.16.0.0/16, B's 10.2.0.0/24 appears in
// A as 192.168.2.0/24.
const (
	gwVTEP = "192.0.2.1"
	vtepA  = "192.0.2.10"
	vtepB  = "192.0.2.20"
	vtepE  = "192.0.2.30"
)

var (
	macVTEP = mustMAC("52:54:00:00:00:0a")
	macA    = mustMAC("52:54:00:01:00:05")
	macB    = mustMAC("52:54:00:02:00:07")
	macE    = mustMAC("52:54:00:03:00:01")
	gwMAC0  = fib.DefaultPortMAC(0)
)

func mustMAC(s string) [6]byte {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return [6]byte(m)
}

func fwd(dst uint32, opts func(a *tablesv1.Action)) []*tablesv1.Action {
	a := &tablesv1.Action{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: dst, TtlDecrement: 1, Peering: "a--b"}
	if opts != nil {
		opts(a)
	}
	return []*tablesv1.Action{a}
}

func deliver(via string, ttl uint32) []*tablesv1.Action {
	return []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: via, TtlDecrement: ttl}}
}

// peeredTables builds VPCs a (vni 100) and b (vni 200); with internet, an
// external VPC e (vni 300) whose routes (all of them, also exposed to a)
// go via 100.64.0.1.
func peeredTables(internet []string) *tablesv1.Tables {
	t := &tablesv1.Tables{
		Gateway: &tablesv1.Gateway{VtepIp: gwVTEP},
		Ports:   []*tablesv1.Port{{Id: 0, Name: "fabric", Ips: []string{"192.0.2.1/24"}, Mtu: 1500}, {Id: 1, Name: "access", Mtu: 1500}},
		NatTables: []*tablesv1.NatTable{
			{Segments: []*tablesv1.NatSegment{{From: "10.1.0.0/16", To: "172.16.0.0/16"}}},
			{Segments: []*tablesv1.NatSegment{{From: "10.2.0.0/24", To: "192.168.2.0/24"}}},
		},
		Filters: []*tablesv1.Filter{{Rules: []*tablesv1.FilterRule{{Protocol: tablesv1.FilterRule_PROTOCOL_UDP, DstPort: 53}}}},
	}
	a := &tablesv1.Vpc{Id: 0, Name: "a", Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VXLAN, Vni: 100, Vteps: []string{vtepA}},
		RouterIps: []string{"10.1.0.1"},
		Routes: []*tablesv1.Route{
			{Prefix: "10.1.0.0/16", Actions: deliver("", 1)},
			{Prefix: "192.168.2.0/24", Actions: fwd(1, func(x *tablesv1.Action) { x.DstNat = "10.2.0.0/24"; x.SrcNat = 1 })},
		},
		LocalRoutes: []*tablesv1.Route{{Prefix: "10.1.0.0/16", Actions: deliver("", 0)}},
	}
	b := &tablesv1.Vpc{Id: 1, Name: "b", Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VXLAN, Vni: 200, Vteps: []string{vtepB}},
		RouterIps: []string{"10.2.0.1"},
		Routes: []*tablesv1.Route{
			{Prefix: "10.2.0.0/16", Actions: deliver("", 1)},
			{Prefix: "172.16.0.0/16", Actions: fwd(0, func(x *tablesv1.Action) { x.DstNat = "10.1.0.0/16"; x.SrcNat = 2 })},
		},
		LocalRoutes: []*tablesv1.Route{{Prefix: "10.2.0.0/16", Actions: deliver("", 0)}},
	}
	t.Vpcs = []*tablesv1.Vpc{a, b}
	if internet != nil {
		e := &tablesv1.Vpc{Id: 2, Name: "e", External: true, Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_VXLAN, Vni: 300, Vteps: []string{vtepE}},
			RouterIps: []string{"100.64.0.2"},
			Routes:    []*tablesv1.Route{{Prefix: "100.64.0.0/30", Actions: deliver("", 1)}},
		}
		fa := fwd(2, func(x *tablesv1.Action) { x.SrcNat = 1 })
		dl := deliver("100.64.0.1", 0)
		for _, p := range compiledRoutes(internet) {
			a.Routes = append(a.Routes, &tablesv1.Route{Prefix: p, Actions: fa})
			e.LocalRoutes = append(e.LocalRoutes, &tablesv1.Route{Prefix: p, Actions: dl})
		}
		e.LocalRoutes = append(e.LocalRoutes, &tablesv1.Route{Prefix: "100.64.0.0/30", Actions: deliver("", 0)})
		t.Vpcs = append(t.Vpcs, e)
	}
	return t
}

func newTestPipeline(t testing.TB, tables *tablesv1.Tables, cfg Config) (*Pipeline, *Worker, *testPool) {
	t.Helper()
	s, err := fib.Build(tables, fib.Options{})
	if err != nil {
		t.Fatalf("build fib: %v", err)
	}
	var h fib.Holder
	h.Store(s)
	p := New(&h, cfg)
	pool := &testPool{}
	return p, p.NewWorker(0, pool), pool
}

type testPool struct{ allocs, frees int }

func (p *testPool) Alloc() *Buf {
	p.allocs++
	return &Buf{Mem: make([]byte, 2048), Off: Headroom}
}
func (p *testPool) Free(*Buf) { p.frees++ }

func ip4(s string) net.IP { return net.ParseIP(s).To4() }

func ser(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// udpFrame is an Ethernet/IPv4/UDP frame of total length size (>= 42).
func udpFrame(t testing.TB, src, dst [6]byte, sip, dip string, sp, dp uint16, ttl uint8, size int) []byte {
	h := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: 7, Protocol: layers.IPProtocolUDP, SrcIP: ip4(sip), DstIP: ip4(dip)}
	u := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
	u.SetNetworkLayerForChecksum(h)
	pl := make([]byte, max(0, size-42))
	return ser(t, &layers.Ethernet{SrcMAC: src[:], DstMAC: dst[:], EthernetType: layers.EthernetTypeIPv4}, h, u, gopacket.Payload(pl))
}

func arpFrame(t testing.TB, op uint16, sha [6]byte, spa string, tha [6]byte, tpa string) []byte {
	dst := tha
	if op == 1 {
		dst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	return ser(t, &layers.Ethernet{SrcMAC: sha[:], DstMAC: dst[:], EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: sha[:], SourceProtAddress: ip4(spa), DstHwAddress: tha[:], DstProtAddress: ip4(tpa)})[:42]
}

// vxlanFrame wraps inner as the remote VTEP src would send it to the gateway.
func vxlanFrame(src string, vni uint32, inner []byte) []byte {
	f := make([]byte, 50+len(inner))
	copy(f[0:6], gwMAC0[:])
	copy(f[6:12], macVTEP[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(36+len(inner)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:16], ip4(src))
	copy(ip[16:20], ip4(gwVTEP))
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	binary.BigEndian.PutUint16(ip[10:], ^uint16(s))
	binary.BigEndian.PutUint16(f[34:], 50000)
	binary.BigEndian.PutUint16(f[36:], 4789)
	binary.BigEndian.PutUint16(f[38:], uint16(16+len(inner)))
	f[42] = 0x08
	binary.BigEndian.PutUint32(f[46:], vni<<8)
	copy(f[50:], inner)
	return f
}

func bufOf(data []byte, port uint16) *Buf {
	mem := make([]byte, Headroom+len(data)+64)
	copy(mem[Headroom:], data)
	return &Buf{Mem: mem, Off: Headroom, Len: len(data), InPort: port}
}

// run processes frames one burst each and returns the buffers and extras.
func run(w *Worker, now int64, bufs ...*Buf) []*Buf {
	var out Output
	w.ProcessBurst(now, bufs, &out)
	return out.Extra
}

// internetPrefixes returns the IPv4 prefixes of the shared Internet table
// (internal/fulltable: masked, each once), or nil when the file is absent.
// compiledRoutes returns the routes the controlplane compiles from learned
// prefixes that all have one next hop: a prefix inside another one adds
// nothing to the longest-prefix match, and compile emits the minimal set
// of routes with the same answer (controlplane/compile's "Resolution").
// For the full table that is 444 690 of 901 899 IPv4 prefixes, the count
// compile.Compile gives for a VPC peered with an external that learned
// them (plus that VPC's own routes).
func compiledRoutes(prefixes []string) []string {
	ps := make([]netip.Prefix, len(prefixes))
	for i, p := range prefixes {
		ps[i] = netip.MustParsePrefix(p)
	}
	slices.SortFunc(ps, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	var out []string
	var cover netip.Prefix // the last kept prefix: sorted, it covers all that follow inside it
	for _, p := range ps {
		if cover.IsValid() && cover.Contains(p.Addr()) && cover.Bits() <= p.Bits() {
			continue
		}
		cover = p
		out = append(out, p.String())
	}
	return out
}

func internetPrefixes(t testing.TB) []string {
	name := fulltable.Find()
	if name == "" {
		return nil
	}
	ps, err := fulltable.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, p.String())
		}
	}
	return out
}
