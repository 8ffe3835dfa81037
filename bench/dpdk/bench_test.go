package main

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/peergate/peergate/dataplane/dpdk"
)

func readPcap(t *testing.T, path string) []gopacket.Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []gopacket.Packet
	for {
		d, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, gopacket.NewPacket(d, layers.LayerTypeEthernet, gopacket.Default))
	}
}

func TestGeneratedVXLANPacketsDecodeWithTheirInnerFrameSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.pcap")
	if err := writeVXLANPcap(path, 16, 60); err != nil {
		t.Fatal(err)
	}
	pk := readPcap(t, path)
	if len(pk) != 16 {
		t.Fatalf("%d packets", len(pk))
	}
	for _, p := range pk {
		vx, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		if !ok || vx.VNI != 100 || len(vx.Payload) != 60 || p.ErrorLayer() != nil {
			t.Fatalf("not a VXLAN packet with a 60-byte inner frame: %v", p)
		}
	}
}

func TestScenarioStreamKeepsValidInnerChecksumsAndVariesFlows(t *testing.T) {
	const scenario = "../../testdata/pcap/peering-api-1-static-nat/in-fabric.pcap"
	if _, err := os.Stat(scenario); err != nil {
		t.Skipf("scenario pcap not there: %v", err)
	}
	for _, clientMACs := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "s.pcap")
		if err := writeScenarioStream(path, scenario, 2, 300, clientMACs); err != nil {
			t.Fatal(err)
		}
		checkScenarioStream(t, path, clientMACs)
	}
}

func checkScenarioStream(t *testing.T, path string, clientMACs bool) {
	t.Helper()
	ports := map[layers.TCPPort]bool{}
	macs := map[string]bool{}
	for _, p := range readPcap(t, path) {
		var inner *layers.IPv4
		var innerEth *layers.Ethernet
		for _, l := range p.Layers() {
			switch l := l.(type) {
			case *layers.IPv4:
				inner = l
			case *layers.Ethernet:
				innerEth = l
			}
		}
		macs[innerEth.SrcMAC.String()] = true
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if inner == nil || !ok {
			t.Fatalf("no inner IPv4/TCP: %v", p)
		}
		hdr := append([]byte(nil), inner.Contents...)
		want := inner.Checksum
		setIPv4Checksum(hdr)
		if got := uint16(hdr[10])<<8 | uint16(hdr[11]); got != want {
			t.Fatalf("inner IPv4 checksum %#x, want %#x", want, got)
		}
		ports[tcp.DstPort] = true
	}
	if len(ports) != 300 {
		t.Fatalf("%d distinct flows, want 300", len(ports))
	}
	if want := map[bool]int{false: 1, true: 200}[clientMACs]; len(macs) != want {
		t.Fatalf("client MACs %v: %d inner source MACs, want %d", clientMACs, len(macs), want)
	}
}

// TestBenchmarkRunsEndToEnd runs every configuration for a moment; it
// checks that each moves packets, not how fast.
func TestBenchmarkRunsEndToEnd(t *testing.T) {
	switch {
	case testing.Short():
		t.Skip("short mode")
	case !dpdk.Available():
		t.Skip("built without DPDK: run with -tags dpdk")
	case os.Geteuid() != 0:
		t.Skip("needs root for the EAL")
	}
	if _, err := exec.LookPath("dpdk-testpmd"); err != nil {
		t.Skip("dpdk-testpmd not installed (Debian package dpdk-dev)")
	}
	dir := t.TempDir()
	b := bench{pcap: filepath.Join(dir, "v.pcap"), dur: time.Second, core: 1, testpmd: "dpdk-testpmd", quiet: true,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := writeVXLANPcap(b.pcap, 256, 60); err != nil {
		t.Fatal(err)
	}
	if cpus, err := usableCPUs(); err == nil {
		b.cores2, _ = twoCores(1, cpus)
	}
	if b.cores2 == nil {
		t.Log("fewer than 2 CPUs: the two-core runs are not exercised")
	}
	pl := &pipelineRun{tables: "../../testdata/compiled/peering-api-1-static-nat.json", in: 0, out: 1,
		stream: filepath.Join(dir, "s.pcap"), prime: "../../testdata/pcap/peering-api-1-static-nat/in-vpc2.pcap"}
	if err := writeScenarioStream(pl.stream, "../../testdata/pcap/peering-api-1-static-nat/in-fabric.pcap", 2, 256, true); err != nil {
		t.Fatal(err)
	}
	res, err := b.run(pl, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Logf("%-28s %6.2f Mpps  %6.2f Mpps/CPU", r.Name, r.Mpps, r.MppsPerCPU)
		if r.Mpps <= 0 {
			t.Errorf("%s moved no packets", r.Name)
		}
		if r.Workers == 2 && (r.OneCore == "" || r.Scaling <= 0) {
			t.Errorf("%s: no scaling ratio (one-core run %q, ratio %v)", r.Name, r.OneCore, r.Scaling)
		}
	}
}

func TestTwoCoresAvoidTheMainLcoresCPUWhenTheMachineHasAThird(t *testing.T) {
	tests := []struct {
		name       string
		core       int
		cpus       []int
		want       []int
		wantShared bool
	}{
		{"two CPUs: the second worker shares CPU 0", 1, []int{0, 1}, []int{1, 0}, true},
		{"four CPUs", 1, []int{0, 1, 2, 3}, []int{1, 2}, false},
		{"core 3 of four", 3, []int{0, 1, 2, 3}, []int{3, 1}, false},
		{"one CPU", 0, []int{0}, nil, false},
		{"core not usable", 5, []int{0, 1}, nil, false},
		{"core 0 is the main lcore's CPU", 0, []int{0, 1}, []int{0, 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, shared := twoCores(tc.core, tc.cpus)
			if !slices.Equal(got, tc.want) || shared != tc.wantShared {
				t.Errorf("twoCores(%d, %v) = %v, %v; want %v, %v", tc.core, tc.cpus, got, shared, tc.want, tc.wantShared)
			}
		})
	}
}

func TestMultiQueueArgumentsGiveOneQueuePerCore(t *testing.T) {
	if got, want := rxPcaps("/p", 2), "rx_pcap=/p,rx_pcap=/p"; got != want {
		t.Errorf("rxPcaps = %q, want %q", got, want)
	}
	if got, want := testpmdLcores([]int{1, 0}), "0@0,1@1,2@0"; got != want {
		t.Errorf("testpmdLcores = %q, want %q", got, want)
	}
}
