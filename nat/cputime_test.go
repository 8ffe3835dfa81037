package nat

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU measures the CPU time of the benchmark's own thread, so figures
// stay meaningful on a machine shared with other work (wall-clock ns/op
// counts the time the thread waited for a core).
type threadCPU struct{ start int64 }

func threadNow() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// startCPU locks the goroutine to its thread and starts the clock; call
// after setup, right before b.ResetTimer.
func startCPU(b *testing.B) *threadCPU {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return &threadCPU{start: threadNow()}
}

// report adds cpu-ns/op (per item when items > 0 per op).
func (c *threadCPU) report(b *testing.B) {
	if d := threadNow() - c.start; d > 0 {
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}
