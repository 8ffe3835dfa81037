package validate

import (
	"math/big"
	"net/netip"
	"slices"

	"go4.org/netipx"

	"github.com/peergate/peergate/controlplane/manifest"
)

// Model is a Config resolved into one record per VPC and per peering, with
// every address parsed. Check builds it while validating; it is complete
// and consistent only when Check reports no errors, which is how package
// compile consumes it.
type Model struct {
	Gateway  *Gateway // nil without a Gateway object
	VPCs     []*VPC   // sorted by name
	ByName   map[string]*VPC
	Peerings []*Peering     // Peering API objects, sorted by name
	Links    []*KubeOVNLink // reciprocal Kube-OVN peerings, sorted by pair
}

// Gateway is the resolved peergate Gateway.
type Gateway struct {
	ASN      uint32
	RouterID netip.Addr
	VTEPIP   netip.Addr
	Ports    []Port // manifest order
}

// Port is one resolved gateway port.
type Port struct {
	Name, Device, MAC string
	IPs               []netip.Prefix
	MTU               int
}

// Attachment kinds.
const (
	AttachNone = iota
	AttachVXLAN
	AttachVLAN
	AttachUntagged
)

// Attachment is how a VPC reaches the gateway.
type Attachment struct {
	Kind  int
	Port  string
	VNI   uint32
	VLAN  int
	VTEPs []netip.Addr
}

// VPC merges a Kube-OVN Vpc, its Subnets and a peergate VPC of one name.
type VPC struct {
	Name       string
	Subnets    []netip.Prefix          // sorted, deduplicated
	SubnetName map[string]netip.Prefix // Kube-OVN Subnet name -> CIDR
	RouterIPs  []netip.Addr
	Attachment Attachment
	Routes     []Route // peergate static routes
	External   bool
	Neighbors  []Neighbor
	// Kube-OVN static routes, in manifest order.
	KubeRoutes []KubeRoute
	// Kube-OVN peering ends of this VPC, in manifest order.
	KubePeerings []KubePeering

	kube, pg *manifest.Object
}

// Route is a static route inside a VPC.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

// Neighbor is a BGP neighbour of an external VPC.
type Neighbor struct {
	Address netip.Addr
	Port    int
	ASN     uint32
}

// KubeRoute is a Kube-OVN static route.
type KubeRoute struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr
	MatchSource bool // policySrc
}

// KubePeering is one end of a Kube-OVN peering.
type KubePeering struct {
	Remote  string
	Connect netip.Prefix // localConnectIP with its prefix length
}

// KubeOVNLink is a reciprocal Kube-OVN peering between VPCs A < B.
type KubeOVNLink struct {
	A, B     string
	ConnectA netip.Prefix
	ConnectB netip.Prefix
}

// Name is the link's counter name, "kubeovn:A--B".
func (l *KubeOVNLink) Name() string { return "kubeovn:" + l.A + "--" + l.B }

// Peering is a resolved Peering API object.
type Peering struct {
	Name  string
	Sides [2]*Side // document order
}

// Side is one resolved side of a Peering.
type Side struct {
	VPC      string
	CIDRs    []netip.Prefix // cidr and fromVPCSubnet entries, in order
	Nots     []netip.Prefix
	As       []netip.Prefix
	Stateful bool
	Metric   uint32
	Ingress  []Rule
}

// Rule is one ingress allow rule, split per protocol.
type Rule struct {
	Protocol         int // 0 any, 6 TCP, 17 UDP
	SrcPort, DstPort int
	Stateless        bool
}

// Exposed is the side's own addresses reachable through the peering: ips
// minus not.
func (s *Side) Exposed() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range s.CIDRs {
		b.AddPrefix(p)
	}
	for _, p := range s.Nots {
		b.RemovePrefix(p)
	}
	set, _ := b.IPSet()
	return set
}

// Seen is the set of addresses the other side uses to reach this side: the
// pool for stateful NAT (replies only), the mapped exposure for stateless
// NAT, the exposure itself otherwise.
func (s *Side) Seen() *netipx.IPSet {
	if s.Stateful {
		return setOf(s.As)
	}
	if len(s.As) == 0 {
		return s.Exposed()
	}
	var b netipx.IPSetBuilder
	for _, seg := range s.ExposedSegments() {
		b.AddPrefix(seg.To)
	}
	set, _ := b.IPSet()
	return set
}

// Segment maps prefix From onto prefix To of the same length.
type Segment struct{ From, To netip.Prefix }

// Segments is the stateless mapping of the i-th address of CIDRs onto the
// i-th address of As, as aligned prefix pairs; identity when As is empty or
// the side is stateful. It ignores Nots.
func (s *Side) Segments() []Segment {
	if len(s.As) == 0 || s.Stateful {
		segs := make([]Segment, len(s.CIDRs))
		for i, p := range s.CIDRs {
			segs[i] = Segment{p, p}
		}
		return segs
	}
	return alignSegments(s.CIDRs, s.As)
}

// ExposedSegments is Segments restricted to Exposed (the nots cut out).
func (s *Side) ExposedSegments() []Segment {
	var out []Segment
	for _, seg := range s.Segments() {
		var b netipx.IPSetBuilder
		b.AddPrefix(seg.From)
		for _, n := range s.Nots {
			b.RemovePrefix(n)
		}
		set, _ := b.IPSet()
		for _, p := range set.Prefixes() {
			out = append(out, Segment{p, Translate(p, seg)})
		}
	}
	return out
}

// Translate maps p, which lies inside seg.From, onto seg.To.
func Translate(p netip.Prefix, seg Segment) netip.Prefix {
	if seg.From.Addr() == seg.To.Addr() {
		return p
	}
	if f, t, a := seg.From.Addr(), seg.To.Addr(), p.Addr(); f.Is4() && t.Is4() && a.Is4() {
		// The common case without big.Int: compilation handles up to
		// millions of learned routes.
		fb, tb, ab := f.As4(), t.As4(), a.As4()
		off := be32(ab) - be32(fb)
		n := be32(tb) + off
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), p.Bits())
	}
	off := new(big.Int).Sub(addrInt(p.Addr()), addrInt(seg.From.Addr()))
	a := intAddr(new(big.Int).Add(addrInt(seg.To.Addr()), off), seg.To.Addr().Is4())
	return netip.PrefixFrom(a, p.Bits())
}

// alignSegments walks both prefix lists in step, cutting them into the
// largest blocks aligned on both sides.
func alignSegments(from, to []netip.Prefix) []Segment {
	var out []Segment
	i, j := 0, 0
	var fa, ta *big.Int // current positions
	var fr, tr *big.Int // remaining sizes in the current prefixes
	for i < len(from) && j < len(to) {
		if fa == nil {
			fa, fr = addrInt(from[i].Addr()), size(from[i])
		}
		if ta == nil {
			ta, tr = addrInt(to[j].Addr()), size(to[j])
		}
		bits := from[i].Addr().BitLen()
		// largest k with 2^k dividing both positions and <= both remainders
		k := 0
		for k < bits {
			n := new(big.Int).Lsh(big.NewInt(1), uint(k+1))
			if new(big.Int).Mod(fa, n).Sign() != 0 || new(big.Int).Mod(ta, n).Sign() != 0 || n.Cmp(fr) > 0 || n.Cmp(tr) > 0 {
				break
			}
			k++
		}
		// to may be a different family only in invalid configs; keep bits per side
		tbits := to[j].Addr().BitLen()
		n := new(big.Int).Lsh(big.NewInt(1), uint(k))
		out = append(out, Segment{
			From: netip.PrefixFrom(intAddr(fa, from[i].Addr().Is4()), bits-k),
			To:   netip.PrefixFrom(intAddr(ta, to[j].Addr().Is4()), max(tbits-k, 0)),
		})
		fa, ta = new(big.Int).Add(fa, n), new(big.Int).Add(ta, n)
		fr, tr = new(big.Int).Sub(fr, n), new(big.Int).Sub(tr, n)
		if fr.Sign() == 0 {
			i, fa = i+1, nil
		}
		if tr.Sign() == 0 {
			j, ta = j+1, nil
		}
	}
	return out
}

func setOf(ps []netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	set, _ := b.IPSet()
	return set
}

func size(p netip.Prefix) *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}

func sizeOf(ps []netip.Prefix) *big.Int {
	n := new(big.Int)
	for _, p := range ps {
		n.Add(n, size(p))
	}
	return n
}

func addrInt(a netip.Addr) *big.Int {
	b := a.AsSlice()
	return new(big.Int).SetBytes(b)
}

func intAddr(n *big.Int, v4 bool) netip.Addr {
	l := 16
	if v4 {
		l = 4
	}
	b := n.FillBytes(make([]byte, l))
	a, _ := netip.AddrFromSlice(b)
	return a
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, ComparePrefix)
}

// ComparePrefix orders prefixes by address, then length (a parent before
// its children).
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
