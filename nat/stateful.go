package nat

import (
	"context"

	"fmt"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	"github.com/peergate/peergate/flowtable"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Pool is one masquerade pool: the hosts of VPC are translated onto the
// addresses of Prefixes (every address, network and broadcast included: they
// are only ever sources of translated packets).
type Pool struct {
	// ID is the pipeline's handle: Tables.nat_pools' 1-based index.
	ID       uint32
	VPC      uint32
	Prefixes []netip.Prefix
}

// Config configures a Stateful.
type Config struct {
	// Capacity is the maximum number of sessions (memory is allocated up
	// front: about 57 bytes per session).
	Capacity int
	// Timeouts by protocol state; the zero value means
	// flowtable.DefaultTimeouts().
	Timeouts flowtable.Timeouts
	Pools    []Pool
	// Generation tags the sessions created under this configuration.
	Generation uint64
	// BlockSize is the size of the port blocks 1024-65535 is cut into
	// (default 512); BlocksPerHost how many consecutive blocks, starting at
	// one chosen by hashing the host, a host draws its ports from (default
	// 8, 4096 ports per remote endpoint); Tries the random draws before a
	// new session is dropped as ports exhausted (default 16).
	BlockSize, BlocksPerHost, Tries int
	// MSS, when non-zero, clamps the MSS option of TCP SYNs in both
	// directions (egress MTU minus VXLAN overhead minus 40).
	MSS uint16
	// Seed keys the hashes (0: random).
	Seed uint64
}

// Reason is the outcome of translating one packet.
type Reason uint8

// Outcomes. Everything but OK is a drop, counted under its name.
const (
	OK Reason = iota
	DropMalformed
	DropFragment
	DropIPv6
	DropProtocol
	DropNoPool
	DropPoolVPC
	DropFull
	DropPortsExhausted
	DropUnsolicited
	DropStale
	DropWrongVPC
	numReasons
)

var reasonNames = [numReasons]string{
	OK:                 "ok",
	DropMalformed:      "nat_malformed",
	DropFragment:       "nat_fragment",
	DropIPv6:           "nat_ipv6_unsupported",
	DropProtocol:       "nat_protocol_unsupported",
	DropNoPool:         "nat_no_pool",
	DropPoolVPC:        "nat_pool_vpc_mismatch",
	DropFull:           "nat_table_full",
	DropPortsExhausted: "nat_ports_exhausted",
	DropUnsolicited:    "nat_unsolicited",
	DropStale:          "nat_stale_session",
	DropWrongVPC:       "nat_wrong_vpc",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "nat_unknown"
}

// Key is a packet's 5-tuple plus the VPC it came from. Outbound: Src is the
// inside host, Dst the remote end. Inbound: Src is the remote end, Dst the
// public address. ICMP echo requests carry the identifier as SrcPort, echo
// replies as DstPort.
type Key struct {
	VPC              uint32
	Src, Dst         uint32 // IPv4, host byte order
	SrcPort, DstPort uint16
	Proto            uint8
}

// Stateful owns the pools and the session table. Its methods are safe for
// concurrent use by any number of workers; none allocates on the packet
// path.
type Stateful struct {
	tab    *flowtable.Table
	pools  atomic.Pointer[poolSet]
	seed   uint64
	blocks uint32 // number of port blocks
	bsize  uint32
	span   uint32
	tries  int
	mss    uint16
	drops  [8]dropShard
}

type dropShard struct {
	n [numReasons]atomic.Uint64
	_ [64]byte
}

type addrRange struct {
	first uint32
	n     uint64
}

type poolInfo struct {
	vpc    uint32
	ranges []addrRange
	n      uint64
}

type poolSet struct {
	gen   uint32 // 24 bits, as flowtable stores it
	full  uint64
	pools []*poolInfo // by ID-1; nil where no pool
}

const (
	portMin   = 1024
	portSpace = 65536 - portMin
	genMask   = 1<<24 - 1
)

// NewStateful builds the session table and the pools.
func NewStateful(cfg Config) (*Stateful, error) {
	if cfg.Timeouts == (flowtable.Timeouts{}) {
		cfg.Timeouts = flowtable.DefaultTimeouts()
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 512
	}
	if cfg.BlocksPerHost == 0 {
		cfg.BlocksPerHost = 8
	}
	if cfg.Tries == 0 {
		cfg.Tries = 16
	}
	if cfg.BlockSize < 1 || cfg.BlockSize > portSpace || cfg.BlocksPerHost < 1 || cfg.Tries < 1 || cfg.Tries > 1024 {
		return nil, fmt.Errorf("nat: block size %d, blocks per host %d, tries %d: out of range", cfg.BlockSize, cfg.BlocksPerHost, cfg.Tries)
	}
	tab, err := flowtable.New(flowtable.Config{Capacity: cfg.Capacity, Timeouts: cfg.Timeouts, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("nat: session table: %w", err)
	}
	s := &Stateful{tab: tab, seed: cfg.Seed ^ 0x6a09e667f3bcc908, tries: cfg.Tries, mss: cfg.MSS}
	s.bsize = uint32(cfg.BlockSize)
	s.blocks = portSpace / s.bsize
	s.span = min(uint32(cfg.BlocksPerHost), s.blocks) * s.bsize
	if cfg.Seed == 0 {
		s.seed = uint64(time.Now().UnixNano()) * 0x9e3779b97f4a7c15
	}
	if err := s.Reconfigure(cfg.Pools, cfg.Generation); err != nil {
		return nil, err
	}
	return s, nil
}

// Reconfigure swaps in the pools of configuration generation gen. Sessions
// keep working while their pool (same ID) still masquerades the same VPC
// onto a range holding their public address; the others are dropped the next
// time a packet or the sweeper meets them.
func (s *Stateful) Reconfigure(pools []Pool, gen uint64) error {
	ps := &poolSet{gen: uint32(gen) & genMask, full: gen}
	seen := make(map[uint32]bool, len(pools))
	for _, p := range pools {
		if p.ID == 0 || p.ID > 65535 {
			return fmt.Errorf("nat: pool id %d: must be between 1 and 65535", p.ID)
		}
		if p.VPC > 65535 {
			return fmt.Errorf("nat: pool %d: vpc %d: must be below 65536", p.ID, p.VPC)
		}
		pi := &poolInfo{vpc: p.VPC}
		for _, pfx := range p.Prefixes {
			if !pfx.IsValid() {
				return fmt.Errorf("nat: pool %d: invalid prefix", p.ID)
			}
			if !pfx.Addr().Is4() {
				// Stateful NAT is IPv4 only; IPv6 packets toward such a
				// pool are dropped as nat_ipv6_unsupported.
				continue
			}
			pfx = pfx.Masked()
			a := pfx.Addr().As4()
			n := uint64(1) << (32 - pfx.Bits())
			pi.ranges = append(pi.ranges, addrRange{first: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]), n: n})
			pi.n += n
		}
		for int(p.ID) > len(ps.pools) {
			ps.pools = append(ps.pools, nil)
		}
		if ps.pools[p.ID-1] != nil || seen[p.ID] {
			return fmt.Errorf("nat: pool id %d given twice", p.ID)
		}
		seen[p.ID] = true
		if pi.n > 0 {
			ps.pools[p.ID-1] = pi
		}
	}
	s.pools.Store(ps)
	return nil
}

// PoolsFromTables converts the compiled tables' pools; a pool's ID is its
// 1-based index, as Action.snat_pool and Action.reverse_pool refer to it.
func PoolsFromTables(pools []*tablesv1.NatPool) ([]Pool, error) {
	out := make([]Pool, 0, len(pools))
	for i, p := range pools {
		np := Pool{ID: uint32(i + 1), VPC: p.GetVpc()}
		for _, s := range p.GetPrefixes() {
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("nat pool %d: %w", i+1, err)
			}
			np.Prefixes = append(np.Prefixes, pfx)
		}
		out = append(out, np)
	}
	return out, nil
}

func (ps *poolSet) pool(id uint32) *poolInfo {
	if id == 0 || int(id) > len(ps.pools) {
		return nil
	}
	return ps.pools[id-1]
}

func (p *poolInfo) addr(k uint64) uint32 {
	k = (k & (1<<32 - 1)) * p.n >> 32 // p.n <= 2^32: no division
	for _, r := range p.ranges {
		if k < r.n {
			return r.first + uint32(k)
		}
		k -= r.n
	}
	return p.ranges[0].first
}

func (p *poolInfo) contains(a uint32) bool {
	for _, r := range p.ranges {
		if uint64(a-r.first) < r.n {
			return true
		}
	}
	return false
}

// valid reports whether a session of an older generation still belongs to
// this configuration.
func (ps *poolSet) valid(e *flowtable.Entry) bool {
	pi := ps.pool(uint32(e.Pool))
	return pi != nil && pi.vpc == uint32(e.Flow.VPC) && pi.contains(e.Public)
}

func (s *Stateful) hostHash(vpc uint32, src uint32) uint64 {
	z := (uint64(vpc)<<32 | uint64(src)) ^ s.seed
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (s *Stateful) drop(r Reason, shard uint64) Reason {
	s.drops[shard&7].n[r].Add(1)
	return r
}

// Outbound translates the first leg of a masqueraded flow: it finds or
// creates the session of k (Src an inside host of k.VPC) on pool and returns
// the public address and port to rewrite the source to.
func (s *Stateful) Outbound(pool uint32, k *Key, tcpFlags uint8, now int64) (uint32, uint16, Reason) {
	ps := s.pools.Load()
	pi := ps.pool(pool)
	if pi == nil {
		return 0, 0, s.drop(DropNoPool, uint64(k.Src))
	}
	if pi.vpc != k.VPC {
		return 0, 0, s.drop(DropPoolVPC, uint64(k.Src))
	}
	f := flowtable.Flow{Inner: k.Src, Remote: k.Dst, InnerPort: k.SrcPort, RemotePort: k.DstPort, VPC: uint16(k.VPC), Proto: k.Proto}
	h := s.tab.HashFlow(&f)
	return s.outbound(ps, pi, pool, &f, h, tcpFlags, now)
}

func (s *Stateful) outbound(ps *poolSet, pi *poolInfo, pool uint32, f *flowtable.Flow, h uint64, tcpFlags uint8, now int64) (uint32, uint16, Reason) {
	if addr, port, ok := s.existing(ps, f, h, tcpFlags, now); ok {
		return addr, port, OK
	}
	return s.create(ps, pi, pool, f, h, tcpFlags, now, nil)
}

// existing is the lookup half of outbound.
func (s *Stateful) existing(ps *poolSet, f *flowtable.Flow, h uint64, tcpFlags uint8, now int64) (uint32, uint16, bool) {
	var e flowtable.Entry
	if s.tab.LookupFlow(f, h, tcpFlags, true, now, &e) && (e.Gen == ps.gen || s.revalidate(ps, &e)) {
		return e.Public, e.PublicPort, true
	}
	return 0, 0, false
}

// cand is what a new session of one flow draws from: its host's public
// address, port range and the random state its port draws start from.
type cand struct {
	pi    *poolInfo // the pool it was computed for
	pub   uint32
	rnd   uint64
	ports flowtable.Ports
	// draw is the first port draw prefetchCreate made (not made otherwise:
	// Create then draws it itself).
	draw flowtable.Draw
}

// candidates fills c for f (hash h) on pool pi. The host's block is chosen by
// multiply-shift of the hash's high half, not a modulo: a division was a
// visible share of nat's cost per new session.
func (s *Stateful) candidates(pi *poolInfo, f *flowtable.Flow, h uint64, now int64, c *cand) {
	hh := s.hostHash(uint32(f.VPC), f.Inner)
	c.pi = pi
	c.pub = pi.addr(hh)
	c.rnd = h ^ uint64(now) | 1
	c.ports = flowtable.Ports{Min: portMin, Total: s.blocks * s.bsize, Start: uint32((hh>>32)*uint64(s.blocks)>>32) * s.bsize, Span: s.span, Tries: s.tries}
}

// prefetchCreate starts loading what create(f) will touch, and leaves in c
// the candidates create then reuses.
func (s *Stateful) prefetchCreate(pi *poolInfo, f *flowtable.Flow, h uint64, now int64, c *cand) {
	s.candidates(pi, f, h, now, c)
	s.tab.PrepareNew(&c.draw, f, h, c.pub, &c.ports, c.rnd)
}

// create is the session-creating half of outbound. c, when not nil and
// computed for pi, holds f's candidates already (prefetchCreate's).
func (s *Stateful) create(ps *poolSet, pi *poolInfo, pool uint32, f *flowtable.Flow, h uint64, tcpFlags uint8, now int64, c *cand) (uint32, uint16, Reason) {
	var own cand
	if c == nil || c.pi != pi {
		c = &own
		s.candidates(pi, f, h, now, c)
	}
	rnd := c.rnd
	var e flowtable.Entry
	for retry := 0; ; retry++ {
		st := s.tab.CreateDrawn(&e, f, h, c.pub, &c.ports, &rnd, &c.draw, uint16(pool), ps.gen, tcpFlags, now)
		switch st {
		case flowtable.Created:
			return e.Public, e.PublicPort, OK
		case flowtable.Found:
			// A session Create finds was not looked at by the caller
			// (Translate's second pass skips the lookup, or another
			// worker raced it in): a stale one is revalidated or killed
			// and created anew, once.
			if e.Gen == ps.gen || s.revalidate(ps, &e) {
				return e.Public, e.PublicPort, OK
			}
			if retry > 0 {
				return 0, 0, s.drop(DropStale, h)
			}
			continue
		case flowtable.Full:
			return 0, 0, s.drop(DropFull, h)
		}
		return 0, 0, s.drop(DropPortsExhausted, h)
	}
}

// revalidate retags a session of an older generation that still belongs to
// the current pools, or kills it.
func (s *Stateful) revalidate(ps *poolSet, e *flowtable.Entry) bool {
	if ps.valid(e) {
		s.tab.Revalidate(e, ps.gen)
		return true
	}
	s.tab.Kill(e)
	return false
}

// Inbound translates a reply: k.Src is the remote end, k.Dst a public
// address. It returns the session's VPC, inside host and port.
func (s *Stateful) Inbound(pool uint32, k *Key, tcpFlags uint8, now int64) (vpc uint32, addr uint32, port uint16, r Reason) {
	rk := flowtable.Reply{Public: k.Dst, Remote: k.Src, PublicPort: k.DstPort, RemotePort: k.SrcPort, Proto: k.Proto}
	return s.inbound(pool, &rk, s.tab.HashReply(&rk), tcpFlags, true, now)
}

func (s *Stateful) inbound(pool uint32, rk *flowtable.Reply, h uint64, tcpFlags uint8, touch bool, now int64) (uint32, uint32, uint16, Reason) {
	var e flowtable.Entry
	found := s.tab.LookupReply(rk, h, tcpFlags, touch, now, &e)
	return s.inboundEntry(pool, found, &e, h)
}

// inboundEntry is the half of inbound after the lookup: found and e are its
// result, h the reply key's hash.
func (s *Stateful) inboundEntry(pool uint32, found bool, e *flowtable.Entry, h uint64) (uint32, uint32, uint16, Reason) {
	if !found {
		return 0, 0, 0, s.drop(DropUnsolicited, h)
	}
	ps := s.pools.Load()
	if e.Gen != ps.gen && !s.revalidate(ps, e) {
		return 0, 0, 0, s.drop(DropStale, h)
	}
	// The reply must come through a pool of the session's VPC: a pool shared
	// by two VPCs must not let one VPC's peering reach the other's hosts.
	if pi := ps.pool(pool); pi == nil || pi.vpc != uint32(e.Flow.VPC) {
		return 0, 0, 0, s.drop(DropWrongVPC, h)
	}
	return uint32(e.Flow.VPC), e.Flow.Inner, e.Flow.InnerPort, OK
}

// Sweep frees expired sessions among the next n slots; call it with a small
// n (64) once per burst or idle tick, or use Run.
func (s *Stateful) Sweep(now int64, n int) int { return s.tab.Sweep(now, n) }

// Run sweeps the whole table once per period (default one second), in slices
// every 10 ms, until ctx ends. clock returns the same clock the packet path
// uses (nanoseconds).
func (s *Stateful) Run(ctx context.Context, clock func() int64, period time.Duration) {
	if period <= 0 {
		period = time.Second
	}
	const tick = 10 * time.Millisecond
	per := max(1, int(int64(s.tab.Slots())*int64(tick)/int64(period)))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tab.Sweep(clock(), per)
		}
	}
}

// Counters are the NAT's totals since NewStateful.
type Counters struct {
	Sessions, Capacity uint64
	// Created, Expired (idle timeout or closed by traffic), Killed (their
	// configuration went away).
	Created, Expired, Killed uint64
	// Drops by reason name (nat_table_full, nat_ports_exhausted,
	// nat_unsolicited, ...).
	Drops map[string]uint64
}

// Counters sums the table's and the NAT's counters.
func (s *Stateful) Counters() Counters {
	tc := s.tab.Counters()
	c := Counters{Sessions: tc.Live, Capacity: tc.Capacity, Created: tc.Created, Expired: tc.Expired, Killed: tc.Killed, Drops: map[string]uint64{}}
	for r := DropMalformed; r < numReasons; r++ {
		var n uint64
		for i := range s.drops {
			n += s.drops[i].n[r].Load()
		}
		c.Drops[r.String()] = n
	}
	return c
}

// Bytes is the memory the session table holds.
func (s *Stateful) Bytes() int { return s.tab.Bytes() }

// SessionInfo describes one session for listings (gwctl get flows).
type SessionInfo struct {
	VPC    uint32
	Pool   uint32
	Proto  uint8
	Inner  netip.AddrPort
	Public netip.AddrPort
	Remote netip.AddrPort
	State  string
	// Generation is the low 24 bits of the configuration generation the
	// session was last validated under.
	Generation uint32
	ExpiresIn  time.Duration
}

// Filter selects sessions to list.
type Filter struct {
	// VPC restricts the list to one VPC when AllVPCs is false.
	VPC     uint32
	AllVPCs bool
	// Limit caps the number listed (0: no cap).
	Limit int
}

// Sessions lists live sessions matching f, sorted by VPC, inner address and
// port. For the API, not the packet path: it allocates.
func (s *Stateful) Sessions(now int64, f Filter) []SessionInfo {
	var out []SessionInfo
	s.tab.Walk(now, func(e *flowtable.Entry) bool {
		if !f.AllVPCs && uint32(e.Flow.VPC) != f.VPC {
			return true
		}
		state := e.State.String()
		if e.Flow.Proto != flowtable.ProtoTCP {
			state = "active"
		}
		out = append(out, SessionInfo{
			VPC: uint32(e.Flow.VPC), Pool: uint32(e.Pool), Proto: e.Flow.Proto,
			Inner:      netip.AddrPortFrom(addr4(e.Flow.Inner), e.Flow.InnerPort),
			Public:     netip.AddrPortFrom(addr4(e.Public), e.PublicPort),
			Remote:     netip.AddrPortFrom(addr4(e.Flow.Remote), e.Flow.RemotePort),
			State:      state,
			Generation: e.Gen,
			ExpiresIn:  time.Duration(int64(e.Deadline)*int64(time.Second) - now),
		})
		return f.Limit == 0 || len(out) < f.Limit
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.VPC != b.VPC {
			return a.VPC < b.VPC
		}
		if c := a.Inner.Compare(b.Inner); c != 0 {
			return c < 0
		}
		return a.Remote.Compare(b.Remote) < 0
	})
	return out
}

func addr4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}
