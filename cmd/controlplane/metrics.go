package main

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/peergate/peergate/controlplane/bgpsync"
	"github.com/peergate/peergate/controlplane/push"
	"github.com/peergate/peergate/controlplane/server"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

// cpMetrics is the controlplane's Prometheus collector: gauges read from
// the server, the hub and the BGP syncer at scrape time, and apply
// outcomes counted by a gRPC interceptor (API calls, not the packet path).
type cpMetrics struct {
	srv    *server.Server
	hub    *push.Hub
	syncer *bgpsync.Syncer

	accepted, rejected, failed atomic.Uint64

	generation, applies, dataplanes, dpGeneration *prometheus.Desc
	bgpUp, bgpLearned, bgpRunning                 *prometheus.Desc
}

func newCPMetrics(srv *server.Server, hub *push.Hub, syncer *bgpsync.Syncer) *cpMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("peergate_controlplane_"+name, help, labels, nil)
	}
	return &cpMetrics{srv: srv, hub: hub, syncer: syncer,
		generation:   d("config_generation", "Live configuration generation."),
		applies:      d("applies_total", "Apply and Delete calls by outcome: accepted, rejected (invalid), failed (error).", "outcome"),
		dataplanes:   d("dataplanes_connected", "Dataplanes connected to the table push stream."),
		dpGeneration: d("dataplane_generation", "Generation a dataplane last acknowledged as running.", "dataplane"),
		bgpRunning:   d("bgp_speaker_running", "1 when the BGP speaker runs."),
		bgpUp:        d("bgp_session_up", "1 when a BGP session is established.", "vpc", "neighbor"),
		bgpLearned:   d("bgp_routes_learned", "Routes held for the compiler, per VPC.", "vpc"),
	}
}

func (m *cpMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.generation, m.applies, m.dataplanes, m.dpGeneration, m.bgpRunning, m.bgpUp, m.bgpLearned} {
		ch <- d
	}
}

func (m *cpMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(m.generation, prometheus.GaugeValue, float64(m.srv.Generation()))
	for o, v := range map[string]uint64{"accepted": m.accepted.Load(), "rejected": m.rejected.Load(), "failed": m.failed.Load()} {
		ch <- prometheus.MustNewConstMetric(m.applies, prometheus.CounterValue, float64(v), o)
	}
	n := 0
	for _, dp := range m.hub.Dataplanes() {
		if dp.Connected {
			n++
			ch <- prometheus.MustNewConstMetric(m.dpGeneration, prometheus.GaugeValue, float64(dp.Generation), dp.ID)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.dataplanes, prometheus.GaugeValue, float64(n))
	b := m.syncer.BGPStatus(&apiv1.GetBGPRequest{})
	running := 0.0
	if b.GetRunning() {
		running = 1
	}
	ch <- prometheus.MustNewConstMetric(m.bgpRunning, prometheus.GaugeValue, running)
	learned := map[string]uint64{}
	for _, s := range b.GetSessions() {
		up := 0.0
		if s.GetUp() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.bgpUp, prometheus.GaugeValue, up, s.GetVpc(), s.GetNeighbor())
		learned[s.GetVpc()] += s.GetLearned()
	}
	for v, n := range learned {
		ch <- prometheus.MustNewConstMetric(m.bgpLearned, prometheus.GaugeValue, float64(n), v)
	}
}

// countApplies is a unary interceptor counting Apply and Delete outcomes
// (dry runs not counted: nothing changes).
func (m *cpMetrics) countApplies(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	type result interface {
		GetAccepted() bool
		GetDryRun() bool
	}
	switch {
	case info.FullMethod != apiv1.Gateway_Apply_FullMethodName && info.FullMethod != apiv1.Gateway_Delete_FullMethodName:
	case err != nil:
		m.failed.Add(1)
	default:
		if r, ok := resp.(result); ok && !r.GetDryRun() {
			if r.GetAccepted() {
				m.accepted.Add(1)
			} else {
				m.rejected.Add(1)
			}
		}
	}
	return resp, err
}
