package runtime

import (
	"github.com/peergate/peergate/dataplane/pipeline"
)

// Forward is a trivial processor for tests and benchmarks: every packet
// from port i leaves on port To[i] (dropped when i has no entry), with its
// Ethernet addresses swapped when MACSwap is set (testpmd's macswap).
type Forward struct {
	To      []uint16 // indexed by input port id
	Has     []bool
	MACSwap bool
}

// NewForward forwards between the pairs of ports given, both ways.
func NewForward(macSwap bool, pairs ...[2]uint16) *Forward {
	f := &Forward{MACSwap: macSwap}
	for _, p := range pairs {
		f.set(p[0], p[1])
		f.set(p[1], p[0])
	}
	return f
}

func (f *Forward) set(from, to uint16) {
	for int(from) >= len(f.To) {
		f.To = append(f.To, 0)
		f.Has = append(f.Has, false)
	}
	f.To[from], f.Has[from] = to, true
}

// ProcessBurst implements Processor.
func (f *Forward) ProcessBurst(now int64, in []*pipeline.Buf, out *pipeline.Output) {
	for _, b := range in {
		if int(b.InPort) >= len(f.To) || !f.Has[b.InPort] {
			b.Verdict = pipeline.VerdictDrop
			continue
		}
		if f.MACSwap && b.Len >= 12 {
			e := b.Mem[b.Off : b.Off+12 : b.Off+12]
			var t [6]byte
			copy(t[:], e[0:6])
			copy(e[0:6], e[6:12])
			copy(e[6:12], t[:])
		}
		b.OutPort = f.To[b.InPort]
		b.Verdict = pipeline.VerdictTx
	}
}

// Tick implements Processor.
func (f *Forward) Tick(now int64, out *pipeline.Output) {}

// PuntAll is a processor that hands every packet to the kernel of its port.
type PuntAll struct{}

// ProcessBurst implements Processor.
func (PuntAll) ProcessBurst(now int64, in []*pipeline.Buf, out *pipeline.Output) {
	for _, b := range in {
		b.Verdict = pipeline.VerdictPunt
	}
}

// Tick implements Processor.
func (PuntAll) Tick(now int64, out *pipeline.Output) {}
