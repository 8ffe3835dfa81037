// Command dpdk compares peergate's DPDK runtime with dpdk-testpmd on the
// same devices in one run: a net_pcap port replaying a pcap forever
// (infinite_rx=1) into a net_null port, one forwarding core each, first
// testpmd (--forward-mode=io, then macswap) as a separate process, then
// peergate's runtime in this process with the equivalent processor (and,
// with -tables, the real pipeline). It prints Mpps, the ratio to testpmd and
// cycles per packet. With -workers 2 (the default, when two CPUs are
// usable) it also runs testpmd io, peergate's forward (io) and the pipeline
// with two forwarding cores, each polling one of the input port's two RX
// queues, and prints each one's scaling ratio (two-core / one-core Mpps).
//
//	go run -tags dpdk ./bench/dpdk -seconds 5
//
// Without hugepages it uses --no-huge -m 1024 --no-pci for both; it needs
// root only where the EAL does. The pcap is generated (VXLAN, -inner bytes
// of inner frame) unless -pcap is given.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

type result struct {
	Name         string    `json:"name"`
	Mpps         float64   `json:"mpps"`
	Ratio        float64   `json:"ratio_to_testpmd_io,omitempty"`
	CyclesPerPkt float64   `json:"cycles_per_packet,omitempty"`
	Best         float64   `json:"best_mpps"`
	BestRatio    float64   `json:"best_ratio_to_testpmd_io"`
	MppsPerCPU   float64   `json:"mpps_per_cpu_second"`
	RatioPerCPU  float64   `json:"ratio_per_cpu_second,omitempty"`
	Command      string    `json:"command"`
	Samples      []float64 `json:"samples_mpps"`
	// Workers forwarding cores (testpmd lcores or peergate workers) on
	// the CPUs Cores; the ratios are to testpmd io with as many cores.
	Workers int   `json:"workers"`
	Cores   []int `json:"cores"`
	// A two-core run's scaling ratio: its Mpps over OneCore's (medians),
	// and of the best rounds. SharesMainCPU: one of its forwarding cores
	// is CPU 0, which also runs the EAL's main lcore (the ratio is then a
	// lower bound).
	OneCore       string  `json:"one_core_run,omitempty"`
	Scaling       float64 `json:"scaling_ratio,omitempty"`
	BestScaling   float64 `json:"best_scaling_ratio,omitempty"`
	SharesMainCPU bool    `json:"shares_main_cpu,omitempty"`
	// CPUs is the CPU time the forwarding threads obtained per second
	// (Mpps / Mpps per CPU-second): below Workers, other load on the
	// machine took the rest, and the wall-clock figures show the share.
	CPUs        float64 `json:"forwarding_cpus,omitempty"`
	OneCoreCPUs float64 `json:"one_core_forwarding_cpus,omitempty"`
}

func main() {
	seconds := flag.Float64("seconds", 5, "measuring time per run (after 1 s of warm-up)")
	pcap := flag.String("pcap", "", "pcap to replay (default: generated VXLAN packets)")
	inner := flag.Int("inner", 60, "inner Ethernet frame size of the generated VXLAN packets (without FCS)")
	count := flag.Int("packets", 1024, "packets in the generated pcap")
	clientMACs := flag.Bool("client-macs", false, "in the pipeline's stream, give each of its 200 inner sources its own MAC, as separate hosts have (default: one MAC, as behind a router)")
	core := flag.Int("core", 1, "CPU of the forwarding core (testpmd's lcore and peergate's worker)")
	workers := flag.Int("workers", 2, "2: also measure testpmd io, peergate forward (io) and the pipeline with two forwarding cores and report the scaling ratio (skipped when fewer than 2 CPUs are usable); 1: one core only")
	testpmd := flag.String("testpmd", "dpdk-testpmd", "testpmd binary")
	tables := flag.String("tables", "testdata/compiled/peering-api-1-static-nat.json", "compiled tables (JSON) for the run through the real pipeline; empty: skip it")
	scenario := flag.String("scenario", "testdata/pcap/peering-api-1-static-nat", "replay scenario whose in-fabric.pcap packet 3 (VXLAN SYN-ACK through the stateless peering) is the template of the pipeline's stream, and whose in-vpc2.pcap primes the neighbour of the output port")
	inPort := flag.Uint("in-port", 0, "with -tables: the tables' port id of the input port")
	outPort := flag.Uint("out-port", 1, "with -tables: the tables' port id of the output port")
	rounds := flag.Int("rounds", 3, "interleaved rounds; medians are reported")
	asJSON := flag.Bool("json", false, "print JSON")
	quiet := flag.Bool("q", false, "hide the EAL's and testpmd's logs")
	only := flag.Bool("peergate-only", false, "skip testpmd (profiling)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the peergate runs")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	if *pcap == "" {
		dir, err := os.MkdirTemp("", "pgbench")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		*pcap = filepath.Join(dir, "vxlan.pcap")
		if err := writeVXLANPcap(*pcap, *count, *inner); err != nil {
			fail(err)
		}
	}
	b := bench{pcap: *pcap, dur: time.Duration(*seconds * float64(time.Second)), core: *core,
		testpmd: *testpmd, quiet: *quiet, log: log, skipTestpmd: *only}
	var notes []string
	if *workers >= 2 {
		cpus, err := usableCPUs()
		if err != nil {
			fail(err)
		}
		var shared bool
		b.cores2, shared = twoCores(*core, cpus)
		switch {
		case b.cores2 == nil:
			notes = append(notes, fmt.Sprintf("two-core runs skipped: %d usable CPU(s) %v", len(cpus), cpus))
		case shared:
			notes = append(notes, fmt.Sprintf("two-core runs on CPUs %v of %d: CPU 0 also runs the EAL's main lcore (testpmd's stats loop; this process's main thread and Go runtime), so the scaling ratio is a lower bound", b.cores2, len(cpus)))
		}
	}
	var pl *pipelineRun
	if *tables != "" {
		dir, err := os.MkdirTemp("", "pgbenchpl")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		pl = &pipelineRun{tables: *tables, in: uint16(*inPort), out: uint16(*outPort),
			stream: filepath.Join(dir, "stream.pcap"), prime: filepath.Join(*scenario, "in-vpc2.pcap")}
		if err := writeScenarioStream(pl.stream, filepath.Join(*scenario, "in-fabric.pcap"), 2, *count, *clientMACs); err != nil {
			fail(err)
		}
	}
	res, err := b.run(pl, *rounds)
	if err != nil {
		fail(err)
	}
	pprof.StopCPUProfile()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		for _, n := range notes {
			fmt.Fprintln(os.Stderr, "bench/dpdk:", n)
		}
		return
	}
	fmt.Printf("%-34s %8s %8s %8s %8s %10s %9s %10s   %s\n", "run", "Mpps", "ratio", "best", "ratio", "Mpps/CPU", "ratio/CPU", "cycles/pkt", "samples (Mpps)")
	for _, r := range res {
		fmt.Printf("%-34s %8.2f %8.3f %8.2f %8.3f %10.2f %9.3f %10.1f   %.2f\n", r.Name, r.Mpps, r.Ratio, r.Best, r.BestRatio, r.MppsPerCPU, r.RatioPerCPU, r.CyclesPerPkt, r.Samples)
	}
	fmt.Println("# Mpps: median of the rounds over wall time; best: the fastest round (least disturbed by other load on the machine).")
	fmt.Println("# Mpps/CPU: packets per second of the forwarding thread's own CPU time; cycles/pkt = TSC Hz / that.")
	if len(b.cores2) == 2 {
		fmt.Println("# 2 cores/workers: two RX queues on the input port (net_pcap, one rx_pcap each), one per forwarding core; ratios are to testpmd io (2 cores).")
		fmt.Printf("%-34s %8s %8s %13s   %s\n", "# scaling (2-core / 1-core Mpps)", "median", "best", "CPUs 1 -> 2", "1-core run")
		for _, r := range res {
			if r.OneCore != "" {
				fmt.Printf("%-34s %8.3f %8.3f %6.2f -> %4.2f   %s\n", "# "+r.Name, r.Scaling, r.BestScaling, r.OneCoreCPUs, r.CPUs, r.OneCore)
			}
		}
		fmt.Println("# CPUs: CPU-seconds per second the forwarding threads obtained (Mpps / Mpps per CPU-second); with other load on the machine the wall-clock ratio follows that share.")
	}
	for _, n := range notes {
		fmt.Println("# " + n)
	}
	for _, r := range res {
		fmt.Printf("# %s: %s\n", r.Name, r.Command)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/dpdk:", err)
	os.Exit(1)
}

func logLevel() slog.Level {
	if os.Getenv("PEERGATE_BENCH_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
