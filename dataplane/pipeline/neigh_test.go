package pipeline

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestAMoveOneWorkerSawReachesTheOthers: two workers of one dataplane both
// know client 10.1.0.5 behind vtepA. The client moves behind vtepB2 (a VM
// migrated), and only worker 0 sees its packets from there. Worker 1's
// next answer to the client must follow the move, as worker 0's does: it
// used to keep its own copy of the old VTEP until it saw the client
// itself or the entry's 20 minutes ran out.
func TestAMoveOneWorkerSawReachesTheOthers(t *testing.T) {
	p, w0, _ := newTestPipeline(t, peeredTables(nil), Config{})
	w1 := p.NewWorker(1, &testPool{})
	const vtepA2 = "192.0.2.11"
	mac := macA
	mac[5] = 5
	arp := func(vtep string) []byte {
		return vxlanFrame(vtep, 100, arpFrame(t, 1, mac, "10.1.0.5", [6]byte{}, "10.1.0.1"))
	}
	for _, w := range []*Worker{w0, w1} {
		run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
		run(w, 1, bufOf(arp(vtepA), 0))
	}
	answer := func(w *Worker, now int64) string {
		b := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "172.16.0.5", 53, 1024, 64, 64)), 0)
		run(w, now, b)
		if b.Verdict != VerdictTx {
			t.Fatalf("answer: verdict %v, drops %v", b.Verdict, w.C.DropsByName())
		}
		return netip.AddrFrom4([4]byte(b.Bytes()[30:34])).String()
	}
	for i, w := range []*Worker{w0, w1} {
		if got := answer(w, 2); got != vtepA {
			t.Fatalf("worker %d answers toward %s before the move, want %s", i, got, vtepA)
		}
	}
	run(w0, 3, bufOf(vxlanFrame(vtepA2, 100, udpFrame(t, mac, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 64)), 0))
	for i, w := range []*Worker{w0, w1} {
		if got := answer(w, 4); got != vtepA2 {
			t.Errorf("worker %d answers toward %s after the move worker 0 saw, want %s", i, got, vtepA2)
		}
	}
}

// TestMovesBeyondTheRingClearTheOtherWorkersCopies: when more neighbours
// moved than the ring of changes holds, a worker that was not told each
// key forgets every copy it had, and still answers each client through its
// new VTEP.
func TestMovesBeyondTheRingClearTheOtherWorkersCopies(t *testing.T) {
	p, w0, _ := newTestPipeline(t, peeredTables(nil), Config{})
	w1 := p.NewWorker(1, &testPool{})
	const vtepA2 = "192.0.2.11"
	n := neighChanges + 44
	macOf := func(h int) [6]byte { m := macA; m[4], m[5] = byte(h>>8), byte(h); return m }
	ipOf := func(h int) string { return netip.AddrFrom4([4]byte{10, 1, byte(h >> 8), byte(h)}).String() }
	for _, w := range []*Worker{w0, w1} {
		run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
		for h := 5; h < 5+n; h++ {
			run(w, 1, bufOf(vxlanFrame(vtepA, 100, arpFrame(t, 1, macOf(h), ipOf(h), [6]byte{}, "10.1.0.1")), 0))
		}
	}
	seq0 := p.neigh.seq.Load()
	for h := 5; h < 5+n; h++ {
		run(w0, 2, bufOf(vxlanFrame(vtepA2, 100, udpFrame(t, macOf(h), gwMAC0, ipOf(h), "192.168.2.7", 1024, 53, 64, 64)), 0))
	}
	if d := p.neigh.seq.Load() - seq0; d != uint64(n) {
		t.Fatalf("%d moves recorded, want %d", d, n)
	}
	for _, h := range []int{5, 5 + n/2, 4 + n} {
		exposed := netip.AddrFrom4([4]byte{172, 16, byte(h >> 8), byte(h)}).String()
		b := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", exposed, 53, 1024, 64, 64)), 0)
		run(w1, 3, b)
		if got := netip.AddrFrom4([4]byte(b.Bytes()[30:34])).String(); b.Verdict != VerdictTx || got != vtepA2 {
			t.Errorf("worker 1 answers client %s: verdict %v toward %s, want %s", ipOf(h), b.Verdict, got, vtepA2)
		}
	}
}

// TestAWorkersOwnMoveIsLearnedOnce: the worker that saw a move keeps its
// copy (it is the shared entry) and counts the move once (found in
// review: it dropped its own copy at the next burst and learned the move
// again).
func TestAWorkersOwnMoveIsLearnedOnce(t *testing.T) {
	_, w, _ := newTestPipeline(t, peeredTables(nil), Config{})
	f := func(vtep string) *Buf {
		return bufOf(vxlanFrame(vtep, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 64)), 0)
	}
	run(w, 1, f(vtepA))
	c0, g0 := w.C.Events[EvVTEPLearned], w.learnGen
	run(w, 2, f("192.0.2.11"))
	g1 := w.learnGen
	run(w, 3, f("192.0.2.11"))
	if d := w.C.Events[EvVTEPLearned] - c0; d != 1 {
		t.Errorf("one move counted %d times", d)
	}
	if g1 == g0 || w.learnGen != g1 {
		t.Errorf("learnGen %d -> %d -> %d: want one change, at the move", g0, g1, w.learnGen)
	}
}

// TestAConfirmedNeighbourKeepsWhatWasDerivedFromIt: a client's ARP that
// confirms what the worker knows, after half of the entry's lifetime,
// renews the entry without dropping the worker's adjacencies and memos
// (learnGen; it used to, for every confirmation of every client), and the
// answers keep flowing across the old entry's end of life.
func TestAConfirmedNeighbourKeepsWhatWasDerivedFromIt(t *testing.T) {
	_, w, _ := newTestPipeline(t, peeredTables(nil), Config{})
	resolveHosts(t, w)
	answer := func(now int64) {
		t.Helper()
		b := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "172.16.0.5", 53, 1024, 64, 64)), 0)
		run(w, now, b)
		if b.Verdict != VerdictTx || netip.AddrFrom4([4]byte(b.Bytes()[30:34])).String() != vtepA {
			t.Fatalf("answer at %ds: verdict %v, drops %v", now/1e9, b.Verdict, w.C.DropsByName())
		}
	}
	answer(2)
	confirm := func(now int64) {
		run(w, now, bufOf(vxlanFrame(vtepA, 100, arpFrame(t, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1")), 0))
	}
	half := neighLifetime/2 + int64(1e9)
	gen, learned := w.learnGen, w.C.Events[EvNeighbourLearned]
	confirm(half)
	if w.learnGen != gen || w.C.Events[EvNeighbourLearned] != learned {
		t.Errorf("a confirmation changed learnGen %d -> %d, neighbour_learned %d -> %d", gen, w.learnGen, learned, w.C.Events[EvNeighbourLearned])
	}
	answer(half + 1)
	// Past the first learning's lifetime: the adjacency built from it ends
	// and is rebuilt from the confirmed entry.
	answer(neighLifetime + int64(2e9))
	// A different MAC is a change.
	mac := macA
	mac[5]++
	run(w, neighLifetime+int64(3e9), bufOf(vxlanFrame(vtepA, 100, arpFrame(t, 1, mac, "10.1.0.5", [6]byte{}, "10.1.0.1")), 0))
	if w.learnGen == gen {
		t.Error("a new MAC did not change learnGen")
	}
}

// TestACopyOfAChangeMadeMidBurstStillInvalidates: worker 0 built its
// answers to 10.1.0.5 on vtepA's underlay MAC, then lost its copy of that
// neighbour (evicted). Worker 1 learns a new MAC for vtepA, and worker 0,
// within the same burst, copies the new entry from the shared table (as
// resolving another next hop would). At its next burst the ring names the
// key and worker 0's copy already equals the shared entry, but worker 0
// did not learn the change itself: what it built on the old MAC must go
// (found in review: it was kept until the adjacency's end of life).
func TestACopyOfAChangeMadeMidBurstStillInvalidates(t *testing.T) {
	p, w0, _ := newTestPipeline(t, peeredTables(nil), Config{})
	w1 := p.NewWorker(1, &testPool{})
	for _, w := range []*Worker{w0, w1} {
		resolveHosts(t, w)
	}
	answer := func(now int64) [6]byte {
		t.Helper()
		b := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "172.16.0.5", 53, 1024, 64, 64)), 0)
		run(w0, now, b)
		if b.Verdict != VerdictTx {
			t.Fatalf("answer: verdict %v, drops %v", b.Verdict, w0.C.DropsByName())
		}
		return [6]byte(b.Bytes()[0:6])
	}
	if got := answer(2); got != macVTEP {
		t.Fatalf("answer toward underlay MAC %x, want %x", got, macVTEP)
	}
	x := key4(scopePort|0, binary.BigEndian.Uint32(ip4(vtepA)))
	w0.neigh.drop(&x) // evicted
	newMAC := macVTEP
	newMAC[5]++
	f := vxlanFrame(vtepA, 100, arpFrame(t, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1"))
	copy(f[6:12], newMAC[:])
	run(w1, 3, bufOf(f, 0))
	if w0.lookupNeigh(&x) == nil { // mid-burst copy from the shared table
		t.Fatal("the shared table has no entry for vtepA")
	}
	if got := answer(4); got != newMAC {
		t.Errorf("answer toward underlay MAC %x after vtepA's MAC changed, want %x", got, newMAC)
	}
}
