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
}

func (b *bench) ealArgs(prefix string) []string {
	args := []string{"-l", fmt.Sprintf("0,%d", b.core)}
	if b.core == 0 {
		args = []string{"-l", "0"}
	}
	return append(args, dpdk.NoHugeArgs(prefix, 1024)...)
}

// run measures every configuration rounds times, interleaved so that a
// busy neighbour on the machine hurts them alike, and reports medians.
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
	}
	configs := []config{
		{name: "testpmd io", testpmd: "io"},
		{name: "peergate forward (io)", proc: func(int, pipeline.Allocator) runtime.Processor { return runtime.NewForward(false, [2]uint16{0, 1}) }, out: 1},
		{name: "testpmd macswap", testpmd: "macswap"},
		{name: "peergate forward (macswap)", proc: func(int, pipeline.Allocator) runtime.Processor { return runtime.NewForward(true, [2]uint16{0, 1}) }, out: 1},
	}
	if pl != nil {
		configs = append(configs, config{name: "peergate pipeline", in: pl.in, out: pl.out, pl: pl})
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
				mpps, res[i].Command, err = b.runTestpmd(c.testpmd)
			} else {
				if c.pl != nil {
					mpps, err = b.runPipeline(c.pl)
					res[i].Command = cmd + " -tables " + c.pl.tables
				} else {
					mpps, err = b.runOurs(c.proc, c.in, c.out)
					res[i].Command = cmd
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
		res[i].Mpps = median(samples[i])
		res[i].Samples = samples[i]
		res[i].MppsPerCPU = median(perCPU[i])
		for _, v := range samples[i] {
			res[i].Best = max(res[i].Best, v)
		}
	}
	for i := range res {
		res[i].Ratio = res[i].Mpps / res[0].Mpps
		res[i].BestRatio = res[i].Best / res[0].Best
		if res[0].MppsPerCPU > 0 {
			res[i].RatioPerCPU = res[i].MppsPerCPU / res[0].MppsPerCPU
		}
		if hz > 0 && res[i].MppsPerCPU > 0 {
			res[i].CyclesPerPkt = hz / (res[i].MppsPerCPU * 1e6)
		}
	}
	return res, nil
}

var (
	ppsRE     = regexp.MustCompile(`Tx-pps:\s+(\d+)`)
	txTotalRE = regexp.MustCompile(`TX-packets:\s+(\d+)`)
)

// runTestpmd runs testpmd for warm-up + dur and returns the median of the
// null port's per-second Tx-pps samples after the first.
func (b *bench) runTestpmd(mode string) (sample, string, error) {
	args := append(b.ealArgs(fmt.Sprintf("pgbenchtp%d", os.Getpid())),
		"--vdev", "net_pcap0,rx_pcap="+b.pcap+",infinite_rx=1", "--vdev", "net_null0,no-rx=1",
		"--", "--forward-mode="+mode, "--stats-period=1", "--total-num-mbufs=16384", "--nb-cores=1")
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
	tid := 0
	want := int(b.dur/time.Second) + 2
	for len(got) < want {
		if tid == 0 && len(got) > 0 {
			tid, _ = threadByName(cmd.Process.Pid, "rte-worker")
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
			return sample{}, command, fmt.Errorf("testpmd %s: no stats in time: %s", mode, command)
		}
	}
	// The forwarding thread's CPU time over its whole life, read just
	// before testpmd stops it, against all packets it forwarded.
	if tid != 0 {
		cpu, _ = threadCPU(cmd.Process.Pid, tid)
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

// runOurs runs the runtime with one worker on b.core and returns the null
// port's packets per second over dur after one second of warm-up.
func (b *bench) runOurs(np runtime.NewProcessor, in, out uint16) (sample, error) {
	b.runs++
	return b.measure(np, []runtime.PortConfig{
		{ID: in, Name: "pcap", Device: fmt.Sprintf("net_pcap_b%d,rx_pcap=%s,infinite_rx=1", b.runs, b.pcap)},
		{ID: out, Name: "null", Device: fmt.Sprintf("net_null_b%d,no-rx=1", b.runs)},
	})
}

// runPipeline runs the real pipeline: the stream on the input port, and on
// the output port a pcap port that receives the priming packets once (the
// host's ARP, so its neighbour is known) and drops what it transmits like
// net_null.
func (b *bench) runPipeline(pl *pipelineRun) (sample, error) {
	b.runs++
	np, p, err := pipelineProcessor(pl.tables)
	if err != nil {
		return sample{}, err
	}
	mpps, err := b.measure(np, []runtime.PortConfig{
		{ID: pl.in, Name: "in", Device: fmt.Sprintf("net_pcap_b%d,rx_pcap=%s,infinite_rx=1", b.runs, pl.stream)},
		{ID: pl.out, Name: "out", Device: fmt.Sprintf("net_pcap_o%d,rx_pcap=%s", b.runs, pl.prime)},
	})
	c := p.Counters()
	b.log.Info("pipeline counters", "drops", c.DropsByName(), "events", c.EventsByName())
	return mpps, err
}

func (b *bench) measure(np runtime.NewProcessor, ports []runtime.PortConfig) (sample, error) {
	cfg := runtime.Config{Workers: 1, Cores: []int{b.core}, IdleSleep: -1, Logger: b.log, Ports: ports}
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
	pid, tid := os.Getpid(), r.WorkerThreads()[0]
	c0, _ := threadCPU(pid, tid)
	t0 := time.Now()
	time.Sleep(b.dur)
	s1, err := r.Stats()
	el := time.Since(t0)
	c1, _ := threadCPU(pid, tid)
	if err != nil {
		return sample{}, err
	}
	r.Stop()
	b.log.Info("worker counters", "counters", fmt.Sprintf("%+v", s1.Total))
	pkts := float64(s1.Total.TxPackets - s0.Total.TxPackets)
	sm := sample{mpps: pkts / el.Seconds() / 1e6}
	if c1 > c0 {
		sm.perCPU = pkts / (c1 - c0).Seconds() / 1e6
	}
	return sm, nil
}
