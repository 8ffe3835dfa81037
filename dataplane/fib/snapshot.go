package fib

import (
	"net/netip"

	"github.com/peergate/peergate/lpm"
)

// Action kinds, mirroring tablesv1.ActionKind.
const (
	ActDeliver = 1
	ActForward = 2
	ActDrop    = 3
	ActLocal   = 4
)

// Attachment kinds, mirroring tablesv1.Attachment_Kind.
const (
	AttachNone     = 0
	AttachVXLAN    = 1
	AttachVLAN     = 2
	AttachUntagged = 3
)

// Snapshot is one generation's lookup structures. It is immutable once
// published: never write to it after Holder.Store.
type Snapshot struct {
	Generation uint64
	// VTEP is the gateway's VXLAN source address (IPv4, host order); 0 = none.
	VTEP uint32
	// Ports by Port.id.
	Ports []Port
	// VPCs by Vpc.id.
	VPCs []VPC
	// Groups is what the VPC lpm tables point at: an ECMP group of Actions.
	Groups  []Group
	Actions []Action
	// NatTables and Filters are indexed by the tables' 1-based references
	// minus one.
	NatTables []NatTable
	Filters   []Filter
	NatPools  []NatPool
	// Peerings names Action.Peering (index 0 = "").
	Peerings []string

	class classTable
	// w changes the routes of the newest snapshot of a Build (ApplyDelta);
	// the hot path never reads it.
	w *writer
}

// Port is one NIC port.
type Port struct {
	ID   uint16
	Name string
	MAC  [6]byte
	// IPs the gateway owns on the port; IP4 holds the IPv4 ones in host order.
	IPs []netip.Prefix
	IP4 []uint32
	MTU int
}

// VPC is one tenant or external network.
type VPC struct {
	ID   uint16
	Name string
	// Attachment.
	Kind uint8
	Port uint16
	VNI  uint32
	// VLAN is the 802.1Q tag; OuterVLAN is non-zero for QinQ (the attachment's
	// vlan field carries outer<<12 | inner when above 4095).
	VLAN, OuterVLAN uint16
	// VTEPs of a VXLAN attachment, IPv4 host order; the first is the default.
	VTEPs []uint32
	// MAC is the gateway's MAC inside the VPC (its port's).
	MAC       [6]byte
	RouterIPs []netip.Addr
	// RouterIP4 / RouterIP6 source ICMP errors sent into the VPC (zero when
	// the VPC has none of that family: the port address is used instead).
	RouterIP4 uint32
	RouterIP6 [16]byte
	HasIP6    bool
	External  bool
	// Routes: first lookup for packets from this VPC's hosts. SrcRoutes: the
	// match_source routes, checked first when HasSrcRoutes. Local: delivery
	// routes, the second lookup after crossing into this VPC. Values are
	// indexes into Snapshot.Groups. They are immutable lpm snapshots: a
	// later ApplyDelta changes the writer's tables, never these.
	Routes       *lpm.Snapshot
	SrcRoutes    *lpm.Snapshot
	HasSrcRoutes bool
	Local        *lpm.Snapshot
	MTU          int
}

// Group is a slice of Actions: more than one is ECMP.
type Group struct {
	First, N uint32
}

// Action is a route's compiled action.
type Action struct {
	Kind   uint8
	TTLDec uint8
	DstVPC uint16
	// Via is the next hop of a delivery (invalid = the destination itself).
	Via    netip.Addr
	HasVia bool
	// DstNAT replaces the destination's first DstNATBits bits with DstNATPfx's.
	HasDstNAT  bool
	DstNATBits uint8
	DstNATPfx  [16]byte
	// IPv4 DstNAT precomputed (host order): the new destination is
	// DstNAT4 | dst&^DstNATMask4 (no per-packet shift by a variable count).
	DstNAT4, DstNATMask4 uint32
	// SrcNAT, SnatPool, ReversePool, Filter are the tables' 1-based indexes.
	SrcNAT      uint32
	SnatPool    uint32
	ReversePool uint32
	Filter      uint32
	Peering     uint16
}

// NatTable maps source prefixes onto same-length prefixes.
type NatTable struct {
	LPM      *lpm.Table // value = index into Segments
	Segments []NatSegment
	// Small is set when the table has at most SmallNat IPv4 segments that do
	// not overlap: Lookup4 then scans them instead of walking the trie.
	Small bool
}

// SmallNat is the largest NAT table scanned linearly.
const SmallNat = 4

// Lookup4 returns the segment holding a (host order).
func (t *NatTable) Lookup4(a uint32) (*NatSegment, bool) {
	if t.Small {
		for i := range t.Segments {
			s := &t.Segments[i]
			if a&s.Mask4 == s.From4 {
				return s, true
			}
		}
		return nil, false
	}
	i, ok := t.LPM.Lookup4(a)
	if !ok {
		return nil, false
	}
	return &t.Segments[i], true
}

// NatSegment maps From onto To.
type NatSegment struct {
	From, To netip.Prefix
	Bits     uint8
	To16     [16]byte
	// IPv4 segments: From's network and mask, host order; To4 is To's
	// network (a translated address is To4 | a&^Mask4).
	From4, Mask4, To4 uint32
}

// NatPool is a stateful NAT pool (translated by the stateful NAT hook).
type NatPool struct {
	ID       uint32
	VPC      uint16
	Prefixes []netip.Prefix
}

// Filter is an ingress filter: with rules, a packet passes when one allows it.
type Filter struct {
	Rules []FilterRule
}

// FilterRule allows a protocol (0 any) and ports (0 any).
type FilterRule struct {
	Proto            uint8
	SrcPort, DstPort uint16
}

// Allows reports whether the filter lets a packet through.
func (f *Filter) Allows(proto uint8, sport, dport uint16) bool {
	if len(f.Rules) == 0 {
		return true
	}
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Proto != 0 && r.Proto != proto {
			continue
		}
		if r.SrcPort != 0 && r.SrcPort != sport {
			continue
		}
		if r.DstPort != 0 && r.DstPort != dport {
			continue
		}
		return true
	}
	return false
}

// Classification keys.
const (
	classVXLAN    = 1
	classVLAN     = 2
	classUntagged = 3
)

// ClassifyVXLAN returns the VPC attached by (port, VNI).
func (s *Snapshot) ClassifyVXLAN(port uint16, vni uint32) (int, bool) {
	return s.class.get(classKey(classVXLAN, port, vni))
}

// ClassifyVLAN returns the VPC attached by (port, tag); outer is 0 unless the
// frame is double tagged.
func (s *Snapshot) ClassifyVLAN(port uint16, outer, vlan uint16) (int, bool) {
	return s.class.get(classKey(classVLAN, port, uint32(outer)<<12|uint32(vlan)))
}

// ClassifyUntagged returns the VPC attached untagged to port.
func (s *Snapshot) ClassifyUntagged(port uint16) (int, bool) {
	return s.class.get(classKey(classUntagged, port, 0))
}

func classKey(kind uint8, port uint16, id uint32) uint64 {
	return uint64(kind)<<56 | uint64(port)<<32 | uint64(id)
}

// classTable is an open-addressing hash from classification key to VPC id:
// no map on the hot path.
type classTable struct {
	keys  []uint64 // 0 = empty
	vals  []uint16
	shift uint8
}

func (c *classTable) init(n int) {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	c.keys = make([]uint64, size)
	c.vals = make([]uint16, size)
	c.shift = uint8(64)
	for s := size; s > 1; s >>= 1 {
		c.shift--
	}
}

func (c *classTable) slot(k uint64) int { return int((k * 0x9e3779b97f4a7c15) >> c.shift) }

func (c *classTable) put(k uint64, v uint16) bool {
	mask := len(c.keys) - 1
	for i := c.slot(k); ; i = (i + 1) & mask {
		if c.keys[i] == k {
			return false
		}
		if c.keys[i] == 0 {
			c.keys[i], c.vals[i] = k, v
			return true
		}
	}
}

func (c *classTable) get(k uint64) (int, bool) {
	if len(c.keys) == 0 {
		return 0, false
	}
	mask := len(c.keys) - 1
	for i := c.slot(k); ; i = (i + 1) & mask {
		switch c.keys[i] {
		case k:
			return int(c.vals[i]), true
		case 0:
			return 0, false
		}
	}
}
