package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/pipeline"
	"github.com/peergate/peergate/dataplane/runtime"
)

type bench struct {
	pcap    string
	dur     time.Duration
	core    int
	testpmd string
	quiet   bool
	log     *slog.Logger
	runs    int
	// skipTestpmd leaves testpmd out (profiling peergate alone).
	skipTestpmd bool
	// cores2 are the CPUs of the two-worker runs (nil: one core only).
	cores2 []int
}

// ealArgs are the EAL arguments of this process and of a one-core testpmd:
// the main lcore on CPU 0, the forwarding lcore on b.core.
func (b *bench) ealArgs(prefix string) []string {
	args := []string{"-l", fmt.Sprintf("0,%d", b.core)}
	if b.core == 0 {
		args = []string{"-l", "0"}
	}
	return append(args, dpdk.NoHugeArgs(prefix, 1024)...)
}

// testpmdLcores maps testpmd's lcores to CPUs: the main lcore 0 on CPU 0 and
// one forwarding lcore per core (lcore i+1 on cores[i]), so that two
// forwarding lcores fit on a machine whose CPUs are fewer than three.
func testpmdLcores(cores []int) string {
	parts := []string{"0@0"}
	for i, c := range cores {
		parts = append(parts, fmt.Sprintf("%d@%d", i+1, c))
	}
	return strings.Join(parts, ",")
}

// rxPcaps is a net_pcap argument with n receive queues replaying path.
func rxPcaps(path string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "rx_pcap=" + path
	}
	return strings.Join(parts, ",")
}

// run measures every configuration rounds times, interleaved so that a
// busy neighbour on the machine hurts them alike, and reports medians. With
// b.cores2 it also measures testpmd io, peergate's forward (io) and its
// pipeline with two forwarding cores, each polling one of the input port's
// two RX queues, and reports their scaling ratio (two-core / one-core Mpps).
func (b *bench) run(pl *pipelineRun, rounds int) ([]result, error) {
	eal := append(b.ealArgs(fmt.Sprintf("pgbench%d", os.Getpid())), "--log-level=lib.eal:error")
	if err := dpdk.Init(eal); err != nil {
		return nil, err
	}
	defer dpdk.Cleanup()
	hz := float64(dpdk.TSCHz())
	cmd := "go run -tags dpdk ./bench/dpdk (EAL " + strings.Join(eal, " ") + ")"
	type config struct {
		name    string
		testpmd string // forward mode, or "" for peergate
		proc    runtime.NewProcessor
		in, out uint16
		pl      *pipelineRun
		cores   []int
		// ref is the testpmd io run with as many cores (the ratio's
		// denominator); base the one-core run of a two-core one.
		ref, base int
	}
	one := []int{b.core}
	fwd := func(macswap bool) runtime.NewProcessor {
		return func(int, pipeline.Allocator) runtime.Processor { return runtime.NewForward(macswap, [2]uint16{0, 1}) }
	}
	configs := []config{
		{name: "testpmd io", testpmd: "io", cores: one, base: -1},
		{name: "peergate forward (io)", proc: fwd(false), out: 1, cores: one, base: -1},
		{name: "testpmd macswap", testpmd: "macswap", cores: one, base: -1},
		{name: "peergate forward (macswap)", proc: fwd(true), out: 1, cores: one, base: -1},
	}
	plIdx := -1
	if pl != nil {
		plIdx = len(configs)
		configs = append(configs, config{name: "peergate pipeline", in: pl.in, out: pl.out, pl: pl, cores: one, base: -1})
	}
	if len(b.cores2) == 2 {
		ref2 := len(configs)
		configs = append(configs,
			config{name: "testpmd io (2 cores)", testpmd: "io", cores: b.cores2, ref: ref2, base: 0},
			config{name: "peergate forward (io, 2 workers)", proc: fwd(false), out: 1, cores: b.cores2, ref: ref2, base: 1})
		if pl != nil {
			configs = append(configs, config{name: "peergate pipeline (2 workers)", in: pl.in, out: pl.out, pl: pl,
				cores: b.cores2, ref: ref2, base: plIdx})
		}
	}
	samples := make([][]float64, len(configs))
	perCPU := make([][]float64, len(configs))
	res := make([]result, len(configs))
	for round := 0; round < rounds; round++ {
		for i, c := range configs {
			if c.testpmd != "" && b.skipTestpmd {
				samples[i] = append(samples[i], 1)
				perCPU[i] = append(perCPU[i], 1)
				res[i] = result{Name: c.name + " (skipped)"}
				continue
			}
			var mpps sample
			var err error
			if c.testpmd != "" {
				mpps, res[i].Command, err = b.runTestpmd(c.testpmd, c.cores)
			} else {
				workers := ""
				if len(c.cores) > 1 {
					workers = fmt.Sprintf(" -workers %d", len(c.cores))
				}
				if c.pl != nil {
					mpps, err = b.runPipeline(c.pl, c.cores)
					res[i].Command = cmd + workers + " -tables " + c.pl.tables
				} else {
					mpps, err = b.runOurs(c.proc, c.in, c.out, c.cores)
					res[i].Command = cmd + workers
				}
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			if res[i].Name == "" {
				res[i].Name = c.name
			}
			samples[i] = append(samples[i], mpps.mpps)
			perCPU[i] = append(perCPU[i], mpps.perCPU)
			b.log.Debug("sample", "run", c.name, "round", round, "mpps", mpps.mpps, "mpps_per_cpu_second", mpps.perCPU)
		}
	}
	for i := range res {
		res[i].Workers = len(configs[i].cores)
		res[i].Cores = configs[i].cores
		res[i].Mpps = median(samples[i])
		res[i].Samples = samples[i]
		res[i].MppsPerCPU = median(perCPU[i])
		for _, v := range samples[i] {
			res[i].Best = max(res[i].Best, v)
		}
	}
	for i := range res {
		ref := res[configs[i].ref]
		res[i].Ratio = res[i].Mpps / ref.Mpps
		res[i].BestRatio = res[i].Best / ref.Best
		if ref.MppsPerCPU > 0 {
			res[i].RatioPerCPU = res[i].MppsPerCPU / ref.MppsPerCPU
		}
		if res[i].MppsPerCPU > 0 {
			res[i].CPUs = res[i].Mpps / res[i].MppsPerCPU
		}
		if hz > 0 && res[i].MppsPerCPU > 0 {
			res[i].CyclesPerPkt = hz / (res[i].MppsPerCPU * 1e6)
		}
		if j := configs[i].base; j >= 0 && res[j].Mpps > 0 {
			res[i].OneCore = res[j].Name
			res[i].Scaling = res[i].Mpps / res[j].Mpps
			res[i].BestScaling = res[i].Best / res[j].Best
			res[i].SharesMainCPU = slices.Contains(configs[i].cores, 0)
			if res[j].MppsPerCPU > 0 {
				res[i].OneCoreCPUs = res[j].Mpps / res[j].MppsPerCPU
			}
		}
	}
	return res, nil
}

var (
	ppsRE     = regexp.MustCompile(`Tx-pps:\s+(\d+)`)
	txTotalRE = regexp.MustCompile(`TX-packets:\s+(\d+)`)
)

// runTestpmd runs testpmd for warm-up + dur and returns the median of the
// null port's per-second Tx-pps samples after the first. With several
// cores, each port has one RX and TX queue per core (net_pcap one rx_pcap
// per queue) and testpmd gives every forwarding lcore one queue of each port.
func (b *bench) runTestpmd(mode string, cores []int) (sample, string, error) {
	prefix := fmt.Sprintf("pgbenchtp%d", os.Getpid())
	args := b.ealArgs(prefix)
	if len(cores) > 1 {
		args = append([]string{"--lcores", testpmdLcores(cores)}, dpdk.NoHugeArgs(prefix, 1024)...)
	}
	n := len(cores)
	args = append(args,
		"--vdev", "net_pcap0,"+rxPcaps(b.pcap, n)+",infinite_rx=1", "--vdev", "net_null0,no-rx=1",
		"--", "--forward-mode="+mode, "--stats-period=1", "--total-num-mbufs=16384", fmt.Sprintf("--nb-cores=%d", n))
	if n > 1 {
		args = append(args, fmt.Sprintf("--rxq=%d", n), fmt.Sprintf("--txq=%d", n))
	}
	cmd := exec.Command(b.testpmd, args...)
	command := b.testpmd + " " + strings.Join(args, " ")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, command, err
	}
	cmd.Stderr = os.Stderr
	if b.quiet {
		cmd.Stderr = io.Discard
	}
	if err := cmd.Start(); err != nil {
		return sample{}, command, fmt.Errorf("start %s (Debian package dpdk-dev): %w", b.testpmd, err)
	}
	// testpmd's EAL leaves its runtime directory behind; removed once it
	// has exited (every return below waits for it).
	defer func() { _ = dpdk.RemoveRuntimeDir(prefix) }()
	// Each stats block lists port 0 (pcap) then port 1 (null); the null
	// port's Tx-pps is every second sample.
	samples := make(chan float64, 64)
	var totalTx float64 // from the summary testpmd prints at exit
	go func() {
		sc := bufio.NewScanner(stdout)
		port := -1
		summary := false
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Accumulated forward statistics for all ports") {
				summary = true
			}
			if m := txTotalRE.FindStringSubmatch(line); m != nil && summary {
				totalTx, _ = strconv.ParseFloat(m[1], 64)
				summary = false
			}
			if i := strings.Index(line, "NIC statistics for port "); i >= 0 {
				port, _ = strconv.Atoi(strings.Fields(line[i+len("NIC statistics for port "):])[0])
			}
			if m := ppsRE.FindStringSubmatch(line); m != nil && port == 1 {
				v, _ := strconv.ParseFloat(m[1], 64)
				samples <- v
			}
		}
		close(samples)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), b.dur+30*time.Second)
	defer cancel()
	var got []float64
	var cpu time.Duration
	var tids []int
	want := int(b.dur/time.Second) + 2
	for len(got) < want {
		if len(tids) < len(cores) && len(got) > 0 {
			tids, _ = threadsByName(cmd.Process.Pid, "rte-worker")
		}
		select {
		case v, ok := <-samples:
			if !ok {
				_ = cmd.Wait()
				return sample{}, command, fmt.Errorf("testpmd %s ended after %d samples: %s", mode, len(got), command)
			}
			got = append(got, v)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return sample{}, command, fmt.Errorf("testpmd %s: no stats in time: %s", mode, command)
		}
	}
	// The forwarding threads' CPU time over their whole life, read just
	// before testpmd stops them, against all packets they forwarded.
	for _, tid := range tids {
		c, _ := threadCPU(cmd.Process.Pid, tid)
		cpu += c
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		for range samples {
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	// The first samples include start-up.
	sm := sample{mpps: median(got[2:]) / 1e6}
	if cpu > 0 && totalTx > 0 {
		sm.perCPU = totalTx / cpu.Seconds() / 1e6
	}
	return sm, command, nil
}

// sample is one run: Mpps over wall time, and over the forwarding thread's
// CPU time (0 when unknown).
type sample struct{ mpps, perCPU float64 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// runOurs runs the runtime with one worker per core and returns the null
// port's packets per second over dur after one second of warm-up. The
// input port has one RX queue per worker (the runtime asks for as many as
// it has workers; net_pcap has one per rx_pcap).
func (b *bench) runOurs(np runtime.NewProcessor, in, out uint16, cores []int) (sample, error) {
	b.runs++
	return b.measure(np, cores, []runtime.PortConfig{
		{ID: in, Name: "pcap", Device: fmt.Sprintf("net_pcap_b%d,%s,infinite_rx=1", b.runs, rxPcaps(b.pcap, len(cores)))},
		{ID: out, Name: "null", Device: fmt.Sprintf("net_null_b%d,no-rx=1", b.runs)},
	})
}

// runPipeline runs the real pipeline: the stream on the input port, and on
// the output port a pcap port that receives the priming packets once (the
// host's ARP, so its neighbour is known) and drops what it transmits like
// net_null. With several workers every queue of both ports replays its
// file, so each worker learns the neighbour itself and has its own TX queue.
func (b *bench) runPipeline(pl *pipelineRun, cores []int) (sample, error) {
	b.runs++
	np, p, err := pipelineProcessor(pl.tables)
	if err != nil {
		return sample{}, err
	}
	mpps, err := b.measure(np, cores, []runtime.PortConfig{
		{ID: pl.in, Name: "in", Device: fmt.Sprintf("net_pcap_b%d,%s,infinite_rx=1", b.runs, rxPcaps(pl.stream, len(cores)))},
		{ID: pl.out, Name: "out", Device: fmt.Sprintf("net_pcap_o%d,%s", b.runs, rxPcaps(pl.prime, len(cores)))},
	})
	c := p.Counters()
	b.log.Info("pipeline counters", "drops", c.DropsByName(), "events", c.EventsByName())
	return mpps, err
}

func (b *bench) measure(np runtime.NewProcessor, cores []int, ports []runtime.PortConfig) (sample, error) {
	cfg := runtime.Config{Workers: len(cores), Cores: cores, IdleSleep: -1, Logger: b.log, Ports: ports}
	r, err := runtime.New(cfg, np)
	if err != nil {
		return sample{}, err
	}
	defer r.Close()
	if err := r.Start(); err != nil {
		return sample{}, err
	}
	time.Sleep(time.Second)
	s0, err := r.Stats()
	if err != nil {
		return sample{}, err
	}
	pid, tids := os.Getpid(), r.WorkerThreads()
	c0 := threadsCPU(pid, tids)
	t0 := time.Now()
	time.Sleep(b.dur)
	s1, err := r.Stats()
	el := time.Since(t0)
	c1 := threadsCPU(pid, tids)
	if err != nil {
		return sample{}, err
	}
	r.Stop()
	b.log.Info("worker counters", "counters", fmt.Sprintf("%+v", s1.Total), "workers", fmt.Sprintf("%+v", s1.Workers))
	pkts := float64(s1.Total.TxPackets - s0.Total.TxPackets)
	sm := sample{mpps: pkts / el.Seconds() / 1e6}
	if c1 > c0 {
		sm.perCPU = pkts / (c1 - c0).Seconds() / 1e6
	}
	return sm, nil
}

// threadsCPU sums the CPU time of threads tids of pid.
func threadsCPU(pid int, tids []int) time.Duration {
	var sum time.Duration
	for _, tid := range tids {
		c, _ := threadCPU(pid, tid)
		sum += c
	}
	return sum
}
