// Package nat is peergate's stateful NAT: masquerade (source NAT with port
// translation) of a VPC's hosts onto a public pool, endpoint-dependent like
// VPP NAT44-ED, over the session table of package flowtable.
//
// It owns the policy: which public address a host gets (one per host, paired
// pooling, RFC 4787 REQ-2), which ports it may draw from (a block range per
// host, random choice inside, RFC 6056), what a reply or an ICMP error maps
// back to (RFC 5508), when sessions of an old configuration die, and the
// byte-level rewrite of IPv4 packets with incremental checksums (RFC 1624).
// It knows nothing of gRPC, DPDK, the controlplane or the pipeline: the
// pipeline hands it IP packets and gets verdicts back. IPv4 only: an IPv6
// packet is refused with a reason (NPTv6-style stateless NAT covers IPv6).
//
// Wiring: build a Stateful from the compiled tables (PoolsFromTables,
// NewStateful; Reconfigure with each new generation), hand it every burst's
// stateful packets through Translate (Request mirrors the pipeline's
// NATRequest field for field), call Sweep(now, 64) once per burst or run Run
// in a goroutine, and serve Sessions and Counters to the API.
package nat
