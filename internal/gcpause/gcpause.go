// Package gcpause pauses Go's garbage collector while a large batch of
// learned routes compiles. It changes process-wide runtime settings
// (debug.SetGCPercent, debug.SetMemoryLimit): it is for a binary's main, or
// a benchmark standing in for it, to hand to server.Options.AroundUpdate,
// never for a library to call on its own.
package gcpause

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
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
	mu      sync.Mutex
	pauses  int // in progress: the settings are restored when the last ends
	percent int
	limit   int64
}

// Around pauses the collector if changes is large, and returns what ends
// the pause (once, however many times it is called). Pauses may overlap:
// the settings are restored when the last one ends.
func (g *Pauser) Around(changes int) (done func()) {
	if changes < LargeUpdate {
		return func() {}
	}
	g.mu.Lock()
	if g.pauses == 0 {
		g.limit = debug.SetMemoryLimit(-1) // -1 reads it
		debug.SetMemoryLimit(min(g.limit, footprint()+Headroom))
		g.percent = debug.SetGCPercent(-1)
	}
	g.pauses++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.pauses--; g.pauses == 0 {
				debug.SetGCPercent(g.percent)
				debug.SetMemoryLimit(g.limit)
			}
		})
	}
}

// footprint is the memory the runtime's memory limit counts now: what it
// mapped, less what it returned to the system.
func footprint() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}
