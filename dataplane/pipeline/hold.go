package pipeline

// The hold queue keeps packets whose next hop (or remote VTEP) is being
// resolved: bounded, per worker, scanned linearly (it is small and only
// touched on the slow path).
type holdEntry struct {
	b        *Buf
	vpc      int
	nh       neighKey // the packet's next hop in its VPC
	wait     neighKey // what is being resolved (nh or the VTEP)
	hash     uint32
	etype    uint16
	deadline int64
}

type holdQueue struct {
	e []holdEntry
	n int
	// lastCheck is when the shared table was last consulted for waiting
	// entries another worker may have resolved.
	lastCheck int64
}

func (q *holdQueue) init(n int) { q.e = make([]holdEntry, n) }

// holdFor queues b until wait resolves and sends a request for it.
func (w *Worker) holdFor(b *Buf, vid int, nh, wait neighKey, hash uint32, etype uint16, held bool) {
	q := &w.hold
	if q.n == len(q.e) {
		w.fail(b, DropHoldQueueFull, held)
		w.requestFor(&wait)
		return
	}
	deadline := w.now + int64(w.p.cfg.HoldTimeout)
	q.e[q.n] = holdEntry{b: b, vpc: vid, nh: nh, wait: wait, hash: hash, etype: etype, deadline: deadline}
	q.n++
	if !held {
		b.Verdict = VerdictHeld
		w.C.Verdicts[VerdictHeld]++
		w.C.Events[EvHeld]++
	}
	w.requestFor(&wait)
}

func (w *Worker) requestFor(k *neighKey) {
	if !w.shouldRequest(k) {
		return
	}
	if k.is4() {
		w.arpRequest(k)
		return
	}
	w.ndRequest(k)
}

// released re-delivers the packets waiting for k.
func (w *Worker) released(k *neighKey) {
	q := &w.hold
	for i := 0; i < q.n; {
		if q.e[i].wait != *k {
			i++
			continue
		}
		e := q.e[i]
		q.n--
		q.e[i] = q.e[q.n]
		q.e[q.n] = holdEntry{}
		w.redeliver(&e)
	}
}

func (w *Worker) redeliver(e *holdEntry) {
	if w.snap == nil || e.vpc >= len(w.snap.VPCs) {
		w.fail(e.b, DropNoRoute, true)
		return
	}
	w.deliver(e.b, e.vpc, e.nh, e.hash, e.etype, true)
}

// serviceHold drops timed-out entries and releases entries another worker
// resolved.
func (w *Worker) serviceHold() {
	q := &w.hold
	check := w.now-q.lastCheck >= int64(1e6)
	if check {
		q.lastCheck = w.now
	}
	for i := 0; i < q.n; {
		e := q.e[i]
		switch {
		case w.now >= e.deadline:
		case check && w.lookupNeigh(&e.wait) != nil:
		default:
			i++
			continue
		}
		q.n--
		q.e[i] = q.e[q.n]
		q.e[q.n] = holdEntry{}
		if w.now >= e.deadline {
			w.fail(e.b, DropNeighbourUnresolved, true)
		} else {
			w.redeliver(&e)
		}
	}
}
