package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/peergate/peergate/dataplane/replay"
)

var update = flag.Bool("update", false, "regenerate the golden pcaps (go generate ./dataplane/replay) before comparing")

// scenario mirrors dataplane/replay/gen's scenario.json.
type scenario struct {
	Name      string            `json:"name"`
	Manifests []string          `json:"manifests"`
	Inputs    map[string]string `json:"inputs"`
	Expected  map[string]string `json:"expected"`
	Drops     map[string]uint64 `json:"drops"`
	Notes     []string          `json:"notes"`
}

const repoRoot = "../.."

func loadScenarios(t *testing.T) []scenario {
	t.Helper()
	if *update {
		cmd := exec.Command("go", "generate", "./dataplane/replay")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go generate: %v\n%s", err, out)
		}
	}
	paths, err := filepath.Glob(filepath.Join(repoRoot, "testdata/pcap/*/scenario.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios under testdata/pcap (run go generate ./dataplane/replay): %v", err)
	}
	var out []scenario
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var s scenario
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, s)
	}
	return out
}

// runScenario runs `dataplane replay` in-process and returns the output
// directory and the report.
func runScenario(t *testing.T, s scenario) (string, replay.Report) {
	t.Helper()
	dir := filepath.Join(repoRoot, "testdata/pcap", s.Name)
	out := t.TempDir()
	args := []string{}
	for _, m := range s.Manifests {
		args = append(args, "-f", filepath.Join(repoRoot, m))
	}
	for port, f := range s.Inputs {
		args = append(args, "--in", port+"="+filepath.Join(dir, f))
	}
	args = append(args, "--out-dir", out)
	var stdout, stderr bytes.Buffer
	if err := runReplay(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("replay %v: %v\n%s", args, err, stderr.String())
	}
	var r replay.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	return out, r
}

func TestGoldenScenariosSendExactlyTheExpectedPackets(t *testing.T) {
	for _, s := range loadScenarios(t) {
		t.Run(s.Name, func(t *testing.T) {
			out, report := runScenario(t, s)
			for port, exp := range s.Expected {
				want, err := replay.ReadFile(filepath.Join(repoRoot, "testdata/pcap", s.Name, exp), 0)
				if err != nil {
					t.Fatal(err)
				}
				got, err := replay.ReadFile(filepath.Join(out, port+".pcap"), 0)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(want) || i < len(got); i++ {
					switch {
					case i >= len(got):
						t.Errorf("port %s packet %d: missing; want %s", port, i+1, summary(want[i].Data))
					case i >= len(want):
						t.Errorf("port %s packet %d: unexpected %s", port, i+1, summary(got[i].Data))
					default:
						for _, d := range comparePackets(want[i].Data, got[i].Data) {
							t.Errorf("port %s packet %d (%s): %s", port, i+1, summary(want[i].Data), d)
						}
					}
				}
			}
			if !reflect.DeepEqual(report.Drops, s.Drops) {
				t.Errorf("drops = %v, want %v", report.Drops, s.Drops)
			}
			var verdicts uint64
			for _, n := range report.Verdicts {
				verdicts += n
			}
			if verdicts != report.PacketsIn {
				t.Errorf("verdicts %v cover %d packets, want %d", report.Verdicts, verdicts, report.PacketsIn)
			}
			if t.Failed() {
				for _, n := range s.Notes {
					t.Log(n)
				}
			}
		})
	}
}

func TestGoldenOutputsHaveValidChecksumsForTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (make deps installs it): checksum validation skipped")
	}
	for _, s := range loadScenarios(t) {
		t.Run(s.Name, func(t *testing.T) {
			out, _ := runScenario(t, s)
			files, _ := filepath.Glob(filepath.Join(out, "*.pcap"))
			for _, f := range files {
				if bad := tsharkBadChecksums(t, tshark, f); bad != "" {
					t.Errorf("%s has bad checksums:\n%s", filepath.Base(f), bad)
				}
			}
		})
	}
}

func TestTsharkCheckCatchesABadChecksum(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (make deps installs it)")
	}
	pk, err := replay.ReadFile(filepath.Join(repoRoot, "testdata/pcap/kube-ovn-vpc-peering/expected/vpc2.pcap"), 0)
	if err != nil || len(pk) == 0 {
		t.Fatalf("read golden pcap: %v", err)
	}
	for _, off := range []int{14 + 10, 14 + 20 + 2} { // IPv4 header checksum, ICMP checksum
		bad := append([]byte(nil), pk[0].Data...)
		bad[off] ^= 0x55
		f := filepath.Join(t.TempDir(), "bad.pcap")
		if err := replay.WriteFile(f, []replay.Packet{{Time: pk[0].Time, Data: bad}}); err != nil {
			t.Fatal(err)
		}
		if tsharkBadChecksums(t, tshark, f) == "" {
			t.Errorf("a packet with a corrupted checksum at byte %d passed the tshark check", off)
		}
	}
}

// tsharkBadChecksums lists the packets of f whose IP, TCP, UDP, ICMP or
// ICMPv6 checksum tshark finds wrong (ICMP checksums are always checked).
func tsharkBadChecksums(t *testing.T, tshark, f string) string {
	t.Helper()
	cmd := exec.Command(tshark, "-n", "-r", f,
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-Y", "ip.checksum.status==Bad || tcp.checksum.status==Bad || udp.checksum.status==Bad || icmp.checksum.status==Bad || icmpv6.checksum.status==Bad")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", f, err, se.String())
	}
	return strings.TrimSpace(so.String())
}

func summary(b []byte) string {
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	var names []string
	for _, l := range p.Layers() {
		names = append(names, l.LayerType().String())
	}
	return strings.Join(names, "/")
}

// comparePackets decodes both frames and compares them layer by layer and
// field by field. Fields the gateway chooses freely are skipped where the
// expected packet marks them with 0: the IPv4 id (and the header checksum
// that covers it) of headers the gateway originates, and the VXLAN UDP
// source port (which must then be in the ephemeral range).
func comparePackets(want, got []byte) []string {
	wp := gopacket.NewPacket(want, layers.LayerTypeEthernet, gopacket.Default)
	gp := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	wl, gl := wp.Layers(), gp.Layers()
	var diffs []string
	if len(wl) != len(gl) {
		return []string{fmt.Sprintf("layers %s, want %s", summary(got), summary(want))}
	}
	for i := range wl {
		if wl[i].LayerType() != gl[i].LayerType() {
			return []string{fmt.Sprintf("layer %d is %v, want %v", i, gl[i].LayerType(), wl[i].LayerType())}
		}
		switch w := wl[i].(type) {
		case *layers.IPv4:
			g := gl[i].(*layers.IPv4)
			if w.Id == 0 {
				w.Id, w.Checksum = g.Id, g.Checksum
			}
		case *layers.UDP:
			g := gl[i].(*layers.UDP)
			if w.SrcPort == 0 && w.DstPort == 4789 {
				if g.SrcPort < 49152 {
					diffs = append(diffs, fmt.Sprintf("VXLAN UDP source port %d not in 49152-65535", g.SrcPort))
				}
				w.SrcPort = g.SrcPort
			}
		}
		diffs = append(diffs, diffFields(wl[i], gl[i])...)
	}
	return diffs
}

// diffFields compares the exported fields of two decoded layers, except the
// raw bytes (compared through the fields and the layers after them).
func diffFields(w, g gopacket.Layer) []string {
	wv, gv := reflect.ValueOf(w).Elem(), reflect.ValueOf(g).Elem()
	var diffs []string
	if wv.Kind() != reflect.Struct {
		if !bytes.Equal(w.LayerContents(), g.LayerContents()) {
			diffs = append(diffs, fmt.Sprintf("%v differs (%d bytes, want %d)", w.LayerType(), len(g.LayerContents()), len(w.LayerContents())))
		}
		return diffs
	}
	for i := 0; i < wv.NumField(); i++ {
		f := wv.Type().Field(i)
		if !f.IsExported() || f.Anonymous || f.Name == "Padding" {
			continue
		}
		a, b := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !reflect.DeepEqual(a, b) {
			diffs = append(diffs, fmt.Sprintf("%v.%s = %v, want %v", w.LayerType(), f.Name, b, a))
		}
	}
	return diffs
}

func TestComparePacketsReportsTheFieldThatDiffers(t *testing.T) {
	pk, err := replay.ReadFile(filepath.Join(repoRoot, "testdata/pcap/kube-ovn-vpc-peering/expected/vpc2.pcap"), 0)
	if err != nil || len(pk) == 0 {
		t.Fatalf("read golden pcap: %v", err)
	}
	want := pk[0].Data
	got := append([]byte(nil), want...)
	got[14+8]-- // TTL (checksum now wrong too)
	d := comparePackets(want, got)
	if len(d) == 0 || !strings.Contains(strings.Join(d, ";"), "IPv4.TTL") {
		t.Errorf("diffs = %v, want one naming IPv4.TTL", d)
	}
	got = append([]byte(nil), want...)
	got[len(got)-1] ^= 1
	if d := comparePackets(want, got); len(d) == 0 {
		t.Error("a changed payload byte went unnoticed")
	}
}
