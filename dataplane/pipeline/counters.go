package pipeline

import "github.com/peergate/peergate/nat"

// DropReason names why a packet was not forwarded.
type DropReason uint8

// Drop reasons. Every VerdictDrop increments exactly one of them.
const (
	DropMalformed DropReason = iota
	DropUnknownEtherType
	DropUnknownVNI
	DropUnknownVLAN
	DropUnknownPort
	DropNotForUs
	DropInnerVLAN
	DropIPv4Checksum
	DropNoRoute
	DropRouteDrop
	DropFiltered
	DropTTLExpired
	DropSrcNotExposed
	DropStatefulNATUnavailable
	DropStatefulNAT
	DropNeighbourUnresolved
	DropHoldQueueFull
	DropNoHeadroom
	DropTooBig
	DropFragmentation
	DropARPNotForUs
	DropConsumed
	DropNoTables
	DropAllocFailed
	DropNoSourceAddress
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	DropMalformed:              "malformed",
	DropUnknownEtherType:       "unknown_ethertype",
	DropUnknownVNI:             "unknown_vni",
	DropUnknownVLAN:            "unknown_vlan",
	DropUnknownPort:            "unknown_port",
	DropNotForUs:               "not_for_us",
	DropInnerVLAN:              "inner_vlan",
	DropIPv4Checksum:           "ipv4_bad_checksum",
	DropNoRoute:                "no_route",
	DropRouteDrop:              "route_drop",
	DropFiltered:               "filtered",
	DropTTLExpired:             "ttl_expired",
	DropSrcNotExposed:          "source_not_exposed",
	DropStatefulNATUnavailable: "stateful_nat_unavailable",
	DropStatefulNAT:            "stateful_nat",
	DropNeighbourUnresolved:    "neighbour_unresolved",
	DropHoldQueueFull:          "hold_queue_full",
	DropNoHeadroom:             "no_headroom",
	DropTooBig:                 "too_big",
	DropFragmentation:          "fragmentation_needed_df_clear",
	DropARPNotForUs:            "arp_not_for_us",
	DropConsumed:               "consumed",
	DropNoTables:               "no_tables",
	DropAllocFailed:            "alloc_failed",
	DropNoSourceAddress:        "no_source_address",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Event counts what the slow path did.
type Event uint8

// Events.
const (
	EvARPReplied Event = iota
	EvARPRequested
	// EvNeighbourLearned and EvVTEPLearned count new, changed (MAC, VTEP)
	// and re-resolved entries; a confirmation of a live one is not counted.
	EvNeighbourLearned
	EvVTEPLearned
	EvEchoReplied
	EvICMPErrorSent
	EvHeld
	EvReleased
	EvPunted
	EvStatelessNAT
	EvICMPRateLimited
	NumEvents
)

var eventNames = [NumEvents]string{
	EvARPReplied:       "arp_replied",
	EvARPRequested:     "arp_requested",
	EvNeighbourLearned: "neighbour_learned",
	EvVTEPLearned:      "vtep_learned",
	EvEchoReplied:      "icmp_echo_replied",
	EvICMPErrorSent:    "icmp_error_sent",
	EvHeld:             "held",
	EvReleased:         "released",
	EvPunted:           "punted",
	EvStatelessNAT:     "stateless_nat",
	EvICMPRateLimited:  "icmp_error_rate_limited",
}

func (e Event) String() string {
	if e < NumEvents {
		return eventNames[e]
	}
	return "unknown"
}

// MaxPorts is how many ports have their own counters; higher ids share the
// last slot.
const MaxPorts = 64

// PortCounters count one port's traffic as the pipeline saw it.
type PortCounters struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
}

// Counters are one worker's counters: plain fields written only by the
// worker's goroutine, summed by Pipeline.Counters.
type Counters struct {
	Ports [MaxPorts]PortCounters
	Drops [NumDropReasons]uint64
	// NATDrops are the packets the stateful NAT refused, by nat.Reason
	// (nat_unsolicited, nat_ports_exhausted, ...): a drop is counted either
	// here or in Drops, never both.
	NATDrops [MaxNATReasons]uint64
	Events   [NumEvents]uint64
	// Verdicts counts the verdicts given to received buffers (the sum equals
	// the packets received).
	Verdicts [4]uint64
}

// Add adds o to c.
func (c *Counters) Add(o *Counters) {
	for i := range c.Ports {
		c.Ports[i].RxPackets += o.Ports[i].RxPackets
		c.Ports[i].RxBytes += o.Ports[i].RxBytes
		c.Ports[i].TxPackets += o.Ports[i].TxPackets
		c.Ports[i].TxBytes += o.Ports[i].TxBytes
	}
	for i := range c.Drops {
		c.Drops[i] += o.Drops[i]
	}
	for i := range c.NATDrops {
		c.NATDrops[i] += o.NATDrops[i]
	}
	for i := range c.Events {
		c.Events[i] += o.Events[i]
	}
	for i := range c.Verdicts {
		c.Verdicts[i] += o.Verdicts[i]
	}
}

// DropsByName returns the non-zero drop counters by name.
func (c *Counters) DropsByName() map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range c.Drops {
		if v != 0 {
			m[DropReason(i).String()] = v
		}
	}
	for i, v := range c.NATDrops {
		if v != 0 {
			m[nat.Reason(i).String()] += v
		}
	}
	return m
}

// EventsByName returns the non-zero event counters by name.
func (c *Counters) EventsByName() map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range c.Events {
		if v != 0 {
			m[Event(i).String()] = v
		}
	}
	return m
}

func portSlot(p uint16) int {
	if int(p) >= MaxPorts {
		return MaxPorts - 1
	}
	return int(p)
}
