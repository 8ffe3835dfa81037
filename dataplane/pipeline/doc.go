// Package pipeline is the per-packet path of the dataplane: parse, classify
// into a VPC, route, stateless NAT, filter, re-encapsulate, plus the router
// duties of the slow path (ARP/ND, ICMP, neighbour resolution with a bounded
// hold queue, VTEP learning).
//
// It owns the stateful NAT (package nat): a nat.Stateful built from the
// first snapshot with NAT pools (Config.NATSessions, default 1 M), handed
// every burst's masquerade and reply packets in one Translate call,
// reconfigured when a worker first sees a new snapshot, swept a little per
// burst and per Tick; its refusals are counted by name (nat_unsolicited,
// nat_ports_exhausted, ...) beside the pipeline's own drop reasons.
// Pipeline.Sessions lists its sessions, Pipeline.NATCounters its totals and
// Pipeline.Traffic the per-VPC and per-peering packet counters.
//
// IPv4 packets of a burst are parsed first and routed together: their route
// lookups go through one batched lpm walk per VPC (Lookup4Batch). A
// forwarding memo keeps the last stateless decision (source VPC, route
// group, destination, and the source's NAT segment rather than the source
// itself), so the packets of a flow, or of many clients of one segment,
// after the first are rewritten and re-encapsulated with precomputed
// checksum deltas; the per-packet checks (TTL, MTU, ingress filter) stay.
// Neighbours (ARP, ND, and the VTEP behind each inner MAC of a VXLAN
// attachment) are learned into a table the workers share; each worker
// answers from its own copies and recent results (adjacencies with prebuilt
// VXLAN headers, the senders it learned from lately), and a neighbour that
// moves reaches every worker at its next burst.
// It works on bursts of driver-neutral Bufs and never allocates, locks or
// calls through an interface per packet; the DPDK runtime and the pcap
// replay drive it the same way. It must not import the controlplane or any
// driver.
package pipeline
