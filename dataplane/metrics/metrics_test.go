package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peergate/peergate/dataplane/metrics"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestTheSnapshotIsExposedUnderItsMetricNames(t *testing.T) {
	s := &tablesv1.Stats{
		Generation: 7,
		Ports:      []*tablesv1.PortStats{{Name: "p0", RxPackets: 10, RxBytes: 1000, TxPackets: 9, TxBytes: 900, RxDropped: 1}},
		Vpcs:       []*tablesv1.NamedCounter{{Name: "vpc-a", Packets: 5, Bytes: 500}},
		Peerings:   []*tablesv1.NamedCounter{{Name: "a-b", Packets: 4, Bytes: 400}},
		Drops:      map[string]uint64{"unknown_vni": 3},
		Counters:   map[string]uint64{"bursts": 2, "polls": 8},
		Sessions:   6,
	}
	c := metrics.New(func() *tablesv1.Stats { return s }, func() metrics.Extra { return metrics.Extra{NATCapacity: 1024} })
	want := `
# HELP peergate_dataplane_config_generation Configuration generation being forwarded with.
# TYPE peergate_dataplane_config_generation gauge
peergate_dataplane_config_generation 7
# HELP peergate_dataplane_drops_total Packets dropped by the pipeline and the runtime, by reason.
# TYPE peergate_dataplane_drops_total counter
peergate_dataplane_drops_total{reason="unknown_vni"} 3
# HELP peergate_dataplane_nat_sessions Live stateful NAT sessions.
# TYPE peergate_dataplane_nat_sessions gauge
peergate_dataplane_nat_sessions 6
# HELP peergate_dataplane_nat_session_capacity Stateful NAT session table capacity.
# TYPE peergate_dataplane_nat_session_capacity gauge
peergate_dataplane_nat_session_capacity 1024
# HELP peergate_dataplane_peering_packets_total Packets forwarded through a peering.
# TYPE peergate_dataplane_peering_packets_total counter
peergate_dataplane_peering_packets_total{peering="a-b"} 4
# HELP peergate_dataplane_port_rx_packets_total Packets received on a port.
# TYPE peergate_dataplane_port_rx_packets_total counter
peergate_dataplane_port_rx_packets_total{port="p0"} 10
# HELP peergate_dataplane_vpc_rx_bytes_total Bytes received from a VPC.
# TYPE peergate_dataplane_vpc_rx_bytes_total counter
peergate_dataplane_vpc_rx_bytes_total{vpc="vpc-a"} 500
# HELP peergate_dataplane_worker_busy_ratio Share of the workers' polls that found packets since start (over a window: rate(peergate_dataplane_events_total{event="bursts"}) / rate(peergate_dataplane_events_total{event="polls"})).
# TYPE peergate_dataplane_worker_busy_ratio gauge
peergate_dataplane_worker_busy_ratio 0.25
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"peergate_dataplane_config_generation", "peergate_dataplane_drops_total", "peergate_dataplane_nat_sessions",
		"peergate_dataplane_nat_session_capacity", "peergate_dataplane_peering_packets_total",
		"peergate_dataplane_port_rx_packets_total", "peergate_dataplane_vpc_rx_bytes_total",
		"peergate_dataplane_worker_busy_ratio"); err != nil {
		t.Error(err)
	}
}

func TestBeforeForwardingOnlyTheForwardingGaugeIsExposed(t *testing.T) {
	c := metrics.New(func() *tablesv1.Stats { return nil }, nil)
	if n := testutil.CollectAndCount(c); n != 1 {
		t.Errorf("%d metrics, want 1 (forwarding 0)", n)
	}
	if v := testutil.ToFloat64(c); v != 0 {
		t.Errorf("forwarding = %v, want 0", v)
	}
}
