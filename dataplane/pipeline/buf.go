package pipeline

// Buf is one single-segment packet buffer, owned by the driver (a DPDK mbuf,
// a pcap record's copy, a test slice). The pipeline reads and rewrites the
// packet in place and may grow it at the front into the headroom
// (encapsulation) or shrink it (decapsulation); the driver then copies Off
// and Len back into its own descriptor (mbuf data_off / data_len).
type Buf struct {
	// Mem is the whole buffer including headroom and tailroom.
	Mem []byte
	// The packet is Mem[Off : Off+Len]. Drivers leave at least Headroom bytes
	// before Off so VXLAN encapsulation never has to copy.
	Off, Len int
	// InPort is the port the packet was received on (tables.Port.id).
	InPort uint16
	// OutPort is set by the pipeline when Verdict is VerdictTx.
	OutPort uint16
	// Verdict is set by the pipeline for every buffer it is given.
	Verdict Verdict
	// Handle is the driver's own reference (mbuf pointer); the pipeline never
	// looks at it.
	Handle uintptr
}

// Headroom is the minimum headroom a driver must leave in front of a received
// packet: outer Ethernet+802.1Q(x2)+IPv6+UDP+VXLAN fits with room to spare.
const Headroom = 128

// Bytes returns the packet: Mem[Off:Off+Len].
func (b *Buf) Bytes() []byte { return b.Mem[b.Off : b.Off+b.Len] }

// Verdict says what the driver must do with a buffer after ProcessBurst.
type Verdict uint8

const (
	// VerdictDrop: the driver frees the buffer. The reason was counted.
	VerdictDrop Verdict = iota
	// VerdictTx: the driver sends Bytes() on OutPort (the buffer may be the
	// received one rewritten in place, e.g. a forwarded packet or an ARP
	// reply).
	VerdictTx
	// VerdictHeld: the pipeline keeps the buffer (its next hop is being
	// resolved). It comes back later through Output.Extra with VerdictTx, or
	// is released through Allocator.Free on timeout. The driver must not
	// touch or free it meanwhile.
	VerdictHeld
	// VerdictPunt: addressed to the gateway but not handled by the dataplane
	// (e.g. BGP to a port IP); the driver hands it to the kernel (tap/KNI) or
	// frees it.
	VerdictPunt
)

func (v Verdict) String() string {
	switch v {
	case VerdictDrop:
		return "drop"
	case VerdictTx:
		return "tx"
	case VerdictHeld:
		return "held"
	case VerdictPunt:
		return "punt"
	}
	return "unknown"
}

// Allocator gives the pipeline buffers for packets it generates on the slow
// path (ARP requests and neighbour solicitations; ICMP errors and ARP/echo
// replies reuse the received buffer) and takes back buffers it held and
// drops (neighbour resolution timed out): Free therefore also receives
// buffers the driver received, not only ones Alloc returned. Never called
// for ordinary forwarding.
// Alloc returns nil when the pool is empty; the pipeline then counts a drop.
// A buffer from Alloc has Off set to at least Headroom and Mem long enough for
// the port MTU plus headers.
type Allocator interface {
	Alloc() *Buf
	Free(*Buf)
}

// Output collects what a burst produced besides the verdicts of its input:
// generated packets and released held packets, all with Verdict == VerdictTx
// and OutPort set. The driver sends them and then resets Extra to length 0
// (keep the backing array: no allocation per burst once it has grown).
type Output struct {
	Extra []*Buf
}

// Reset empties Extra without freeing its backing array.
func (o *Output) Reset() { o.Extra = o.Extra[:0] }

// The per-burst entry points are on Worker:
//
//	func (p *Pipeline) NewWorker(id int, alloc Allocator) *Worker
//	func (w *Worker) ProcessBurst(now int64, in []*Buf, out *Output)
//	func (w *Worker) Tick(now int64, out *Output) // call when idle: neighbour timeouts
//
// now is a monotonic time in nanoseconds (time.Now().UnixNano() or the pcap
// timestamp in replay); it ages the neighbour table and hold queue.
// A Worker is owned by one goroutine. Pipeline.Counters sums what every
// worker last published (every 64 bursts and at every Tick; call Tick when
// idle), safely from any goroutine.
