package pipeline

import "github.com/peergate/peergate/dataplane/fib"

// Pipeline is shared by all workers of one dataplane.
type Pipeline struct {
	fib     *fib.Holder
	workers []*Worker
}

// New returns a pipeline reading its tables from h.
func New(h *fib.Holder) *Pipeline { return &Pipeline{fib: h} }

// Worker processes bursts on one goroutine.
type Worker struct {
	p     *Pipeline
	id    int
	alloc Allocator
}

// NewWorker returns worker id; alloc serves slow-path packets.
func (p *Pipeline) NewWorker(id int, alloc Allocator) *Worker {
	w := &Worker{p: p, id: id, alloc: alloc}
	p.workers = append(p.workers, w)
	return w
}

// ProcessBurst sets the verdict of every buffer of in and appends generated
// or released packets to out.Extra.
func (w *Worker) ProcessBurst(now int64, in []*Buf, out *Output) {
	for _, b := range in {
		b.Verdict = VerdictDrop
	}
}

// Tick ages the neighbour table and hold queue when no traffic arrives.
func (w *Worker) Tick(now int64, out *Output) {}
