// Package metrics exposes a dataplane's counters to Prometheus. The
// workers' counters stay plain per-worker fields (no atomics, no Prometheus
// calls per packet): a Collector takes the snapshot the dataplane already
// builds for the controlplane (tablesv1.Stats, summed over the workers) at
// each scrape and turns it into const metrics.
package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Snapshot returns the dataplane's current counters; nil before the
// dataplane forwards (the scrape then has only the up gauge).
type Snapshot func() *tablesv1.Stats

// Extra are gauges the Stats message has no field for.
type Extra struct {
	// NATCapacity is the stateful NAT's session table size (0: unknown).
	NATCapacity uint64
}

// Collector is a prometheus.Collector over a Snapshot.
type Collector struct {
	snap  Snapshot
	extra func() Extra

	up, generation                     *prometheus.Desc
	portRxPkts, portRxBytes, portRxDrp *prometheus.Desc
	portTxPkts, portTxBytes, portTxDrp *prometheus.Desc
	vpcPkts, vpcBytes                  *prometheus.Desc
	peerPkts, peerBytes                *prometheus.Desc
	drops, events                      *prometheus.Desc
	sessions, capacity                 *prometheus.Desc
	busy                               *prometheus.Desc
}

// New returns a Collector of snap; extra may be nil.
func New(snap Snapshot, extra func() Extra) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("peergate_dataplane_"+name, help, labels, nil)
	}
	return &Collector{
		snap: snap, extra: extra,
		up:          d("forwarding", "1 when the workers run with tables, else 0."),
		generation:  d("config_generation", "Configuration generation being forwarded with."),
		portRxPkts:  d("port_rx_packets_total", "Packets received on a port.", "port"),
		portRxBytes: d("port_rx_bytes_total", "Bytes received on a port.", "port"),
		portRxDrp:   d("port_rx_dropped_total", "Packets a port dropped on receive (missed, errors, no buffer).", "port"),
		portTxPkts:  d("port_tx_packets_total", "Packets sent on a port.", "port"),
		portTxBytes: d("port_tx_bytes_total", "Bytes sent on a port.", "port"),
		portTxDrp:   d("port_tx_dropped_total", "Packets a port failed to send.", "port"),
		vpcPkts:     d("vpc_rx_packets_total", "Packets received from a VPC.", "vpc"),
		vpcBytes:    d("vpc_rx_bytes_total", "Bytes received from a VPC.", "vpc"),
		peerPkts:    d("peering_packets_total", "Packets forwarded through a peering.", "peering"),
		peerBytes:   d("peering_bytes_total", "Bytes forwarded through a peering.", "peering"),
		drops:       d("drops_total", "Packets dropped by the pipeline and the runtime, by reason.", "reason"),
		events:      d("events_total", "Pipeline and runtime events (punted, generated, held, bursts, NAT session lifecycle, ...).", "event"),
		sessions:    d("nat_sessions", "Live stateful NAT sessions."),
		capacity:    d("nat_session_capacity", "Stateful NAT session table capacity."),
		busy: d("worker_busy_ratio", "Share of the workers' polls that found packets since start "+
			"(over a window: rate(peergate_dataplane_events_total{event=\"bursts\"}) / rate(peergate_dataplane_events_total{event=\"polls\"}))."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.generation, c.portRxPkts, c.portRxBytes, c.portRxDrp,
		c.portTxPkts, c.portTxBytes, c.portTxDrp, c.vpcPkts, c.vpcBytes, c.peerPkts, c.peerBytes,
		c.drops, c.events, c.sessions, c.capacity, c.busy} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one snapshot per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	if s == nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(s.GetGeneration()))
	counter := func(d *prometheus.Desc, v uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	for _, p := range s.GetPorts() {
		counter(c.portRxPkts, p.GetRxPackets(), p.GetName())
		counter(c.portRxBytes, p.GetRxBytes(), p.GetName())
		counter(c.portRxDrp, p.GetRxDropped(), p.GetName())
		counter(c.portTxPkts, p.GetTxPackets(), p.GetName())
		counter(c.portTxBytes, p.GetTxBytes(), p.GetName())
		counter(c.portTxDrp, p.GetTxDropped(), p.GetName())
	}
	for _, v := range s.GetVpcs() {
		counter(c.vpcPkts, v.GetPackets(), v.GetName())
		counter(c.vpcBytes, v.GetBytes(), v.GetName())
	}
	for _, p := range s.GetPeerings() {
		counter(c.peerPkts, p.GetPackets(), p.GetName())
		counter(c.peerBytes, p.GetBytes(), p.GetName())
	}
	for _, k := range sortedKeys(s.GetDrops()) {
		counter(c.drops, s.GetDrops()[k], k)
	}
	for _, k := range sortedKeys(s.GetCounters()) {
		counter(c.events, s.GetCounters()[k], k)
	}
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(s.GetSessions()))
	if polls := s.GetCounters()["polls"]; polls > 0 {
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.GaugeValue, float64(s.GetCounters()["bursts"])/float64(polls))
	}
	if c.extra != nil {
		if e := c.extra(); e.NATCapacity > 0 {
			ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(e.NATCapacity))
		}
	}
}

func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
