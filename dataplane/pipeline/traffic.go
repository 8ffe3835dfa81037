package pipeline

import (
	"sort"

	"github.com/peergate/peergate/dataplane/fib"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Traffic counts packets and bytes (IP packet lengths).
type Traffic struct {
	Packets, Bytes uint64
}

// trafficCounters are one worker's per-VPC and per-peering counters, indexed
// by the ids of the snapshot they were started for: plain increments on the
// packet path, no atomics. The published copies and the totals of earlier
// snapshots (by name, since ids may change meaning between generations) are
// guarded by the worker's pubMu.
type trafficCounters struct {
	vpc, peer []Traffic
	snap      *fib.Snapshot

	pubVPC, pubPeer []Traffic
	pubSnap         *fib.Snapshot
	oldVPC, oldPeer map[string]Traffic
}

// rollTraffic folds the counters of the previous snapshot into the totals by
// name and starts counters for s (allocates: once per snapshot and worker).
func (w *Worker) rollTraffic(s *fib.Snapshot) {
	t := &w.traffic
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	if old := t.snap; old != nil {
		if t.oldVPC == nil {
			t.oldVPC, t.oldPeer = map[string]Traffic{}, map[string]Traffic{}
		}
		foldTraffic(t.oldVPC, t.vpc, func(i int) string { return old.VPCs[i].Name })
		foldTraffic(t.oldPeer, t.peer, func(i int) string { return old.Peerings[i] })
	}
	t.snap, t.pubSnap = s, s
	t.vpc, t.peer, t.pubVPC, t.pubPeer = nil, nil, nil, nil
	if s != nil {
		t.vpc, t.pubVPC = make([]Traffic, len(s.VPCs)), make([]Traffic, len(s.VPCs))
		t.peer, t.pubPeer = make([]Traffic, len(s.Peerings)), make([]Traffic, len(s.Peerings))
	}
}

func foldTraffic(m map[string]Traffic, c []Traffic, name func(int) string) {
	for i, v := range c {
		if v.Packets == 0 {
			continue
		}
		n := name(i)
		if n == "" {
			continue
		}
		o := m[n]
		o.Packets += v.Packets
		o.Bytes += v.Bytes
		m[n] = o
	}
}

// countVPC counts a packet received from VPC v.
func (w *Worker) countVPC(v int, n int) {
	if uint(v) < uint(len(w.traffic.vpc)) {
		t := &w.traffic.vpc[v]
		t.Packets++
		t.Bytes += uint64(n)
	}
}

// countPeering counts a packet forwarded through peering id (0: none).
func (w *Worker) countPeering(id uint16, n int) {
	if id != 0 && int(id) < len(w.traffic.peer) {
		t := &w.traffic.peer[id]
		t.Packets++
		t.Bytes += uint64(n)
	}
}

// Traffic returns the packets and bytes received from each VPC (its hosts'
// IP and ARP packets, counted once classified, whatever happens to them
// next) and forwarded through each peering (counted when they leave toward
// the peer VPC), summed over the workers as they last published them (every
// 64 bursts and at every Tick) and over every generation, by name, sorted.
// For tablesv1.Stats' vpcs and peerings.
func (p *Pipeline) Traffic() (vpcs, peerings []*tablesv1.NamedCounter) {
	v, pe := map[string]Traffic{}, map[string]Traffic{}
	add := func(m map[string]Traffic, n string, t Traffic) {
		if n == "" || t.Packets == 0 {
			return
		}
		o := m[n]
		o.Packets += t.Packets
		o.Bytes += t.Bytes
		m[n] = o
	}
	p.mu.Lock()
	for _, w := range p.workers {
		w.pubMu.Lock()
		t := &w.traffic
		for n, x := range t.oldVPC {
			add(v, n, x)
		}
		for n, x := range t.oldPeer {
			add(pe, n, x)
		}
		if s := t.pubSnap; s != nil {
			for i, x := range t.pubVPC {
				add(v, s.VPCs[i].Name, x)
			}
			for i, x := range t.pubPeer {
				add(pe, s.Peerings[i], x)
			}
		}
		w.pubMu.Unlock()
	}
	p.mu.Unlock()
	return named(v), named(pe)
}

func named(m map[string]Traffic) []*tablesv1.NamedCounter {
	out := make([]*tablesv1.NamedCounter, 0, len(m))
	for n, t := range m {
		out = append(out, &tablesv1.NamedCounter{Name: n, Packets: t.Packets, Bytes: t.Bytes})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
