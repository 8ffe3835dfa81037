// Package pipeline is the per-packet path of the dataplane: parse, classify
// into a VPC, route, stateless NAT, filter, re-encapsulate, plus the router
// duties of the slow path (ARP/ND, ICMP, neighbour resolution with a bounded
// hold queue, VTEP learning). It works on bursts of driver-neutral Bufs and
// never allocates, locks or calls through an interface per packet; the DPDK
// runtime and the pcap replay drive it the same way. It must not import the
// controlplane or any driver.
package pipeline
