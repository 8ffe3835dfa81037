package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peergate/peergate/dataplane/dpdk"
)

// ScenarioNames lists the scenarios in the issue's order.
var ScenarioNames = []string{"lpm", "pipeline", "stateful", "dpdk", "afpacket", "controlplane"}

// Env is what every scenario gets.
type Env struct {
	Runner
	Quick   bool
	Machine Machine
	// Tmp is a scratch directory removed after the run.
	Tmp string
	// Pcaps is where the traffic generator's pcaps are (bench/cmd/trafficgen).
	Pcaps string
}

// Scenario runs one comparison.
type Scenario struct {
	Name  string
	Title string
	Issue int
	// InQuick scenarios also run in bench-quick.
	InQuick bool
	Run     func(ctx context.Context, e *Env, r *Result) error
}

// ErrSkip wraps the reason a scenario cannot run on this machine.
var ErrSkip = errors.New("skipped")

func skip(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrSkip, fmt.Sprintf(format, a...))
}

// Scenarios returns every scenario, in the issue's order.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "lpm", Title: "Longest-prefix match on the full Internet table", Issue: 3, Run: runLPM},
		{Name: "pipeline", Title: "Pipeline without I/O (64-byte VXLAN, stateless NAT)", Issue: 4, InQuick: true, Run: runPipeline},
		{Name: "stateful", Title: "Session table and stateful NAT", Issue: 5, Run: runStateful},
		{Name: "dpdk", Title: "DPDK runtime, one and two worker cores, beside dpdk-testpmd", Issue: 6, Run: runDPDK},
		{Name: "afpacket", Title: "pcap replay over net_af_packet and veth, beside Linux forwarding + nftables NAT", Issue: 6, InQuick: true, Run: runAFPacket},
		{Name: "controlplane", Title: "Control plane: apply-to-live, BGP full table and single update", Issue: 7, Run: runControlplane},
	}
}

func metric(bs map[string]Bench, name, unit string) float64 {
	b, ok := bs[name]
	if !ok {
		return 0
	}
	return b.Metrics[unit]
}

// best is the lowest positive value of the named benchmarks' unit, and the
// name that has it.
func best(bs map[string]Bench, unit string, names ...string) (float64, string) {
	v, who := 0.0, ""
	for _, n := range names {
		x := metric(bs, n, unit)
		if x > 0 && (v == 0 || x < v) {
			v, who = x, n
		}
	}
	return v, who
}

func tgt(text, op string, bound float64) *Target { return &Target{Text: text, Op: op, Bound: bound} }
func tgtRatio(text, op string, bound float64) *Target {
	return &Target{Text: text, Op: op, Bound: bound, OnRatio: true}
}

func (r *Result) add(f Figure) {
	if f.Value == 0 && !strings.HasPrefix(f.Unit, "allocs/") {
		r.Notes = append(r.Notes, fmt.Sprintf("%s: not measured (benchmark missing or skipped)", f.Name))
		return
	}
	r.Figures = append(r.Figures, f)
}

// --- 1. lpm ---------------------------------------------------------------

var (
	rteLPMCycles     = regexp.MustCompile(`Average LPM Lookup: ([0-9.]+) cycles`)
	rteLPMBulkCycles = regexp.MustCompile(`BULK LPM Lookup: ([0-9.]+) cycles`)
)

func runLPM(ctx context.Context, e *Env, r *Result) error {
	benchtime := "2s"
	if e.Quick {
		benchtime = "200ms"
	}
	bs, cmd, raw, err := e.GoBench(ctx, "./lpm/", ".", benchtime)
	r.Commands = append(r.Commands, cmd)
	batchCPU := lpmSummary(raw)["Lookup4Batch cpu-ns/addr"]
	if err != nil {
		return err
	}
	if _, ok := bs["Lookup4/peergate"]; !ok {
		return skip("lpm benchmarks did not run (is ../shared/data/internet-prefixes.txt.gz there?)")
	}
	bartLookup := func(bench string) (float64, string) {
		return best(bs, "cpu-ns/op", bench+"/bart-fast", bench+"/bart")
	}
	for _, fam := range []string{"4", "6"} {
		ref, who := bartLookup("Lookup" + fam)
		r.add(Figure{Group: "lookup (CPU ns)", Name: "IPv" + fam + " lookup", Unit: "cpu-ns/lookup", LowerIsBetter: true,
			Value: metric(bs, "Lookup"+fam+"/peergate", "cpu-ns/op"), Reference: "bart (" + strings.TrimPrefix(who, "Lookup"+fam+"/") + ")", RefValue: ref,
			Target: tgtRatio("at least 2x faster than bart's fastest table", ">=", 2), Command: cmd})
	}
	ref, who := bartLookup("Lookup4Uniform")
	r.add(Figure{Group: "lookup (CPU ns)", Name: "IPv4 lookup, uniform addresses", Unit: "cpu-ns/lookup", LowerIsBetter: true,
		Value: metric(bs, "Lookup4Uniform/peergate", "cpu-ns/op"), Reference: "bart (" + strings.TrimPrefix(who, "Lookup4Uniform/") + ")", RefValue: ref, Command: cmd})
	r.add(Figure{Group: "lookup (CPU ns)", Name: "IPv4 lookup, bursts of 32", Unit: "cpu-ns/lookup", LowerIsBetter: true,
		Value: batchCPU, Command: cmd})

	// rte_lpm: dpdk-test's lpm_perf_autotest, converted with the TSC.
	rte, rteBulk, rteCmd, rteErr := rteLPM(ctx, e)
	if rteErr != nil {
		r.Notes = append(r.Notes, "rte_lpm reference not measured: "+rteErr.Error())
	} else {
		r.Commands = append(r.Commands, rteCmd)
		ns := rte * 1000 / e.Machine.TSCMHz
		r.add(Figure{Group: "lookup vs rte_lpm", Name: "IPv4 lookup vs rte_lpm", Unit: "ns/lookup", LowerIsBetter: true,
			Value: metric(bs, "Lookup4/peergate", "cpu-ns/op"), Reference: "rte_lpm (dpdk-test lpm_perf_autotest)", RefValue: math.Round(ns*10) / 10,
			RefNote: fmt.Sprintf("%.1f cycles / %.0f MHz TSC, its own ~1 M-route table", rte, e.Machine.TSCMHz),
			Target:  tgtRatio("no slower than rte_lpm", ">=", 1), Command: cmd + "; " + rteCmd})
		if rteBulk > 0 {
			r.add(Figure{Group: "lookup vs rte_lpm", Name: "IPv4 lookup in bursts vs rte_lpm bulk", Unit: "ns/lookup", LowerIsBetter: true,
				Value: batchCPU, Reference: "rte_lpm_lookup_bulk (dpdk-test)", RefValue: math.Round(rteBulk*1000/e.Machine.TSCMHz*10) / 10,
				RefNote: fmt.Sprintf("%.1f cycles / %.0f MHz TSC", rteBulk, e.Machine.TSCMHz), Command: cmd + "; " + rteCmd})
		}
		r.Notes = append(r.Notes, "dpdk-test's lpm_perf_autotest builds its own ~1 M-route IPv4 table (not the table in ../shared/data) and looks up random addresses, 12.5% of which miss; its cycles are converted with this machine's TSC.")
	}
	mem, memWho := best(bs, "B/route", "Memory/bart", "Memory/bart-lite", "Memory/bart-fast")
	r.add(Figure{Group: "bytes per route", Name: "bytes per route (full table)", Unit: "B/route", LowerIsBetter: true,
		Value: metric(bs, "Memory/peergate", "B/route"), Reference: "bart (" + strings.TrimPrefix(memWho, "Memory/") + ")", RefValue: mem,
		Target: tgtRatio("smaller than bart", ">=", 1), Command: cmd})
	r.add(Figure{Group: "build and update", Name: "build the full table", Unit: "ms", LowerIsBetter: true,
		Value: metric(bs, "Build/peergate", "ns/op") / 1e6, Reference: "bart (inserts)", RefValue: metric(bs, "Build/bart", "ns/op") / 1e6,
		Target: tgt("under 1 s", "<=", 1000), Command: cmd})
	r.add(Figure{Group: "build and update", Name: "update p99 (wall)", Unit: "µs", LowerIsBetter: true,
		Value: metric(bs, "Update/peergate", "p99-ns") / 1e3, Reference: "bart-persist (lock-free)", RefValue: metric(bs, "Update/bart-persist", "p99-ns") / 1e3,
		Target: tgt("under 20 µs at p99", "<=", 20), Command: cmd})
	r.add(Figure{Group: "build and update", Name: "update p99 (thread CPU)", Unit: "µs", LowerIsBetter: true,
		Value: metric(bs, "Update/peergate", "cpu-p99-ns") / 1e3, Reference: "bart-persist (lock-free)", RefValue: metric(bs, "Update/bart-persist", "cpu-p99-ns") / 1e3,
		Target: tgt("under 20 µs at p99", "<=", 20), Command: cmd})
	if b, ok := bs["Lookup4/peergate"]; ok {
		r.add(Figure{Name: "allocations per lookup", Unit: "allocs/op", LowerIsBetter: true, Value: b.Metrics["allocs/op"],
			Target: tgt("zero", "<=", 0), Command: cmd})
	}
	r.Notes = append(r.Notes, "Lookup figures are CPU time of the benchmark thread per lookup (wall time on a shared machine includes waiting for a core); 1 Mi addresses drawn with a fixed seed inside prefixes of the table.")
	return nil
}

// lpmSummary reads the peergate column of the summary the lpm benchmarks
// print at the end ("benchmark unit peergate ..."), keyed "bench unit".
func lpmSummary(out []byte) map[string]float64 {
	m := map[string]float64{}
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "benchmark" && f[1] == "unit" && f[2] == "peergate" {
			in = true
			continue
		}
		if !in || len(f) < 3 {
			continue
		}
		if v, err := strconv.ParseFloat(f[2], 64); err == nil {
			m[f[0]+" "+f[1]] = v
		}
	}
	return m
}

// rteLPM runs dpdk-test's lpm_perf_autotest and returns its average lookup
// cycles.
func rteLPM(ctx context.Context, e *Env) (float64, float64, string, error) {
	bin, err := exec.LookPath("dpdk-test")
	if err != nil {
		return 0, 0, "", fmt.Errorf("dpdk-test not installed (Debian package dpdk-dev)")
	}
	if os.Geteuid() != 0 {
		return 0, 0, "", fmt.Errorf("dpdk-test needs root")
	}
	prefix := fmt.Sprintf("pgbl%d", os.Getpid())
	args := []string{"--no-huge", "-m", "2048", "-l", "1", "--no-pci", "--log-level=lib.eal:error", "--file-prefix", prefix}
	cmd := "echo lpm_perf_autotest | " + bin + " " + shellJoin(args)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Stdin = strings.NewReader("lpm_perf_autotest\n")
	var out bytes.Buffer
	c.Stdout = io.MultiWriter(&out, e.Log)
	c.Stderr = e.Log
	fmt.Fprintf(e.Log, "$ %s\n", cmd)
	_ = c.Run() // dpdk-test exits non-zero at EOF of its prompt
	// dpdk-test's EAL leaves its runtime directory behind.
	_ = dpdk.RemoveRuntimeDir(prefix)
	m := rteLPMCycles.FindSubmatch(out.Bytes())
	if m == nil {
		return 0, 0, cmd, fmt.Errorf("no \"Average LPM Lookup\" line in dpdk-test's output")
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	var bulk float64
	if m := rteLPMBulkCycles.FindSubmatch(out.Bytes()); m != nil {
		bulk, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return v, bulk, cmd, nil
}

// --- 2. pipeline ----------------------------------------------------------

func runPipeline(ctx context.Context, e *Env, r *Result) error {
	pattern, benchtime := "Pipeline|Reference", "1s"
	if e.Quick {
		pattern, benchtime = "SmallTable|ManySources|ManyClientsReturn|Reference", "200ms"
	}
	bs, cmd, _, err := e.GoBench(ctx, "./dataplane/pipeline/", pattern, benchtime)
	r.Commands = append(r.Commands, cmd)
	if err != nil {
		return err
	}
	ref := metric(bs, "ReferenceMACSwap", "cpu-ns/pkt")
	for _, c := range []struct{ bench, name string }{
		{"PipelineVXLANNATSmallTable", "VXLAN → stateless NAT → VXLAN, small table"},
		{"PipelineVXLANNATManySources", "VXLAN → stateless NAT → VXLAN, small table, 1024 clients"},
		{"PipelineVXLANNATManyClientsReturn", "VXLAN → stateless NAT → VXLAN, small table, a server answering 1024 clients"},
		{"PipelineVXLANNATInternetTable", "VXLAN → stateless NAT → VXLAN, 1 M-route external"},
	} {
		r.add(Figure{Group: "ns per packet (CPU)", Name: c.name, Unit: "cpu-ns/pkt", LowerIsBetter: true,
			Value: metric(bs, c.bench, "cpu-ns/pkt"), Reference: "MAC swap only (same harness)", RefValue: ref,
			Target: tgt("under 40 ns per packet per core", "<=", 40), Command: cmd})
		if b, ok := bs[c.bench]; ok {
			r.add(Figure{Name: c.name + ": allocations", Unit: "allocs/pkt", LowerIsBetter: true, Value: b.Metrics["allocs/op"],
				Target: tgt("zero", "<=", 0), Command: cmd})
		}
	}
	if err := replayCases(ctx, e, r); err != nil {
		r.Notes = append(r.Notes, "replay per seed scenario failed: "+err.Error())
	}
	r.Notes = append(r.Notes, "The reference does only an Ethernet address swap in the same harness (testpmd macswap's work); VPP's published IPv4 forwarding is ~100 ns per packet per core. Every iteration restores the ~114 received bytes, bursts of 32. The 1024-client run sends each packet of a burst from another source of one stateless NAT segment (many clients of one server), toward the same destination; the server's run answers them, each packet toward another client (translated destination, a neighbour each).")
	return nil
}

// replayCase is bench/replaybench's JSON.
type replayCase struct {
	Case       string            `json:"case"`
	Pass       string            `json:"pass"`
	Pcap       string            `json:"pcap"`
	Packets    int               `json:"packets"`
	NsPerPkt   float64           `json:"ns_per_packet"`
	CPUPerPkt  float64           `json:"cpu_ns_per_packet"`
	AllocsPkt  float64           `json:"allocs_per_packet"`
	TxFraction float64           `json:"tx_fraction"`
	Drops      map[string]uint64 `json:"top_drops"`
	Error      string            `json:"error"`
}

// replayCases times the pipeline on the traffic generator's pcaps of the
// seed scenarios (bench/replaybench).
func replayCases(ctx context.Context, e *Env, r *Result) error {
	args := []string{"run", "./bench/replaybench", "-json"}
	if e.Quick {
		args = append(args, "-packets", "4096")
	}
	cmd := "go " + shellJoin(args)
	r.Commands = append(r.Commands, cmd)
	out, err := e.Run(ctx, "go", args...)
	if err != nil {
		return err
	}
	var cs []replayCase
	if err := json.Unmarshal(out, &cs); err != nil {
		return fmt.Errorf("replaybench JSON: %w", err)
	}
	maxAllocs, cases := 0.0, 0
	defer func() {
		if maxAllocs > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("replay allocations: at most %.3g per packet, i.e. about one allocation in a pass of tens of thousands of packets, counted process-wide (runtime.MemStats); a heap profile at MemProfileRate=1 of `go run ./bench/replaybench` attributed no allocation in the timed passes to the pipeline (2026-11-23), so it may be the Go runtime's own, but the target is judged on the count as measured.", maxAllocs))
		}
		if cases > 0 {
			r.add(Figure{Name: fmt.Sprintf("replay: allocations per packet (worst of %d passes)", cases), Unit: "allocs/pkt", LowerIsBetter: true, Value: maxAllocs, Target: tgt("zero", "<=", 0), Command: cmd})
		}
	}()
	for _, c := range cs {
		if c.Error != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("replay %s: %s", c.Case, c.Error))
			continue
		}
		name := c.Case + " (" + c.Pass + ")"
		r.add(Figure{Group: "replay per seed scenario (CPU ns)", Name: name, Unit: "cpu-ns/pkt", LowerIsBetter: true, Value: c.CPUPerPkt, Command: cmd})
		maxAllocs = math.Max(maxAllocs, c.AllocsPkt)
		cases++
		r.Notes = append(r.Notes, fmt.Sprintf("replay %s: %d packets of %s, %.1f%% forwarded, wall %.1f ns/pkt, top drops %v", name, c.Packets, c.Pcap, 100*c.TxFraction, c.NsPerPkt, c.Drops))
	}
	r.Notes = append(r.Notes, "Replay per seed scenario: one pass of the pcap in bursts of 32 over buffers written just before (cold in the cache, as after a NIC's DMA), after a first pass that learned the neighbours (every ARP request answered) and created the sessions: steady. Stateful cases are also timed on a fresh pipeline whose neighbours were learned from other flows: first (every flow new). The 40 ns target of issue 4 is for the stateless VXLAN benchmark above, not judged here.")
	return nil
}

// --- 3. stateful ----------------------------------------------------------

func runStateful(ctx context.Context, e *Env, r *Result) error {
	benchtime := "1s"
	if e.Quick {
		benchtime = "200ms"
	}
	ft, cmd1, _, err := e.GoBench(ctx, "./flowtable", ".", benchtime)
	r.Commands = append(r.Commands, cmd1)
	if err != nil {
		return err
	}
	nat, cmd2, _, err := e.GoBench(ctx, "./nat", ".", benchtime)
	r.Commands = append(r.Commands, cmd2)
	if err != nil {
		return err
	}
	// Thread CPU time per operation, or wall time where the benchmark did
	// not report it (a run too short for the CPU clock).
	var wall []string
	cpu := func(bs map[string]Bench, name string) float64 {
		if v := metric(bs, name, "cpu-ns/op"); v > 0 {
			return v
		}
		if v := metric(bs, name, "ns/op"); v > 0 {
			wall = append(wall, name)
			return v
		}
		return 0
	}
	defer func() {
		if len(wall) > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("wall-clock ns/op used where no cpu-ns/op was reported: %v", wall))
		}
	}()
	for _, n := range []struct {
		n, label string
		target   *Target
	}{{"1000", "1 k", nil}, {"1048576", "1 M", tgt("under 60 ns per packet at 1 M sessions", "<=", 60)}} {
		r.add(Figure{Group: "established (CPU ns)", Name: "flowtable established, " + n.label + " sessions, bursts of 32", Unit: "cpu-ns/pkt", LowerIsBetter: true,
			Value: cpu(ft, "Established/sessions="+n.n+"/burst"), Reference: "Go map lookup only", RefValue: cpu(ft, "GoMapReference/sessions="+n.n),
			Target: n.target, Command: cmd1})
		r.add(Figure{Group: "established (CPU ns)", Name: "nat.Translate established, " + n.label + " sessions", Unit: "cpu-ns/pkt", LowerIsBetter: true,
			Value: cpu(nat, "TranslateEstablished/sessions="+n.n), Reference: "Go map lookup only", RefValue: cpu(ft, "GoMapReference/sessions="+n.n),
			Command: cmd2})
	}
	perSec := func(cpuNs float64) float64 {
		if cpuNs == 0 {
			return 0
		}
		return math.Round(1e4/cpuNs) / 10
	}
	// flowtable's churn benchmarks create sessions one at a time and in
	// bursts of 32 with the buckets prefetched, as nat.Translate does.
	r.add(Figure{Group: "new sessions (M/s per core)", Name: "flowtable new sessions in churn, bursts of 32", Unit: "M sessions/s/core",
		Value: perSec(cpu(ft, "NewSessions/burst")), Target: tgt("at least 3 M new sessions per second per core", ">=", 3), Command: cmd1})
	r.add(Figure{Group: "new sessions (M/s per core)", Name: "flowtable new sessions in churn, one at a time", Unit: "M sessions/s/core",
		Value: perSec(cpu(ft, "NewSessions/single")), Command: cmd1})
	r.add(Figure{Group: "new sessions (M/s per core)", Name: "nat.Translate new sessions, bursts of 32", Unit: "M sessions/s/core",
		Value: perSec(cpu(nat, "TranslateNewSessions")), Target: tgt("at least 3 M new sessions per second per core", ">=", 3), Command: cmd2})
	r.add(Figure{Group: "bytes per session", Name: "bytes per session at 1 M", Unit: "B/session", LowerIsBetter: true,
		Value: metric(ft, "BytesPerSession/capacity=1048576", "bytes/session"), Target: tgt("under 64 bytes per session", "<=", 64), Command: cmd1})
	if b, ok := nat["TranslateEstablished/sessions=1048576"]; ok {
		r.add(Figure{Name: "allocations per packet (nat.Translate)", Unit: "allocs/pkt", LowerIsBetter: true, Value: b.Metrics["allocs/op"], Target: tgt("zero", "<=", 0), Command: cmd2})
	}
	r.Notes = append(r.Notes, "Published anchors (not measured here): rte_hash bulk lookup ~26-30 cycles per key, lookup only; VPP NAT44-ED aims at 10 Mpps per core (~100 ns per packet) with 10 M sessions.",
		"New sessions per second per core are 1 / (thread CPU time per session).")
	return nil
}

// --- 4. dpdk --------------------------------------------------------------

type dpdkRun struct {
	Name         string  `json:"name"`
	Mpps         float64 `json:"mpps"`
	CyclesPerPkt float64 `json:"cycles_per_packet"`
	Best         float64 `json:"best_mpps"`
	MppsPerCPU   float64 `json:"mpps_per_cpu_second"`
	Command      string  `json:"command"`
	// Two-core runs: their forwarding cores, the one-core run they scale
	// from and the scaling ratio (two-core Mpps / one-core Mpps).
	Workers       int     `json:"workers"`
	Cores         []int   `json:"cores"`
	OneCore       string  `json:"one_core_run"`
	Scaling       float64 `json:"scaling_ratio"`
	BestScaling   float64 `json:"best_scaling_ratio"`
	SharesMainCPU bool    `json:"shares_main_cpu"`
	// CPU-seconds per second the forwarding threads obtained, in this run
	// and in its one-core run.
	CPUs        float64 `json:"forwarding_cpus"`
	OneCoreCPUs float64 `json:"one_core_forwarding_cpus"`
}

func runDPDK(ctx context.Context, e *Env, r *Result) error {
	if os.Geteuid() != 0 {
		return skip("needs root (DPDK EAL, dpdk-testpmd)")
	}
	if _, err := exec.LookPath("dpdk-testpmd"); err != nil {
		return skip("dpdk-testpmd not installed (Debian package dpdk-dev)")
	}
	bin := filepath.Join(e.Tmp, "pgbench")
	build := []string{"build", "-tags", "dpdk", "-o", bin, "./bench/dpdk"}
	if _, err := e.Run(ctx, "go", build...); err != nil {
		return skip("bench/dpdk does not build with -tags dpdk (libdpdk-dev missing?): %v", err)
	}
	secs, rounds := "4", "3"
	if e.Quick {
		secs, rounds = "1", "1"
	}
	args := []string{"-seconds", secs, "-rounds", rounds, "-q", "-json"}
	cmd := "go build -tags dpdk -o /tmp/pgbench ./bench/dpdk && /tmp/pgbench " + shellJoin(args)
	r.Commands = append(r.Commands, cmd)
	out, err := e.Run(ctx, bin, args...)
	if err != nil {
		return err
	}
	var runs []dpdkRun
	if err := json.Unmarshal(out, &runs); err != nil {
		return fmt.Errorf("bench/dpdk JSON: %w", err)
	}
	by := map[string]dpdkRun{}
	for _, x := range runs {
		by[x.Name] = x
	}
	io, mac := by["testpmd io"], by["testpmd macswap"]
	for _, c := range []struct {
		name, ref string
		target    *Target
	}{
		{"peergate pipeline", "testpmd io", tgtRatio("at least half of testpmd io", ">=", 0.5)},
		{"peergate forward (io)", "testpmd io", nil},
		{"peergate forward (macswap)", "testpmd macswap", nil},
	} {
		ref := io
		if c.ref == "testpmd macswap" {
			ref = mac
		}
		x := by[c.name]
		r.add(Figure{Group: "Mpps (median, wall)", Name: c.name, Unit: "Mpps", Value: x.Mpps, Reference: c.ref, RefValue: ref.Mpps, Target: c.target, Command: cmd})
		r.add(Figure{Group: "Mpps per CPU-second of the forwarding thread", Name: c.name + " (per CPU-second)", Unit: "Mpps/CPU-s", Value: x.MppsPerCPU, Reference: c.ref, RefValue: ref.MppsPerCPU, Target: c.target, Command: cmd})
		r.add(Figure{Group: "cycles per packet", Name: c.name + " cycles", Unit: "cycles/pkt", LowerIsBetter: true, Value: x.CyclesPerPkt, Reference: c.ref, RefValue: ref.CyclesPerPkt, Command: cmd})
	}
	r.Notes = append(r.Notes, "Devices: net_pcap rx_pcap with infinite_rx=1 → net_null for testpmd and the forwarding runs; the pipeline run replays a VXLAN SYN-ACK of the static-NAT seed scenario through the real pipeline (bench/dpdk/README.md).")
	dpdkScaling(r, runs, cmd)
	return nil
}

// dpdkScaling adds the two-core runs: their Mpps beside testpmd io on two
// cores, and each one's scaling ratio (two-core / one-core Mpps) beside
// testpmd io's. The issue asks only that the ratio be reported.
func dpdkScaling(r *Result, runs []dpdkRun, cmd string) {
	var io2 dpdkRun
	var ours []dpdkRun
	for _, x := range runs {
		switch {
		case x.Workers < 2 || x.OneCore == "":
		case strings.HasPrefix(x.Name, "testpmd io"):
			io2 = x
		case strings.HasPrefix(x.Name, "peergate"):
			ours = append(ours, x)
		}
	}
	if io2.Name == "" && len(ours) == 0 {
		r.Notes = append(r.Notes, "Two worker cores: not measured (fewer than 2 usable CPUs).")
		return
	}
	reported := tgt("scaling ratio reported", ">", 0)
	for _, x := range ours {
		r.add(Figure{Group: "Mpps with 2 worker cores (median, wall)", Name: x.Name, Unit: "Mpps", Value: x.Mpps, Reference: io2.Name, RefValue: io2.Mpps, Command: cmd})
	}
	for _, x := range ours {
		r.add(Figure{Group: "scaling: 2-core Mpps / 1-core Mpps", Name: x.Name + " scaling", Unit: "x (2 cores / 1)", Value: round3(x.Scaling),
			Reference: io2.Name + " scaling", RefValue: round3(io2.Scaling), Target: reported, Command: cmd})
	}
	all := ours
	if io2.Name != "" {
		all = append([]dpdkRun{io2}, ours...)
	}
	r.Notes = append(r.Notes, "Scaling ratios of the best rounds: "+scalingSummary(all, func(x dpdkRun) string { return fmt.Sprintf("%.2f", x.BestScaling) })+".",
		"CPU-seconds per second the forwarding threads obtained, one core → two (Mpps / Mpps per CPU-second; on a loaded machine the wall-clock scaling follows this share): "+
			scalingSummary(all, func(x dpdkRun) string { return fmt.Sprintf("%.2f → %.2f", x.OneCoreCPUs, x.CPUs) })+".")
	cores, shared := io2.Cores, io2.SharesMainCPU
	if len(ours) > 0 {
		cores, shared = ours[0].Cores, shared || ours[0].SharesMainCPU
	}
	n := "Two worker cores: the input net_pcap port has two RX queues (one rx_pcap each), one per forwarding core; testpmd runs --nb-cores=2 --rxq=2 --txq=2, peergate's runtime 2 workers (queue q of port i goes to worker (q+i)%2)."
	if shared {
		n += fmt.Sprintf(" The forwarding cores are CPUs %v of a %d-CPU machine: CPU 0 also runs the EAL's main lcore (testpmd's stats loop, peergate's main thread and Go runtime), so the scaling ratios are lower bounds.", cores, r.Machine.Cores)
	}
	r.Notes = append(r.Notes, n)
}

func scalingSummary(runs []dpdkRun, f func(dpdkRun) string) string {
	parts := make([]string, len(runs))
	for i, x := range runs {
		parts[i] = x.Name + " " + f(x)
	}
	return strings.Join(parts, ", ")
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// --- 5. afpacket ----------------------------------------------------------

// afpacketReport is bench/afpacket's JSON.
type afpacketReport struct {
	Runs []struct {
		Name       string             `json:"name"`
		Pcap       string             `json:"pcap"`
		Mode       string             `json:"mode"`
		Sent       uint64             `json:"sent"`
		Received   uint64             `json:"received"`
		Explained  uint64             `json:"dropped_with_reason"`
		Reasons    map[string]uint64  `json:"reasons,omitempty"`
		Lost       int64              `json:"unexplained_loss"`
		Background uint64             `json:"background"`
		Mpps       float64            `json:"mpps"`
		Offered    float64            `json:"offered_mpps"`
		Latency    map[string]float64 `json:"latency_us,omitempty"`
	} `json:"runs"`
	Failures []string `json:"failures,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

func runAFPacket(ctx context.Context, e *Env, r *Result) error {
	if os.Geteuid() != 0 {
		return skip("needs root (network namespaces, veths, DPDK EAL)")
	}
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		return skip("tcpreplay not installed (Debian package tcpreplay)")
	}
	bin := filepath.Join(e.Tmp, "pgafpacket")
	if _, err := e.Run(ctx, "go", "build", "-tags", "dpdk", "-o", bin, "./bench/afpacket"); err != nil {
		return skip("bench/afpacket does not build with -tags dpdk (libdpdk-dev missing?): %v", err)
	}
	args := []string{"-json"}
	if e.Quick {
		args = append(args, "-quick")
	}
	cmd := "go build -tags dpdk -o /tmp/pgafpacket ./bench/afpacket && /tmp/pgafpacket " + shellJoin(args)
	r.Commands = append(r.Commands, cmd)
	out, runErr := e.Run(ctx, bin, args...)
	var rep afpacketReport
	if err := json.Unmarshal(out, &rep); err != nil {
		if runErr != nil {
			return runErr
		}
		return fmt.Errorf("bench/afpacket JSON: %w", err)
	}
	r.Notes = append(r.Notes, rep.Notes...)
	type key struct{ pcap, mode string }
	ref, refName := map[key]float64{}, map[key]string{}
	for _, x := range rep.Runs {
		k := key{x.Pcap, x.Mode}
		if strings.HasPrefix(x.Name, "linux") && x.Mpps > ref[k] {
			ref[k], refName[k] = x.Mpps, x.Name
		}
	}
	var linuxLat map[string]float64
	linuxLatName := ""
	for _, x := range rep.Runs {
		if x.Mode == "latency" && strings.HasPrefix(x.Name, "linux") {
			linuxLat, linuxLatName = x.Latency, x.Name
		}
	}
	for _, x := range rep.Runs {
		if x.Mode == "latency" {
			if strings.HasPrefix(x.Name, "linux") {
				continue
			}
			for _, q := range []string{"p50", "p90", "p99"} {
				r.add(Figure{Group: "one-way latency through the path", Name: "latency " + q, Unit: "µs", LowerIsBetter: true,
					Value: x.Latency[q], Reference: linuxLatName, RefValue: linuxLat[q], Command: cmd})
			}
			r.Notes = append(r.Notes, fmt.Sprintf("latency probes: peergate %d of %d arrived (max %.0f µs); %s max %.0f µs", x.Received, x.Sent, x.Latency["max"], linuxLatName, linuxLat["max"]))
			continue
		}
		k := key{x.Pcap, x.Mode}
		label := fmt.Sprintf("%s, %s, %s", x.Name, x.Pcap, x.Mode)
		if !strings.HasPrefix(x.Name, "linux") {
			f := Figure{Group: "Mpps received (" + x.Mode + ")", Name: x.Pcap + ", " + x.Mode, Unit: "Mpps", Value: x.Mpps, Command: cmd}
			if ref[k] > 0 {
				f.Reference, f.RefValue = refName[k], ref[k]
			}
			r.add(f)
			r.Figures = append(r.Figures, Figure{Name: label + ": unexplained loss", Unit: "packets", LowerIsBetter: true,
				Value: float64(x.Lost), Target: tgt("every packet received or dropped with a reason (paced runs)", "<=", 0), Command: cmd})
			if x.Mode != "paced" {
				r.Figures[len(r.Figures)-1].Target = nil
			}
		}
		loss := 0.0
		if x.Sent > 0 {
			loss = 100 * float64(x.Sent-min(x.Sent, x.Received)) / float64(x.Sent)
		}
		r.Figures = append(r.Figures, Figure{Name: label + ": loss", Unit: "% of sent", LowerIsBetter: true, Value: math.Round(loss*1000) / 1000, Command: cmd})
		if x.Mode == "topspeed" && x.Sent > 0 && x.Received == x.Sent {
			r.Notes = append(r.Notes, fmt.Sprintf("%s carried everything tcpreplay offered (%.3f Mpps): the sender, one tcpreplay process, set this rate, not the path; the path's own limit is higher and not measured by this run.", label, x.Offered))
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%s: sent %d (%.3f Mpps offered), received %d, dropped with a reason %d%s, other traffic the gateway dropped %d, unexplained %d",
			label, x.Sent, x.Offered, x.Received, x.Explained, reasons(x.Reasons), x.Background, x.Lost))
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("af_packet replay: %s", strings.Join(rep.Failures, "; "))
	}
	return runErr
}

func reasons(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, "; ") + ")"
}

// --- 6. controlplane ------------------------------------------------------

var (
	// Durations as time.Duration prints them: "1m4.991s" is one.
	reFullLive   = regexp.MustCompile(`prefixes live in the dataplane agent: ((?:[0-9.]+[a-zµ]+)+)`)
	reUpToLive   = regexp.MustCompile(`session up -> full table live: ((?:[0-9.]+[a-zµ]+)+)`)
	reBytesRoute = regexp.MustCompile(`: ([0-9.]+) bytes per route beyond the empty process`)
	reHeldRoute  = regexp.MustCompile(`held by the controlplane beyond gobgp's RIB: (-?[0-9.]+) bytes per route`)
	reFullUpdate = regexp.MustCompile(`one update -> live in the dataplane agent[^\n]*?: p50 ((?:[0-9.]+[a-zµ]+)+), p90 ((?:[0-9.]+[a-zµ]+)+), p99 ((?:[0-9.]+[a-zµ]+)+)`)
	reUpdate     = regexp.MustCompile(`BGP update -> route live in the dataplane agent[^\n]*?: p50 ((?:[0-9.]+[a-zµ]+)+), p90 ((?:[0-9.]+[a-zµ]+)+), p99 ((?:[0-9.]+[a-zµ]+)+)`)
	reAlone      = regexp.MustCompile(`gobgp alone [^\n]*?: all [0-9]+ prefixes received ((?:[0-9.]+[a-zµ]+)+) after enabling the session`)
	reConnect    = regexp.MustCompile(`a dataplane connecting with the full table held: [^\n]*?received after ((?:[0-9.]+[a-zµ]+)+), its lookup snapshot built ((?:[0-9.]+[a-zµ]+)+) later`)
)

func ms(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return float64(d.Microseconds()) / 1000
}

func runControlplane(ctx context.Context, e *Env, r *Result) error {
	// Apply to live: 1 M learned routes compiled and pushed to an agent.
	benchtime := "3x"
	if e.Quick {
		benchtime = "1x"
	}
	bs, cmd, _, err := e.GoBench(ctx, "./test/integration/controlplane", "LearnedRoutesToDataplane", benchtime, "-timeout", "20m")
	r.Commands = append(r.Commands, cmd)
	if err == nil {
		b := bs["LearnedRoutesToDataplane/routes=1000000"]
		f := Figure{Group: "apply to live", Name: "1 M learned routes: compile + push to a dataplane agent (mean)", Unit: "ms", LowerIsBetter: true,
			Value: math.Round(b.Metrics["ns/op"] / 1e6), Command: cmd}
		if run, ok := bs["LearnedRoutesToDataplane/routes=1000000,gc=running"]; ok {
			// The binary pauses the collector while such a batch compiles
			// (internal/gcpause); the same benchmark without the pause.
			f.Reference, f.RefValue = "the same with the collector running", math.Round(run.Metrics["ns/op"]/1e6)
		}
		r.add(f)
		r.add(Figure{Group: "apply to live", Name: "  of which compile (last iteration)", Unit: "ms", LowerIsBetter: true, Value: b.Metrics["compile-ms"], Command: cmd})
		r.add(Figure{Group: "apply to live", Name: "  of which push (last iteration)", Unit: "ms", LowerIsBetter: true, Value: b.Metrics["push-ms"], Command: cmd})
	} else {
		r.Notes = append(r.Notes, "apply-to-live benchmark failed: "+err.Error())
	}

	// One BGP update to live, small tables (two gobgp peers).
	args := []string{"test", "-count", "1", "-v", "-run", "Gobgp", "./test/integration/bgp"}
	cmd = "go " + shellJoin(args)
	r.Commands = append(r.Commands, cmd)
	out, err := e.Run(ctx, "go", args...)
	if m := reUpdate.FindSubmatch(out); m != nil {
		r.add(Figure{Group: "BGP update to live (ms)", Name: "one BGP update → live, use case 4 tables, p50", Unit: "ms", LowerIsBetter: true, Value: ms(string(m[1])), Command: cmd})
		r.add(Figure{Group: "BGP update to live (ms)", Name: "one BGP update → live, use case 4 tables, p99", Unit: "ms", LowerIsBetter: true, Value: ms(string(m[3])),
			Target: tgt("under 50 ms at p99", "<=", 50), Command: cmd})
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("BGP single-update figure not found in the test's output (%v)", err))
	}
	if e.Quick {
		return nil
	}
	// Full table from BIRD.
	args = []string{"test", "-count", "1", "-v", "-timeout", "30m", "-run", "FullInternetTable", "./test/integration/bgp"}
	cmd = "go " + shellJoin(args)
	r.Commands = append(r.Commands, cmd)
	out, err = e.Run(ctx, "go", args...)
	if m := reUpToLive.FindSubmatch(out); m != nil {
		r.add(Figure{Group: "BGP full table", Name: "full table (BIRD, ~1.06 M prefixes): session up → live", Unit: "s", LowerIsBetter: true,
			Value: ms(string(m[1])) / 1000, Target: tgt("under 10 s", "<=", 10), Command: cmd})
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("BGP full-table figure (from session up) not found in the test's output (%v)", err))
	}
	if m := reFullLive.FindSubmatch(out); m != nil {
		// Before 2026-12-06 this one was reported as "session up → live":
		// it adds the session's establishment (BIRD connecting, 1-2 s).
		f := Figure{Group: "BGP full table", Name: "full table: session enabled on BIRD → live", Unit: "s", LowerIsBetter: true,
			Value: ms(string(m[1])) / 1000, Command: cmd}
		if a := reAlone.FindSubmatch(out); a != nil {
			// The machine's own pace in the same run: gobgp alone, the
			// same session and table, nothing compiled or pushed.
			f.Reference, f.RefValue = "gobgp alone: session enabled → all prefixes received", ms(string(a[1]))/1000
		}
		r.add(f)
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("BGP full-table figure not found in the test's output (%v)", err))
	}
	if m := reBytesRoute.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		r.add(Figure{Group: "BGP full table memory", Name: "controlplane RSS per route (gobgp's RIB included)", Unit: "B/route", LowerIsBetter: true,
			Value: v, Command: cmd})
		r.Notes = append(r.Notes, "The RSS per route figure is the whole controlplane's RSS growth, gobgp's adj-rib-in and RIB included, plus garbage and the collector's headroom (GOGC=100): not judged. The target is judged on the live heap (HeapAlloc after two collections, read through the controlplane's --pprof) beyond what gobgp alone holds for the same table in a child process, same session and import policy.")
	}
	if m := reHeldRoute.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		r.add(Figure{Group: "BGP full table memory", Name: "controlplane live heap per route beyond gobgp's RIB", Unit: "B/route", LowerIsBetter: true,
			Value: v, Target: tgt("under 200 bytes per route beyond gobgp's own RIB", "<=", 200), Command: cmd})
	} else {
		r.Notes = append(r.Notes, "BGP full-table live-heap figure not found in the test's output")
	}
	r.Notes = append(r.Notes, "\"Live\" is when the in-process dataplane agent of the BGP tests has the generation in its lookup snapshot: it builds a dataplane/fib snapshot from complete tables and applies each delta to it (fib ApplyDelta), as cmd/dataplane does, without the ports.")
	if m := reFullUpdate.FindSubmatch(out); m != nil {
		r.add(Figure{Group: "BGP update to live (ms)", Name: "one BGP update → live with the full table held, p50", Unit: "ms", LowerIsBetter: true, Value: ms(string(m[1])), Command: cmd})
		r.add(Figure{Group: "BGP update to live (ms)", Name: "one BGP update → live with the full table held, p99 (of 30)", Unit: "ms", LowerIsBetter: true, Value: ms(string(m[3])),
			Target: tgt("under 50 ms at p99", "<=", 50), Command: cmd})
	} else {
		r.Notes = append(r.Notes, "BGP full-table single-update figure not found in the test's output")
	}
	if m := reConnect.FindSubmatch(out); m != nil {
		r.add(Figure{Group: "BGP full table", Name: "a dataplane connecting with the full table held: connect → lookup snapshot live", Unit: "s", LowerIsBetter: true,
			Value: (ms(string(m[1])) + ms(string(m[2]))) / 1000, Command: cmd})
	}
	return nil
}
