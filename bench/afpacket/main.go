// Command afpacket replays pcaps with tcpreplay through peergate's DPDK
// runtime on net_af_packet ports over veth pairs, and through Linux's own
// forwarding (with and without nftables source NAT) between the same
// namespaces, and accounts for every packet: sent by the sender's veth,
// counted by the receiver, or dropped with a reason by the gateway (pipeline
// drop reasons, DPDK port and worker counters, the kernel's counters of the
// gateway's veths).
//
// Topology (names carry the process id; everything is removed on exit,
// SIGINT and SIGTERM included):
//
//	ns pgbsPID: s0 203.0.113.1/29 (vpc-e1's upstream router) -- pgbsPIDg (gateway port e1)
//	ns pgbrPID: r0 198.51.100.1/29 (vpc-e2's upstream router) -- pgbrPIDg (gateway port e2)
//
// The gateway runs the compiled tables of the Peering document's second use
// case (testdata/compiled/peering-api-2-externals.json): Internet traffic
// from e1 is routed to e2's static default route 198.51.100.1. For the Linux
// reference the two gateway ends move into a third namespace pgblPID that
// forwards between them. The receiver counts the packets in an nftables
// netdev ingress rule and drops them before its IP stack.
//
// As root:
//
//	go build -tags dpdk -o /tmp/pgafpacket ./bench/afpacket && /tmp/pgafpacket [-quick] [-json]
//
// It exits 1 when a paced run through peergate loses a packet that no
// counter explains.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/peergate/peergate/bench/trafficgen"
	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/pipeline"
	"github.com/peergate/peergate/dataplane/runtime"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Run is one replay of one pcap.
type Run struct {
	Name      string            `json:"name"`
	Pcap      string            `json:"pcap"`
	Mode      string            `json:"mode"` // "paced" or "topspeed"
	Sent      uint64            `json:"sent"`
	Received  uint64            `json:"received"`
	Explained uint64            `json:"dropped_with_reason"`
	Reasons   map[string]uint64 `json:"reasons,omitempty"`
	Lost      int64             `json:"unexplained_loss"`
	// Background is what the gateway received beyond the pcap (the
	// namespaces' own ARP and the like), removed from Explained.
	Background uint64             `json:"background,omitempty"`
	Seconds    float64            `json:"seconds"`
	Mpps       float64            `json:"mpps"`         // received per second of sending
	Offered    float64            `json:"offered_mpps"` // sent per second of sending
	Latency    map[string]float64 `json:"latency_us,omitempty"`
}

// Report is the program's JSON output.
type Report struct {
	Runs     []Run    `json:"runs"`
	Failures []string `json:"failures,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

func main() {
	quick := flag.Bool("quick", false, "CI size: paced runs only, fewer packets")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	tables := flag.String("tables", "testdata/compiled/peering-api-2-externals.json", "compiled tables the gateway runs (e1 and e2 ports)")
	pps := flag.Int("pps", 20000, "rate of the paced (loss-checking) runs, packets per second")
	loops := flag.Int("loops", 3, "pcap loops of the top-speed runs")
	keep := flag.Bool("keep-pcaps", false, "keep the generated pcaps (printed to stderr)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Geteuid() != 0 {
		fail(fmt.Errorf("needs root: network namespaces, veths, DPDK EAL"))
	}
	dir, err := os.MkdirTemp("", "pgafpacket")
	if err != nil {
		fail(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	var pcaps []string
	for _, s := range trafficgen.Catalog() {
		if !strings.HasPrefix(s.Name, "afpacket-") {
			continue
		}
		p := filepath.Join(dir, s.Name+".pcap")
		if err := trafficgen.Write(p, s); err != nil {
			fail(err)
		}
		pcaps = append(pcaps, p)
	}
	if *keep {
		log.Info("pcaps", "dir", dir)
	}

	b := newBench(os.Getpid(), log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); b.topo.cleanup() }()
	rep, err := b.run(ctx, *tables, pcaps, *quick, *pps, *loops)
	b.topo.cleanup()
	// Every run closed its runtime; ending the EAL also removes its
	// runtime directory under /var/run/dpdk.
	if dpdk.Initialized() {
		if cerr := dpdk.Cleanup(); cerr != nil {
			log.Warn("dpdk cleanup", "err", cerr)
		}
	}
	if err != nil {
		fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Printf("%-38s %-28s %9s %9s %9s %9s %8s %8s\n", "run", "pcap", "sent", "received", "reasons", "unexpl.", "Mpps", "offered")
		for _, r := range rep.Runs {
			fmt.Printf("%-38s %-28s %9d %9d %9d %9d %8.3f %8.3f %v\n", r.Name, r.Pcap, r.Sent, r.Received, r.Explained, r.Lost, r.Mpps, r.Offered, r.Reasons)
		}
		for _, n := range rep.Notes {
			fmt.Println("#", n)
		}
	}
	if len(rep.Failures) > 0 {
		for _, f := range rep.Failures {
			fmt.Fprintln(os.Stderr, "FAIL:", f)
		}
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/afpacket:", err)
	os.Exit(2)
}

type bench struct {
	topo *topology
	log  *slog.Logger
}

func newBench(pid int, log *slog.Logger) *bench {
	return &bench{topo: newTopology(pid), log: log}
}

func (b *bench) run(ctx context.Context, tablesPath string, pcaps []string, quick bool, pps, loops int) (*Report, error) {
	rep := &Report{}
	t := b.topo
	if err := t.setup(); err != nil {
		return nil, err
	}
	type replay struct {
		mode string
		args []string
	}
	paced := func(pcap string) replay {
		n := 5 * pps // five seconds of traffic
		if quick {
			n = 2 * pps
		}
		return replay{"paced", []string{fmt.Sprintf("--pps=%d", pps), fmt.Sprintf("--limit=%d", n)}}
	}
	top := replay{"topspeed", []string{"--topspeed", "--preload-pcap", fmt.Sprintf("--loop=%d", loops)}}
	plan := func(pcap string) []replay {
		if quick {
			return []replay{paced(pcap)}
		}
		return []replay{paced(pcap), top}
	}

	// peergate
	gw, err := startGateway(tablesPath, t, b.log)
	if err != nil {
		return nil, err
	}
	if err := t.fence(); err != nil {
		gw.close()
		return nil, err
	}
	// Warm-up: the gateway resolves 198.51.100.1 (ARP) on the first packets.
	_, _ = t.replay(ctx, pcaps[0], "--pps=1000", "--limit=20")
	time.Sleep(time.Second)
	for _, p := range pcaps {
		for _, rp := range plan(p) {
			if ctx.Err() != nil {
				gw.close()
				return nil, ctx.Err()
			}
			r, err := b.measure(ctx, "peergate", p, rp.mode, rp.args, gw)
			if err != nil {
				gw.close()
				return nil, err
			}
			rep.Runs = append(rep.Runs, r)
			if rp.mode == "paced" && r.Lost != 0 {
				rep.Failures = append(rep.Failures, fmt.Sprintf("peergate, %s, %s: %d packets lost without a reason (sent %d, received %d, dropped with a reason %d %v)",
					r.Pcap, r.Mode, r.Lost, r.Sent, r.Received, r.Explained, r.Reasons))
			}
		}
	}
	probes := 2000
	if quick {
		probes = 500
	}
	probe := func(name string) {
		lat, err := t.latency(probes, 1000)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: latency not measured: %v", name, err))
			return
		}
		lost := uint64(lat["lost"])
		delete(lat, "lost")
		rep.Runs = append(rep.Runs, Run{Name: name, Pcap: "probes-64-v4", Mode: "latency", Sent: uint64(probes), Received: uint64(probes) - lost, Latency: lat})
		b.log.Info("latency", "name", name, "us", lat, "lost", lost)
	}
	probe("peergate")
	gw.close()
	if err := t.unfence(); err != nil {
		return nil, err
	}

	// Linux between the same namespaces.
	if err := t.linuxRouter(); err != nil {
		return nil, err
	}
	for _, nat := range []bool{false, true} {
		name := "linux forward"
		if nat {
			name = "linux forward + nftables snat"
			if err := t.linuxNAT(); err != nil {
				return nil, err
			}
		}
		if quick && !nat {
			continue
		}
		for _, p := range pcaps {
			for _, rp := range plan(p) {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				r, err := b.measure(ctx, name, p, rp.mode, rp.args, nil)
				if err != nil {
					return nil, err
				}
				rep.Runs = append(rep.Runs, r)
			}
		}
		probe(name)
	}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("sender: tcpreplay %s on a veth in its own namespace; receiver: an nftables netdev ingress rule counting and dropping in another namespace", tcpreplayVersion()),
		"peergate: the DPDK runtime in-process (one worker core), net_af_packet on the gateway ends of the veths, the pipeline on the compiled tables of the Peering document's use case 2 (routing e1 -> e2, no NAT on this path); Linux: ip_forward between the same veth ends moved into a router namespace, with and without an nftables snat rule",
		fmt.Sprintf("latency: %d probes at 1000 per second, one 64-byte UDP frame each, sent on a packet socket on the sender's veth and received on one on the receiver's veth, one clock, user-space timestamps (system calls and scheduling included)", probes),
		"paced runs check accounting (every packet received or dropped with a reason); top-speed runs measure the rate tcpreplay and the path sustain (received packets per second of sending)")
	return rep, nil
}

// measure replays one pcap and accounts for every packet.
func (b *bench) measure(ctx context.Context, name, pcap, mode string, args []string, gw *gateway) (Run, error) {
	t := b.topo
	r := Run{Name: name, Pcap: strings.TrimSuffix(filepath.Base(pcap), ".pcap"), Mode: mode}
	sent0, err := t.senderTx()
	if err != nil {
		return r, err
	}
	recv0, err := t.received()
	if err != nil {
		return r, err
	}
	k0 := t.kernelDrops(gw != nil)
	var g0 gwCounters
	var g0rx, g0e1, k0rx, k0tx uint64
	if gw != nil {
		g0 = gw.counters()
		g0rx, g0e1 = gw.rxPackets(), gw.portRx("e1")
		k0rx, k0tx = stat("", t.gw[0], "rx_packets"), stat("", t.gw[0], "tx_packets")
	}
	res, err := t.replay(ctx, pcap, args...)
	if err != nil {
		return r, err
	}
	// Let the last packets through: wait until the receiver's count is
	// stable (the gateway publishes its counters at least every second).
	last, stable := uint64(0), 0
	for i := 0; i < 50 && stable < 3; i++ {
		time.Sleep(200 * time.Millisecond)
		n, err := t.received()
		if err != nil {
			return r, err
		}
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	time.Sleep(1100 * time.Millisecond)
	sent1, _ := t.senderTx()
	recv1, _ := t.received()
	r.Sent, r.Received = sent1-sent0, recv1-recv0
	r.Reasons = map[string]uint64{}
	for k, v := range t.kernelDrops(gw != nil) {
		if d := v - k0[k]; d > 0 {
			r.Reasons[k] = d
		}
	}
	if gw != nil {
		for k, v := range gw.counters().sub(g0) {
			r.Reasons[k] = v
		}
	}
	for _, v := range r.Reasons {
		r.Explained += v
	}
	if gw != nil {
		var ringDrops uint64
		// Frames the kernel delivered to the e1 veth that the af_packet
		// socket never handed to DPDK: its ring was full (the PMD does
		// not report the socket's drops). Counted from both sides.
		krx := stat("", t.gw[0], "rx_packets") - k0rx
		ktx := stat("", t.gw[0], "tx_packets") - k0tx
		dpdkIn := gw.portRx("e1") - g0e1
		if seen := dpdkIn - min(dpdkIn, ktx); krx > seen {
			d := krx - seen
			ringDrops = d
			r.Reasons["kernel: af_packet socket ring full on e1 (veth delivered, DPDK never read)"] = d
			r.Explained += d
		}
		// Packets the gateway received that the pcap did not hold (the
		// namespaces' kernels talking: ARP and the like) are dropped or
		// consumed with a reason too; they must not hide a loss.
		in := gw.rxPackets() - g0rx + ringDrops
		if in > r.Sent {
			r.Background = in - r.Sent
			r.Explained -= min(r.Explained, r.Background)
		}
	}
	r.Lost = int64(r.Sent) - int64(r.Received) - int64(r.Explained)
	r.Seconds = res.seconds
	if res.seconds > 0 {
		r.Mpps = round3(float64(r.Received) / res.seconds / 1e6)
		r.Offered = round3(float64(r.Sent) / res.seconds / 1e6)
	}
	if gw != nil && os.Getenv("PEERGATE_BENCH_DEBUG") != "" {
		s, _ := gw.rt.Stats()
		pc := gw.pl.Counters()
		b.log.Info("debug", "ports", fmt.Sprintf("%+v", s.Ports), "worker", fmt.Sprintf("%+v", s.Total), "drops", pc.DropsByName(), "events", pc.EventsByName(),
			"r0_rx", stat(t.receiver, receiverIf, "rx_packets"), "e2_tx", stat("", t.gw[1], "tx_packets"), "e1_rx", stat("", t.gw[0], "rx_packets"))
	}
	b.log.Info("run", "name", r.Name, "pcap", r.Pcap, "mode", mode, "sent", r.Sent, "received", r.Received, "reasons", r.Reasons, "lost", r.Lost, "mpps", r.Mpps)
	return r, nil
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// ringArgs size the af_packet socket rings: 4096 frames ride out a worker
// descheduled for 200 ms at the paced rate on a shared machine (the PMD's
// default is 512).
const ringArgs = ",blocksz=4096,framesz=2048,framecnt=4096"

// gateway is peergate's runtime with the real pipeline.
type gateway struct {
	rt *runtime.Runtime
	pl *pipeline.Pipeline
}

type gwCounters map[string]uint64

func (c gwCounters) sub(o gwCounters) gwCounters {
	out := gwCounters{}
	for k, v := range c {
		if d := v - o[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func startGateway(path string, t *topology, log *slog.Logger) (*gateway, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	var tabs tablesv1.Tables
	if err := protojson.Unmarshal(raw, &tabs); err != nil {
		return nil, fmt.Errorf("tables %s: %w", path, err)
	}
	var e1, e2 uint32 = 0xffff, 0xffff
	for _, p := range tabs.GetPorts() {
		switch p.GetName() {
		case "e1":
			e1 = p.GetId()
			p.Mac = t.gwMACs[0].String()
		case "e2":
			e2 = p.GetId()
			p.Mac = t.gwMACs[1].String()
		}
	}
	if e1 == 0xffff || e2 == 0xffff {
		return nil, fmt.Errorf("tables %s: no ports e1 and e2", path)
	}
	snap, err := fib.Build(&tabs, fib.Options{})
	if err != nil {
		return nil, fmt.Errorf("tables %s: %w", path, err)
	}
	var h fib.Holder
	h.Store(snap)
	pl := pipeline.New(&h, pipeline.Config{})
	if !dpdk.Initialized() {
		args := append(dpdk.NoHugeArgs(fmt.Sprintf("pgaf%d", os.Getpid()), 512), "-l", "0", "--log-level=lib.eal:error")
		if err := dpdk.Init(args); err != nil {
			return nil, fmt.Errorf("EAL: %w", err)
		}
	}
	core := 0
	if goruntime.NumCPU() > 1 {
		core = 1
	}
	rt, err := runtime.New(runtime.Config{Workers: 1, Cores: []int{core}, Logger: log, Ports: []runtime.PortConfig{
		{ID: uint16(e1), Name: "e1", Device: "net_af_packet_e1,iface=" + t.gw[0] + ringArgs},
		{ID: uint16(e2), Name: "e2", Device: "net_af_packet_e2,iface=" + t.gw[1] + ringArgs},
	}}, func(id int, a pipeline.Allocator) runtime.Processor { return pl.NewWorker(id, a) })
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if err := rt.Start(); err != nil {
		_ = rt.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return &gateway{rt: rt, pl: pl}, nil
}

func (g *gateway) close() {
	g.rt.Stop()
	_ = g.rt.Close()
}

// counters are the gateway's drop counters with a reason: pipeline drop
// reasons, DPDK port drops and the worker's own.
func (g *gateway) counters() gwCounters {
	c := gwCounters{}
	pc := g.pl.Counters()
	for k, v := range pc.DropsByName() {
		c["pipeline: "+k] = v
	}
	s, _ := g.rt.Stats()
	for _, p := range s.Ports {
		c["port "+p.Name+": rx missed (ring full)"] += p.IMissed
		c["port "+p.Name+": rx errors"] += p.IErrors
		c["port "+p.Name+": rx no mbuf"] += p.RxNoMbuf
		c["port "+p.Name+": tx errors"] += p.OErrors
	}
	w := s.Total
	c["worker: tx queue full"] = w.TxFull
	c["worker: bad output port"] = w.BadOutPort
	c["worker: multi-segment"] = w.MultiSeg
	c["worker: punt without interface"] = w.PuntNoIface
	c["worker: mbuf pool empty"] = w.AllocFailed
	return c
}

// rxPackets is what the gateway's ports received in all.
func (g *gateway) rxPackets() uint64 {
	s, _ := g.rt.Stats()
	var n uint64
	for _, p := range s.Ports {
		n += p.IPackets
	}
	return n
}

func (g *gateway) portRx(name string) uint64 {
	s, _ := g.rt.Stats()
	for _, p := range s.Ports {
		if p.Name == name {
			return p.IPackets
		}
	}
	return 0
}

func tcpreplayVersion() string {
	out, err := sh("tcpreplay", "--version")
	if err != nil {
		return "(version unknown)"
	}
	line, _, _ := strings.Cut(out, "\n")
	return strings.TrimSpace(strings.TrimPrefix(line, "tcpreplay version:"))
}
