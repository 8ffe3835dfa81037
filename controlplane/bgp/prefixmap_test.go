package bgp

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// TestPrefixMapMatchesAMap runs random sets and deletes, with compactions
// in between, against a plain map.
func TestPrefixMapMatchesAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var m prefixMap[key6]
	ref := map[key6]held{}
	key := func() key6 { return key6{hi: uint64(r.IntN(64)), lo: uint64(r.IntN(4)), bits: uint8(48 + r.IntN(3))} }
	check := func(step int) {
		t.Helper()
		if m.len() != len(ref) {
			t.Fatalf("step %d: %d routes, want %d", step, m.len(), len(ref))
		}
		got := maps.Collect(m.all())
		if !maps.Equal(got, ref) {
			t.Fatalf("step %d: all() differs: %d routes, want %d", step, len(got), len(ref))
		}
		for range 20 {
			k := key()
			h, ok := m.get(k)
			want, wok := ref[k]
			if ok != wok || h != want {
				t.Fatalf("step %d: get(%v) = %v %v, want %v %v", step, k, h, ok, want, wok)
			}
		}
	}
	for step := range 5000 {
		k := key()
		switch r.IntN(3) {
		case 0:
			old, had := m.del(k)
			want, wok := ref[k]
			if had != wok || old != want {
				t.Fatalf("step %d: del(%v) = %v %v, want %v %v", step, k, old, had, want, wok)
			}
			delete(ref, k)
		default:
			h := held{nh: uint32(r.IntN(3)), med: uint32(r.IntN(3)), asLen: uint16(r.IntN(3))}
			old, had := ref[k]
			if changed := m.put(k, h); changed != (!had || old != h) {
				t.Fatalf("step %d: put(%v, %v) reports changed %v", step, k, h, changed)
			}
			ref[k] = h
		}
		if r.IntN(200) == 0 {
			m.compact()
			if m.pending() != 0 {
				t.Fatalf("step %d: %d changes pending after compact", step, m.pending())
			}
		}
		if step%100 == 0 {
			check(step)
		}
	}
	check(5000)
}

// TestSpeakerCompactsTheStoreWhenTheStreamPauses: a neighbour's many
// changes go to the compact base once no route has arrived for
// compactIdle.
func TestSpeakerCompactsTheStoreWhenTheStreamPauses(t *testing.T) {
	s := New(testLogger(t))
	n := newNeighbor(Neighbor{VPC: "vpc-e1", Address: netip.MustParseAddr("127.0.0.1"), ASN: e1ASN})
	n.up = true
	s.neighbors[n.cfg.Address] = n
	for i := range compactMin {
		n.learn(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), makeVal(netip.MustParseAddr("192.0.2.1"), 0, 1))
	}
	s.mu.Lock()
	if !n.shouldCompact() {
		t.Fatalf("%d changes pending: not enough to compact", n.pending())
	}
	s.compactLaterLocked()
	s.mu.Unlock()
	deadline := time.Now().Add(5 * compactIdle)
	for {
		s.mu.Lock()
		pending, count := n.pending(), n.count()
		s.mu.Unlock()
		if pending == 0 {
			if count != compactMin {
				t.Fatalf("%d routes after compacting, want %d", count, compactMin)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes still pending %v after the timer was armed", pending, 5*compactIdle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
