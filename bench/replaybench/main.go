// Command replaybench measures the pipeline in replay mode, without I/O, on
// the traffic generator's pcaps of the seed scenarios: ns per packet (wall
// and the thread's CPU time), allocations per packet and what became of the
// packets (verdicts, top drop reasons), so a figure never hides that the
// traffic was dropped.
//
// For each case the pipeline first sees the whole pcap once with every ARP
// request it sends answered (neighbours learned; sessions created), then the
// same pcap is timed: the steady state. Stateful cases are also timed on a
// fresh pipeline whose neighbours were learned from other traffic, so every
// flow of the pcap is new: the first pass.
//
//	go run ./bench/replaybench [-json] [-packets N]
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/peergate/peergate/bench/trafficgen"
	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/pipeline"
	"github.com/peergate/peergate/dataplane/replay"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Case is one pcap through one scenario's tables.
type Case struct {
	Name     string
	Tables   string // testdata/compiled/*.json
	Pcap     string // trafficgen catalog name
	Port     string // port name the pcap arrives on
	Stateful bool
}

var cases = []Case{
	{"kube-ovn peering, 64 B, 16 flows", "testdata/compiled/kube-ovn-vpc-peering.json", "seed-kube-ovn-vxlan-64-v4-16flows", "fabric", false},
	{"kube-ovn peering, IMIX, 64 k flows", "testdata/compiled/kube-ovn-vpc-peering.json", "seed-kube-ovn-vxlan-imix-v4-64kflows", "fabric", false},
	{"static NAT (use case 1), 64 B, 1 k flows", "testdata/compiled/peering-api-1-static-nat.json", "seed-static-nat-vxlan-64-v4-1kflows", "fabric", false},
	{"externals (use case 2), 64 B, 16 flows", "testdata/compiled/peering-api-2-externals.json", "afpacket-64-v4-16flows", "e1", false},
	{"stateful NAT (use case 4), TCP established", "testdata/compiled/peering-api-4-internet-by-cost.json", "seed-internet-vxlan-tcp-established", "fabric", true},
	{"stateful NAT (use case 4), TCP 50% new", "testdata/compiled/peering-api-4-internet-by-cost.json", "seed-internet-vxlan-tcp-new50", "fabric", true},
	{"stateful NAT (use case 4), TCP 1% new, IMIX", "testdata/compiled/peering-api-4-internet-by-cost.json", "seed-internet-vxlan-tcp-new1", "fabric", true},
}

// Result is one timed pass.
type Result struct {
	Case       string            `json:"case"`
	Pass       string            `json:"pass"` // "steady" or "first"
	Pcap       string            `json:"pcap"`
	Packets    int               `json:"packets"`
	NsPerPkt   float64           `json:"ns_per_packet"`
	CPUPerPkt  float64           `json:"cpu_ns_per_packet"`
	AllocsPkt  float64           `json:"allocs_per_packet"`
	TxFraction float64           `json:"tx_fraction"`
	Verdicts   map[string]uint64 `json:"verdicts"`
	Drops      map[string]uint64 `json:"top_drops,omitempty"`
	Error      string            `json:"error,omitempty"`
}

func main() {
	asJSON := flag.Bool("json", false, "print JSON")
	packets := flag.Int("packets", 32768, "packets per pcap (the catalog's seeds; fewer is faster)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "pgreplaybench")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	specs := map[string]trafficgen.Spec{}
	for _, s := range trafficgen.Catalog() {
		specs[s.Name] = s
	}
	var out []Result
	for _, c := range cases {
		s, ok := specs[c.Pcap]
		if !ok {
			fail(fmt.Errorf("%s: no pcap %s in the catalog", c.Name, c.Pcap))
		}
		s.Packets = min(s.Packets, *packets)
		rs, err := run(c, s, dir)
		if err != nil {
			out = append(out, Result{Case: c.Name, Pcap: c.Pcap, Error: err.Error()})
			continue
		}
		out = append(out, rs...)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	fmt.Printf("%-46s %-7s %8s %8s %8s %6s  %s\n", "case", "pass", "ns/pkt", "cpu-ns", "allocs", "tx", "drops")
	for _, r := range out {
		if r.Error != "" {
			fmt.Printf("%-46s error: %s\n", r.Case, r.Error)
			continue
		}
		fmt.Printf("%-46s %-7s %8.1f %8.1f %8.3f %5.1f%%  %v\n", r.Case, r.Pass, r.NsPerPkt, r.CPUPerPkt, r.AllocsPkt, 100*r.TxFraction, r.Drops)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "replaybench:", err)
	os.Exit(1)
}

func loadTables(path string) (*tablesv1.Tables, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t tablesv1.Tables
	if err := protojson.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

func readPcap(dir string, s trafficgen.Spec, port uint16) ([]replay.Packet, error) {
	p := filepath.Join(dir, fmt.Sprintf("%s-%d.pcap", s.Name, s.Seed))
	if err := trafficgen.Write(p, s); err != nil {
		return nil, err
	}
	return replay.ReadFile(p, port)
}

func run(c Case, s trafficgen.Spec, dir string) ([]Result, error) {
	t, err := loadTables(c.Tables)
	if err != nil {
		return nil, err
	}
	port, err := replay.PortID(t, c.Port)
	if err != nil {
		return nil, err
	}
	pk, err := readPcap(dir, s, port)
	if err != nil {
		return nil, err
	}
	var out []Result
	// Steady state: a whole pass with ARP answered, then the timed pass.
	g, err := newGateway(t)
	if err != nil {
		return nil, err
	}
	g.warm(pk)
	r := g.timed(pk)
	r.Case, r.Pass, r.Pcap = c.Name, "steady", c.Pcap
	out = append(out, r)
	if c.Stateful {
		// First pass: neighbours learned from other flows (another seed),
		// every flow of the pcap new to the session table.
		other := s
		other.Seed += 1000
		other.Packets = 256
		warm, err := readPcap(dir, other, port)
		if err != nil {
			return nil, err
		}
		g, err := newGateway(t)
		if err != nil {
			return nil, err
		}
		g.warm(warm)
		r := g.timed(pk)
		r.Case, r.Pass, r.Pcap = c.Name, "first", c.Pcap
		out = append(out, r)
	}
	return out, nil
}

type gateway struct {
	pl   *pipeline.Pipeline
	w    *pipeline.Worker
	pool *replay.Pool
	out  pipeline.Output
	now  int64
}

func newGateway(t *tablesv1.Tables) (*gateway, error) {
	snap, err := fib.Build(t, fib.Options{})
	if err != nil {
		return nil, err
	}
	var h fib.Holder
	h.Store(snap)
	g := &gateway{pl: pipeline.New(&h, pipeline.Config{}), pool: &replay.Pool{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	g.w = g.pl.NewWorker(0, g.pool)
	return g, nil
}

// bufs copies packets into buffers with headroom, outside any timing.
func bufs(pk []replay.Packet) []*pipeline.Buf {
	out := make([]*pipeline.Buf, len(pk))
	for i, p := range pk {
		mem := make([]byte, pipeline.Headroom+len(p.Data)+128)
		copy(mem[pipeline.Headroom:], p.Data)
		out[i] = &pipeline.Buf{Mem: mem, Off: pipeline.Headroom, Len: len(p.Data), InPort: p.Port}
	}
	return out
}

// warm feeds pk and answers every ARP request the gateway sends, until it
// sends none, then lets the hold timers run out.
func (g *gateway) warm(pk []replay.Packet) {
	in := bufs(pk)
	for round := 0; round < 4; round++ {
		var replies []*pipeline.Buf
		for i := 0; i < len(in); i += 32 {
			b := in[i:min(i+32, len(in))]
			g.out.Reset()
			g.w.ProcessBurst(g.now, b, &g.out)
			for _, x := range g.out.Extra {
				if r := arpReply(x); r != nil {
					replies = append(replies, r)
				}
				g.pool.Free(x)
			}
		}
		if len(replies) == 0 {
			break
		}
		for i := 0; i < len(replies); i += 32 {
			g.out.Reset()
			g.w.ProcessBurst(g.now, replies[i:min(i+32, len(replies))], &g.out)
		}
		g.now += int64(time.Millisecond)
		in = bufs(pk)
	}
	g.now += int64(10 * time.Second)
	g.out.Reset()
	g.w.Tick(g.now, &g.out)
}

// arpReply answers an ARP request the gateway sent, from a made-up MAC
// derived from the asked address.
func arpReply(b *pipeline.Buf) *pipeline.Buf {
	d := b.Bytes()
	if len(d) < 42 || binary.BigEndian.Uint16(d[12:]) != 0x0806 || binary.BigEndian.Uint16(d[20:]) != 1 {
		return nil
	}
	r := make([]byte, 60)
	mac := []byte{0x02, 0x42, d[38], d[39], d[40], d[41]}
	copy(r[0:6], d[6:12])
	copy(r[6:12], mac)
	binary.BigEndian.PutUint16(r[12:], 0x0806)
	copy(r[14:20], d[14:20]) // htype, ptype, hlen, plen
	binary.BigEndian.PutUint16(r[20:], 2)
	copy(r[22:28], mac)
	copy(r[28:32], d[38:42])
	copy(r[32:38], d[22:28])
	copy(r[38:42], d[28:32])
	mem := make([]byte, pipeline.Headroom+len(r))
	copy(mem[pipeline.Headroom:], r)
	return &pipeline.Buf{Mem: mem, Off: pipeline.Headroom, Len: len(r), InPort: b.OutPort}
}

// timed processes pk once in bursts of 32 and measures it.
func (g *gateway) timed(pk []replay.Packet) Result {
	in := bufs(pk)
	// The replay pool stands in for the mbuf pool: fill it first, so the
	// buffers the pipeline allocates (ARP requests, ICMP errors) come
	// from it without the heap (and freeing them never grows its list).
	pre := make([]*pipeline.Buf, 4096)
	for i := range pre {
		pre[i] = g.pool.Alloc()
	}
	for _, b := range pre {
		g.pool.Free(b)
	}
	c0 := g.pl.Counters()
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	goruntime.GC()
	var m0, m1 goruntime.MemStats
	goruntime.ReadMemStats(&m0)
	cpu0 := threadCPU()
	start := time.Now()
	for i := 0; i < len(in); i += 32 {
		g.out.Reset()
		g.w.ProcessBurst(g.now, in[i:min(i+32, len(in))], &g.out)
		for _, x := range g.out.Extra {
			g.pool.Free(x)
		}
	}
	wall := time.Since(start)
	cpu := threadCPU() - cpu0
	goruntime.ReadMemStats(&m1)
	n := float64(len(in))
	r := Result{Packets: len(in), NsPerPkt: round1(float64(wall.Nanoseconds()) / n), CPUPerPkt: round1(float64(cpu) / n),
		AllocsPkt: float64(m1.Mallocs-m0.Mallocs) / n, Verdicts: map[string]uint64{}}
	for _, b := range in {
		r.Verdicts[b.Verdict.String()]++
	}
	r.TxFraction = float64(r.Verdicts[pipeline.VerdictTx.String()]) / n
	// The worker publishes its counters now and then: read them after a
	// tick.
	g.out.Reset()
	g.w.Tick(g.now, &g.out)
	c1 := g.pl.Counters()
	type kv struct {
		k string
		v uint64
	}
	var drops []kv
	d0 := c0.DropsByName()
	for k, v := range c1.DropsByName() {
		if d := v - d0[k]; d > 0 {
			drops = append(drops, kv{k, d})
		}
	}
	sort.Slice(drops, func(i, j int) bool { return drops[i].v > drops[j].v })
	r.Drops = map[string]uint64{}
	for _, x := range drops[:min(3, len(drops))] {
		r.Drops[x.k] = x.v
	}
	return r
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// threadCPU is this thread's CPU time in ns.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
