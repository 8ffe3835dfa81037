package runtime

import (
	"fmt"
	"math"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/pipeline"
)

// WorkerStats are a worker's counters (the pipeline counts its own drop
// reasons; these are the driver's side).
type WorkerStats struct {
	RxPackets   uint64 // from data ports
	TxPackets   uint64 // taken by TX queues (data ports and punt interfaces)
	TxFull      uint64 // dropped: TX queue full
	Dropped     uint64 // VerdictDrop
	BadOutPort  uint64 // VerdictTx to a port the runtime does not have
	MultiSeg    uint64 // dropped: chained mbufs (RX scatter is never enabled)
	Punted      uint64 // VerdictPunt handed to a punt interface
	PuntNoIface uint64 // VerdictPunt on a port without punt interface: dropped
	FromKernel  uint64 // read from punt interfaces, sent out their ports
	Generated   uint64 // Output.Extra sent or dropped
	Held        uint64 // VerdictHeld
	AllocFailed uint64 // Allocator.Alloc found the pool empty
	Bursts      uint64 // polls that found packets
	// Polls counts passes over the worker's queues: Bursts/Polls is the
	// worker's busy ratio (a poll-mode core is at 100% CPU whatever its
	// load; this says how much of that was work).
	Polls uint64
}

// numWorkerStats is the number of uint64 fields of WorkerStats, which add
// and the atomic mirror walk as an array.
const numWorkerStats = int(unsafe.Sizeof(WorkerStats{}) / 8)

func (s *WorkerStats) add(o *WorkerStats) {
	a := (*[numWorkerStats]uint64)(unsafe.Pointer(s))
	b := (*[numWorkerStats]uint64)(unsafe.Pointer(o))
	for i := range a {
		a[i] += b[i]
	}
}

// workerCounters is WorkerStats with atomic fields: the worker adds once per
// burst, Stats reads at any time.
type workerCounters struct{ c [numWorkerStats]atomic.Uint64 }

func (c *workerCounters) addAll(s *WorkerStats) {
	a := (*[numWorkerStats]uint64)(unsafe.Pointer(s))
	for i, v := range a {
		if v != 0 {
			c.c[i].Add(v)
			a[i] = 0
		}
	}
}

func (c *workerCounters) read() WorkerStats {
	var s WorkerStats
	a := (*[numWorkerStats]uint64)(unsafe.Pointer(&s))
	for i := range a {
		a[i] = c.c[i].Load()
	}
	return s
}

type rxQueue struct {
	port *port
	q    uint16
}

// txBatch collects one worker's packets for one port until the burst is
// full or the poll round ends.
type txBatch struct {
	port *port
	q    uint16
	b    *dpdk.Burst
	lock *sync.Mutex // non-nil when other workers share the queue
}

type worker struct {
	r      *Runtime
	id     int
	cpu    int
	proc   Processor
	rxqs   []rxQueue
	tx     []txBatch // indexed like Runtime.ports
	rx     *dpdk.Burst
	drops  *dpdk.Burst
	slots  []*pipeline.Buf // the buffers handed to ProcessBurst
	in     []*pipeline.Buf // slots[:k] of the current burst
	spare  []*pipeline.Buf // Buf structs not in slots nor held by the processor
	out    pipeline.Output
	acc    WorkerStats // counts not yet in stats: folded every tick and at the first idle poll (atomic adds, not per burst)
	stats  workerCounters
	byID   []int16
	lastTk int64
	tid    atomic.Int32 // the pinned thread's id, for per-thread CPU accounting
}

func newWorker(r *Runtime, id int) (w *worker, err error) {
	w = &worker{r: r, id: id, cpu: r.cfg.Cores[id], byID: r.byID}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.rx, err = dpdk.NewBurst(r.cfg.Burst); err != nil {
		return nil, err
	}
	if w.drops, err = dpdk.NewBurst(r.cfg.Burst); err != nil {
		return nil, err
	}
	w.tx = make([]txBatch, len(r.ports))
	for i, p := range r.ports {
		t := &w.tx[i]
		t.port, t.q = p, uint16(id%p.ntxq)
		if p.sharedTx {
			t.lock = &p.txLocks[t.q]
		}
		if t.b, err = dpdk.NewBurst(r.cfg.Burst); err != nil {
			return nil, err
		}
	}
	// Spread queues so that worker w polls queue q of data port i when
	// (q+i) % workers == w, and punt interface j when j % workers == w.
	for i, p := range r.ports {
		for q := 0; q < p.nrxq; q++ {
			if (q+i)%r.cfg.Workers == id {
				w.rxqs = append(w.rxqs, rxQueue{port: p, q: uint16(q)})
			}
		}
	}
	w.slots = make([]*pipeline.Buf, r.cfg.Burst)
	for i := range w.slots {
		w.slots[i] = new(pipeline.Buf)
	}
	w.out.Extra = make([]*pipeline.Buf, 0, 64)
	return w, nil
}

func (w *worker) close() {
	for _, b := range []*dpdk.Burst{w.rx, w.drops} {
		if b != nil {
			b.FreeMbufs()
			b.Close()
		}
	}
	for _, t := range w.tx {
		if t.b != nil {
			t.b.FreeMbufs()
			t.b.Close()
		}
	}
	w.rx, w.drops, w.tx = nil, nil, nil
}

// mbufOf returns the mbuf behind a Buf. Handle holds the mbuf's address,
// which is C memory the garbage collector never moves or frees.
func mbufOf(b *pipeline.Buf) *dpdk.Mbuf { return *(**dpdk.Mbuf)(unsafe.Pointer(&b.Handle)) }

func setMbuf(b *pipeline.Buf, m *dpdk.Mbuf) { *(**dpdk.Mbuf)(unsafe.Pointer(&b.Handle)) = m }

func (w *worker) now() int64 { return int64(time.Since(w.r.epoch)) }

// run is the worker goroutine. Its OS thread is pinned and registered with
// DPDK and never returned to Go's scheduler: the goroutine ends locked, so
// the thread ends with it.
func (w *worker) run(ready chan<- error) {
	defer w.r.wg.Done()
	goruntime.LockOSThread()
	var set unix.CPUSet
	set.Set(w.cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		ready <- fmt.Errorf("runtime: worker %d: pin to cpu %d: %w", w.id, w.cpu, err)
		return
	}
	lcore, err := dpdk.RegisterThread()
	if err != nil {
		ready <- fmt.Errorf("runtime: worker %d: %w", w.id, err)
		return
	}
	defer dpdk.UnregisterThread()
	w.tid.Store(int32(unix.Gettid()))
	w.r.log.Info("worker running", "worker", w.id, "cpu", w.cpu, "lcore", lcore, "queues", len(w.rxqs))
	ready <- nil
	w.loop()
	w.drain()
}

// loop is the poll loop: rx burst → process → tx, per queue, then flush the
// per-port batches once per round.
func (w *worker) loop() {
	idle := 0
	sleep := w.r.cfg.IdleSleep
	for !w.r.stop.Load() {
		now := w.now()
		got := 0
		for i := range w.rxqs {
			q := &w.rxqs[i]
			n := q.port.id.RxBurst(q.q, w.rx)
			if n == 0 {
				continue
			}
			got += n
			if q.port.isPunt() {
				w.fromKernel(q.port)
			} else {
				w.process(q.port, now)
			}
		}
		w.flushAll()
		w.acc.Polls++
		if now-w.lastTk > int64(time.Millisecond) {
			w.lastTk = now
			w.proc.Tick(now, &w.out)
			w.sendExtra()
			w.flushAll()
			w.stats.addAll(&w.acc)
		}
		if got == 0 {
			// Readers see exact totals as soon as the traffic pauses;
			// under load, within a millisecond (the tick above).
			if idle == 0 {
				w.stats.addAll(&w.acc)
			}
			idle++
			if sleep > 0 && idle >= 256 {
				time.Sleep(sleep)
			}
			continue
		}
		idle = 0
		w.acc.Bursts++
	}
}

// process turns the RX burst into Bufs over the mbufs, runs the processor
// and sends, punts or frees every mbuf by its verdict.
func (w *worker) process(p *port, now int64) {
	rx := w.rx
	n := rx.Len()
	slots := w.slots[:n]
	inPort := p.cfg.ID
	k := 0
	for i := 0; i < n; i++ {
		m := rx.At(i)
		if m.NbSegs() != 1 {
			w.acc.MultiSeg++
			w.drop(m)
			continue
		}
		b := slots[k]
		k++
		b.Mem = m.Buffer()
		b.Off = m.DataOff()
		b.Len = m.DataLen()
		b.InPort = inPort
		b.OutPort = 0
		b.Verdict = pipeline.VerdictDrop
		setMbuf(b, m)
	}
	rx.Reset()
	w.acc.RxPackets += uint64(n)
	in := slots[:k]
	w.proc.ProcessBurst(now, in, &w.out)
	byID := w.byID
	last, lastIdx := uint16(0), -1
	for i, b := range in {
		m := mbufOf(b)
		switch b.Verdict {
		case pipeline.VerdictTx:
			// Bursts mostly go to one port: look it up once.
			if b.OutPort != last || lastIdx < 0 {
				if int(b.OutPort) >= len(byID) || byID[b.OutPort] < 0 {
					w.acc.BadOutPort++
					w.drop(m)
					continue
				}
				last, lastIdx = b.OutPort, int(byID[b.OutPort])
			}
			m.SetData(b.Off, b.Len)
			t := &w.tx[lastIdx]
			if t.b.Full() {
				w.flush(t)
			}
			t.b.Push(m)
		case pipeline.VerdictPunt:
			if p.punt < 0 {
				w.acc.PuntNoIface++
				w.drop(m)
				continue
			}
			m.SetData(b.Off, b.Len)
			w.acc.Punted++
			w.send(p.punt, m)
		case pipeline.VerdictHeld:
			// The processor keeps b; give the slot a fresh struct.
			w.acc.Held++
			slots[i] = w.spareBuf()
		default:
			w.acc.Dropped++
			w.drop(m)
		}
	}
	if len(w.out.Extra) > 0 {
		w.sendExtra()
	}
}

// sendExtra sends the processor's generated and released buffers and takes
// their structs back.
func (w *worker) sendExtra() {
	for _, b := range w.out.Extra {
		m := mbufOf(b)
		w.acc.Generated++
		if b.Verdict == pipeline.VerdictTx && int(b.OutPort) < len(w.byID) && w.byID[b.OutPort] >= 0 {
			m.SetData(b.Off, b.Len)
			w.send(int(w.byID[b.OutPort]), m)
		} else {
			w.acc.BadOutPort++
			w.drop(m)
		}
		w.spare = append(w.spare, b)
	}
	w.out.Reset()
}

// fromKernel sends what the kernel wrote on a punt interface out of its
// data port, untouched.
func (w *worker) fromKernel(p *port) {
	rx := w.rx
	n := rx.Len()
	for i := 0; i < n; i++ {
		w.send(p.data, rx.At(i))
	}
	rx.Reset()
	w.acc.FromKernel += uint64(n)
}

func (w *worker) send(port int, m *dpdk.Mbuf) {
	t := &w.tx[port]
	if t.b.Full() {
		w.flush(t)
	}
	t.b.Push(m)
}

func (w *worker) drop(m *dpdk.Mbuf) {
	if w.drops.Full() {
		w.drops.FreeMbufs()
	}
	w.drops.Push(m)
}

func (w *worker) flush(t *txBatch) {
	n := t.b.Len()
	var sent int
	if t.lock != nil {
		t.lock.Lock()
		sent = t.port.id.TxBurstFree(t.q, t.b)
		t.lock.Unlock()
	} else {
		sent = t.port.id.TxBurstFree(t.q, t.b)
	}
	w.acc.TxPackets += uint64(sent)
	w.acc.TxFull += uint64(n - sent)
}

func (w *worker) flushAll() {
	for i := range w.tx {
		if w.tx[i].b.Len() > 0 {
			w.flush(&w.tx[i])
		}
	}
	w.drops.FreeMbufs()
}

// drain runs after the last poll: the processor releases what it holds
// (Tick at the end of time), and every batch is sent or freed.
func (w *worker) drain() {
	w.proc.Tick(math.MaxInt64, &w.out)
	w.sendExtra()
	w.flushAll()
	w.stats.addAll(&w.acc)
}

func (w *worker) spareBuf() *pipeline.Buf {
	if n := len(w.spare); n > 0 {
		b := w.spare[n-1]
		w.spare = w.spare[:n-1]
		return b
	}
	return new(pipeline.Buf) // slow path only: a held packet
}

// Alloc implements pipeline.Allocator for the worker's processor: one mbuf
// from the pool with the default headroom and an empty packet.
func (w *worker) Alloc() *pipeline.Buf {
	m := w.r.pool.Alloc()
	if m == nil {
		w.acc.AllocFailed++
		return nil
	}
	b := w.spareBuf()
	b.Mem = m.Buffer()
	b.Off = m.DataOff()
	b.Len = 0
	b.InPort, b.OutPort, b.Verdict = 0, 0, pipeline.VerdictDrop
	setMbuf(b, m)
	return b
}

// Free implements pipeline.Allocator: a held or allocated buffer the
// processor gives up.
func (w *worker) Free(b *pipeline.Buf) {
	w.drop(mbufOf(b))
	w.spare = append(w.spare, b)
}
