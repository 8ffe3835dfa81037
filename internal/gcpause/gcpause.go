// Package gcpause steers Go's garbage collector around a BGP table
// transfer: by memory while the table streams in (Pauser.Transfer), and
// paused while the transfer compiles (Pauser.Around). It changes
// process-wide runtime settings (debug.SetGCPercent, debug.SetMemoryLimit):
// it is for a binary's main, or a benchmark standing in for it, to hand to
// bgpsync.Options and server.Options, never for a library to call on its
// own.
//
// Measured with go test ./test/integration/bgp -run FullInternetTable -v
// (4 alternated pairs, 2026-12-07): Transfer took a full table from 10.5–11.8
// s to 8.8–11.0 s from session up and the controlplane's CPU from 19.3–21.8
// s to 15.5–19.0 s, for a peak RSS of 2.31–2.37 GiB instead of 1.96–2.03.
package gcpause

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// LargeUpdate is the number of learned-route changes from which the
// collector is paused while they compile: a table transfer's batch (a full
// table's is a million), never a single BGP update.
const LargeUpdate = 100_000

// Headroom bounds a pause: during it the soft memory limit is the
// process's footprint when it started plus this much (GOMEMLIMIT when that
// is lower), so the collector still runs if a compile allocates more. A
// full table's compile allocates ~0.8 GB, nearly all of it short-lived.
const Headroom = 1 << 30

// Pauser pauses Go's garbage collector while a large batch of learned
// routes compiles. With a full table held the live heap is over a GB (gobgp's
// RIB, the speaker's store, the compiled tables), and at the default GOGC the
// batch's own garbage set off a collection that marked all of it during the
// compile: on 2 cores a full table's compile took 1.9–2.8 s, against
// 1.0–1.4 s with the collector paused, for the same peak RSS (the collection
// runs once the generation went out to the dataplanes, while nothing waits
// on it; test/integration/bgp's README has the runs). The zero value is
// ready to use.
type Pauser struct {
	mu        sync.Mutex
	pauses    int // in progress: the settings are restored when the last ends
	transfers int // Transfer calls in progress
	percent   int
	limit     int64
	stopTuner chan struct{} // closes the running tuner (transfers > 0)
}

// take saves the settings before the first pause or transfer; called with
// g.mu held.
func (g *Pauser) take() {
	if g.pauses == 0 && g.transfers == 0 {
		g.limit = debug.SetMemoryLimit(-1) // -1 reads it
		g.percent = debug.SetGCPercent(-1)
	}
}

// release restores the settings after the last pause or transfer; called
// with g.mu held.
func (g *Pauser) release() {
	switch {
	case g.pauses == 0 && g.transfers == 0:
		debug.SetGCPercent(g.percent)
		debug.SetMemoryLimit(g.limit)
	case g.pauses == 0:
		debug.SetMemoryLimit(g.transferLimit()) // the tuner's, until its next turn
	}
}

// transferLimit is the memory limit while a table streams in: twice the
// live heap (the heap goal of the default GOGC) and at least Headroom
// above it, GOMEMLIMIT at most.
func (g *Pauser) transferLimit() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := int64(s[0].Value.Uint64())
	return min(g.limit, max(2*live, live+Headroom))
}

// tunerPeriod is how often the transfer's memory limit follows the live
// heap.
const tunerPeriod = 100 * time.Millisecond

// Transfer runs the collector by memory while a table streams in, and
// returns what ends that. At the default GOGC the collector runs each time
// the heap doubled since the last collection: while a table streams in
// from a small start that is dozens of collections, each marking the heap
// that grew, on the cores the stream needs. Here the collector is off
// under a memory limit of twice the live heap but at least Headroom above
// it, moved every tunerPeriod: the same peak as the default once the heap
// is large, far fewer collections before. Transfers and pauses may
// overlap; a pause's limit holds while it lasts.
func (g *Pauser) Transfer() (done func()) {
	g.mu.Lock()
	g.take()
	g.transfers++
	if g.transfers == 1 {
		if g.pauses == 0 {
			debug.SetMemoryLimit(g.transferLimit())
		}
		stop := make(chan struct{})
		g.stopTuner = stop
		go g.tune(stop)
	}
	g.mu.Unlock()
	return g.ender(func() {
		if g.transfers--; g.transfers == 0 {
			close(g.stopTuner)
		}
	})
}

// ender returns what ends a pause or transfer: once, however many times it
// is called, uncount (which drops its count) and restore what is due.
func (g *Pauser) ender(uncount func()) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			uncount()
			g.release()
		})
	}
}

// tune moves the transfer's memory limit with the live heap until stop.
func (g *Pauser) tune(stop <-chan struct{}) {
	t := time.NewTicker(tunerPeriod)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			g.mu.Lock()
			if g.transfers > 0 && g.pauses == 0 {
				debug.SetMemoryLimit(g.transferLimit())
			}
			g.mu.Unlock()
		}
	}
}

// Around pauses the collector if changes is large, and returns what ends
// the pause (once, however many times it is called). Pauses may overlap:
// the settings are restored when the last one ends.
func (g *Pauser) Around(changes int) (done func()) {
	if changes < LargeUpdate {
		return func() {}
	}
	g.mu.Lock()
	g.take()
	if g.pauses == 0 {
		debug.SetMemoryLimit(min(g.limit, footprint()+Headroom))
	}
	g.pauses++
	g.mu.Unlock()
	return g.ender(func() { g.pauses-- })
}

// footprint is the memory the runtime's memory limit counts now: what it
// mapped, less what it returned to the system.
func footprint() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}
