package gcpause

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestGCPauserPausesLargeUpdatesOnly(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	gcPercent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	var g Pauser

	g.Around(LargeUpdate - 1)()
	if p := gcPercent(); p != 100 {
		t.Fatalf("a small update set GOGC to %d", p)
	}

	done := g.Around(LargeUpdate)
	if p := gcPercent(); p != -1 {
		t.Fatalf("during a large update GOGC is %d, want -1 (off)", p)
	}
	if l := debug.SetMemoryLimit(-1); l == math.MaxInt64 || l > footprint()+Headroom {
		t.Fatalf("during a large update the memory limit is %d, want at most the footprint + %d", l, Headroom)
	}
	// An update that starts before the first one's end (the server calls
	// the end after releasing its lock) keeps the pause until both ended.
	second := g.Around(LargeUpdate)
	done()
	done() // a second call changes nothing
	if p := gcPercent(); p != -1 {
		t.Fatalf("with a pause still running GOGC is %d", p)
	}
	second()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
		t.Fatalf("after the pauses GOGC %d, memory limit %d: want 100 and no limit", p, l)
	}
}

func TestTransferRunsTheCollectorByMemory(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	gcPercent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	var g Pauser

	done := g.Transfer()
	if p := gcPercent(); p != -1 {
		t.Fatalf("during a transfer GOGC is %d, want -1 (off)", p)
	}
	l := debug.SetMemoryLimit(-1)
	if l == math.MaxInt64 || l < Headroom {
		t.Fatalf("during a transfer the memory limit is %d, want at least the live heap + %d", l, Headroom)
	}
	// A pause within the transfer: its limit while it lasts, the
	// transfer's after, everything back after both.
	end := g.Around(LargeUpdate)
	end()
	if p := gcPercent(); p != -1 {
		t.Fatalf("after a pause within a transfer GOGC is %d", p)
	}
	if l := debug.SetMemoryLimit(-1); l == math.MaxInt64 {
		t.Fatal("after a pause within a transfer the memory limit is gone")
	}
	done()
	done()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
		t.Fatalf("after the transfer GOGC %d, memory limit %d: want 100 and no limit", p, l)
	}
}
