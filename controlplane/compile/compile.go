// Package compile turns a validated manifest.Config, plus routes learned
// from BGP for external VPCs, into the dataplane's tables
// (proto/tables/v1.Tables). It owns the meaning of the configuration; it
// does no I/O beyond reading manifest files in Files, and knows nothing of
// gRPC or the dataplane's lookup structures.
//
// Per VPC it builds two route tables.
//
// local_routes (second lookup, after a packet crossed into the VPC; ttl 0):
// each subnet ACTION_DELIVER; each peergate static route DELIVER via its
// next hop; for externals the best BGP-learned routes (lowest MED, then
// shortest AS path, equal ones ECMP) DELIVER via the route's next hop when
// it lies in the VPC's subnets, else via the neighbour's address; the
// router IPs and Kube-OVN localConnectIPs as /32 (/128) ACTION_LOCAL.
//
// routes (first lookup, packets from the VPC's hosts):
//   - the local routes with ttl_decrement 1 (the gateway is one router);
//     for an external only its subnets and router IPs: its static and
//     learned routes describe the world behind it, and copying them would
//     hairpin its traffic back out;
//   - Kube-OVN staticRoutes through a vpcPeering: ACTION_FORWARD to the
//     remote VPC, ttl_decrement 2 (two VPC routers); policySrc routes are
//     emitted with match_source after the destination routes; the remote
//     localConnectIP is reachable (FORWARD, ttl 1) like a router next door;
//   - Peering API: the peer side's ips minus not, at their `as` addresses
//     under stateless NAT, as FORWARD (ttl 1) with dst_nat per aligned
//     segment of the i-th-address mapping, src_nat = this side's NAT table
//     (ips minus not onto as; identity without as) so unexposed sources are
//     dropped, ingress_filter = the peer side's rules, metric = the peer
//     side's metric. A stateful side keeps the identity source check and
//     adds snat_pool (one pool per VPC and prefix set, shared by all its
//     peerings); the peer VPC gets the pool prefixes as FORWARD back with
//     reverse_pool. An external peer's exposure is intersected with what it
//     can reach (subnets, static routes, best learned routes), each piece
//     with the route's metric (MED) plus the side's metric.
//
// Resolution. All candidates of a table are resolved as a router would:
// for each address the longest candidate prefix that covers it and does
// not exclude it wins, then the preference class (own addresses, static
// and Kube-OVN, Peering API, BGP), then the lowest metric; ties are one
// Route with several actions (ECMP). Exclusions (`not`) are not split into
// CIDRs: a candidate keeps its prefix, and a more specific route is
// emitted where the best choice changes, so a learned route that straddles
// a `not` stays one route plus, for the excluded part, the next best
// candidate (another peering's route), or ACTION_DROP when nothing else
// covers it. Excluded addresses are thus unreachable through that peering,
// never routed to a less specific exposure of the same peering. The output
// is the minimal set of routes whose longest-prefix match gives that
// answer, sorted by prefix, so golden files are stable.
//
// Scale. Compile handles a full Internet table: resolve walks the sorted
// candidate events with the covering and best sets of its stack in two
// arenas (no allocation per trie node), learned routes share one Action
// and one source string per next hop and neighbour, and routes without
// destination NAT share their candidate's Action message. The returned
// Tables must therefore be treated as immutable (clone before editing).
// With 1 M learned routes (BenchmarkCompileLearned) a full compile takes
// about 0.9-1.1 s and 390 MB of allocations on the 2-core build machine
// (it took 3-11 s and 1.76 GB before these changes).
//
// Incremental compilation. NewCompiler compiles like Compile and keeps a
// Compiler: the model with its shared-table indexes and, per external VPC,
// the learned paths in a prefix trie (about 85 bytes per learned route; no
// copy of the compiled routes, which the caller holds). UpdateLearned applies one BGP update of an
// external (announcements replace the neighbour's path for the prefix,
// withdrawals remove it) and returns a TableDelta. It relies on a property
// of the resolution: the routes inside a prefix R depend only on the
// candidates that cover R (its ancestors in the resolution trie) and those
// inside R. A change at learned prefix P can thus only alter, in the
// external's local_routes, the routes inside P and, in the routes of each
// VPC peering with that external (non-stateful side), the routes inside P
// as that side exposes it (P translated through each overlapping `as`
// segment, or the whole segment when P covers it). For each such table and
// region UpdateLearned collects the learned routes overlapping the region
// (covering and covered, read back through the segments), resolves the
// region with the old paths and with the new ones, and returns the
// difference as upserts and removals; ApplyDelta applies it. Applying the
// deltas gives exactly the tables of a full Compile of the new learned set
// (TestIncrementalUpdatesGiveTheTablesOfAFullCompile checks this on random
// update sequences). Withdrawals of an update are applied before its
// announcements. Figures on the build machine: with the Internet table of
// ../shared/data from both externals (2.1 M learned routes,
// BenchmarkInternetTable) NewCompiler takes 2.3 s, the Compiler and its
// tables hold about 200 bytes per learned route, and one update plus
// ApplyDelta takes 0.13 ms at p50 and 1.3 ms at p99. With 1 M random /8-/24
// routes (BenchmarkUpdateLearned) an update takes 0.35 ms at p50 and 12-35
// ms at p99 (the tail: updates of /8s whose regions hold thousands of
// routes, and GC). An update touching more than an eighth of the
// external's prefixes (a session going down or up, a batch of a table
// streaming in) resolves the affected tables whole, before and after:
// 2-2.5 s for 500 k routes (BenchmarkSessionLearned).
//
// UpdateLearnedOver, given the live tables (what the server holds), reads
// the routes before an update from them instead of resolving them, so a
// whole-table update resolves once; all tables of an update are resolved
// from one set of learned routes and local candidates; and ApplyDelta
// rebuilds a route list with more than InPlaceMax changes in one pass
// (a table streaming in sends deltas of hundreds of thousands of routes,
// which inserted one at a time moved the whole list each time). The
// Internet table streamed into an empty external in batches as large as
// the table so far (BenchmarkStreamingInternetTable, over/doubling) costs
// about 2.5 complete compilations; in fixed batches of 32 k routes, ten
// or more (a region's resolution costs ~15x a route of a whole-table
// one), which is why bgpsync paces a transfer's batches.
package compile

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// LearnedRoute is one route an external VPC's BGP neighbour advertised.
type LearnedRoute struct {
	Prefix    netip.Prefix
	NextHop   netip.Addr
	MED       uint32
	Neighbor  string // neighbour address
	ASPathLen int    // lengths above 65535 count as 65535 (a BGP message holds far fewer)
}

// maxASPathLen is the longest AS path length the compiler tells apart.
const maxASPathLen = 0xffff

func clampASPathLen(n int) int { return min(max(n, 0), maxASPathLen) }

// Learned maps an external VPC's name to the routes its BGP neighbours
// advertised.
type Learned map[string][]LearnedRoute

// Count returns the number of learned routes of every VPC.
func (l Learned) Count() int {
	n := 0
	for _, rs := range l {
		n += len(rs)
	}
	return n
}

// Compile validates c and compiles it with the learned routes. When
// validation finds errors, it returns them as diagnostics and an error that
// wraps them all; warnings are returned either way.
func Compile(c *manifest.Config, learned Learned) (*tablesv1.Tables, []validate.Diagnostic, error) {
	m, warns, errs := validate.Check(c)
	if len(errs) > 0 {
		return nil, append(warns, errs...), diagnosticsError(errs)
	}
	t, err := build(m, learned)
	if err != nil {
		return nil, warns, err
	}
	return t, warns, nil
}

// Files loads the manifests at paths (files or directories) and compiles
// them without learned routes.
func Files(paths ...string) (*tablesv1.Tables, []validate.Diagnostic, error) {
	objs, err := manifest.LoadPaths(paths...)
	if err != nil {
		return nil, nil, err
	}
	return Compile(manifest.NewConfig(objs), nil)
}

func diagnosticsError(ds []validate.Diagnostic) error {
	errs := make([]error, len(ds))
	for i, d := range ds {
		errs[i] = errors.New(d.String())
	}
	return fmt.Errorf("invalid configuration (%d errors): %w", len(ds), errors.Join(errs...))
}
