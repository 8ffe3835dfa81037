package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/dataplane/pipeline"
	"github.com/peergate/peergate/dataplane/replay"
	"github.com/peergate/peergate/nat"
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

// statefulScenario mirrors dataplane/replay/gen's stateful.json.
type statefulScenario struct {
	Name       string            `json:"name"`
	Manifests  []string          `json:"manifests"`
	Pool       string            `json:"pool"`
	Flows      map[string]string `json:"flows"`
	FlowCount  int               `json:"flow_count"`
	Hosts      []string          `json:"hosts"`
	Flood      map[string]string `json:"flood"`
	FloodCount int               `json:"flood_count"`
	MSS        int               `json:"mss"`
}

// natFlow is one flow of the first round as the gateway sent it out.
type natFlow struct {
	host, remote netip.AddrPort // inside host and remote end as sent
	public       netip.AddrPort
	proto        layers.IPProtocol
	port         uint16 // egress port id
	out          []byte // the translated frame
}

// TestStatefulNATMasqueradesThousandsOfFlowsAndTranslatesTheirRepliesBack
// replays the fourth use case (vpc-1 to the Internet through vpc-e1 or
// vpc-e2, masqueraded onto 192.168.1.0/30) in rounds on one pipeline:
//  1. 3000 TCP, UDP and ICMP flows go out: every one leaves with a pool
//     address (one per inside host), a public (address, port) unique per
//     remote endpoint, TTL 63, SYNs clamped to the VXLAN MSS, valid checksums;
//  2. their replies come back to the right inside host and port; unsolicited
//     packets (unknown remote, or a known public port from another remote
//     port) are dropped and counted; ICMP errors about a session reach the
//     inside host with the quoted header translated back (RFC 5508);
//  3. a flood of new flows beyond one host's ports toward one endpoint is
//     dropped as nat_ports_exhausted;
//  4. the first round's sessions still carry replies and new packets.
func TestStatefulNATMasqueradesThousandsOfFlowsAndTranslatesTheirRepliesBack(t *testing.T) {
	dir := filepath.Join(repoRoot, "testdata/pcap/peering-api-4-internet-by-cost")
	raw, err := os.ReadFile(filepath.Join(dir, "stateful.json"))
	if err != nil {
		t.Fatalf("read scenario (go generate ./dataplane/replay writes it): %v", err)
	}
	var sc statefulScenario
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, m := range sc.Manifests {
		files = append(files, filepath.Join(repoRoot, m))
	}
	tables, _, err := compile.Files(files...)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	rp, err := replay.New(tables, replay.Options{Pipeline: pipeline.Config{NATSessions: 1 << 16, NATSeed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	read := func(m map[string]string) []replay.Packet {
		var in []replay.Input
		for port, f := range m {
			in = append(in, replay.Input{Port: port, Path: filepath.Join(dir, f)})
		}
		pk, err := replay.ReadInputs(tables, in)
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	pool := netip.MustParsePrefix(sc.Pool)
	fabric, _ := replay.PortID(tables, "fabric")

	// Round 1: the flows go out.
	in := read(sc.Flows)
	sent := rp.Feed(in)
	checkChecksums(t, "round 1", sent)
	flows := map[uint16]*natFlow{}
	hostPublic := map[netip.Addr]netip.Addr{}
	endpoints := map[string]netip.AddrPort{}
	for _, p := range sent {
		if p.Port == fabric {
			continue
		}
		pk := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			t.Errorf("port %d sent a non-IPv4 frame: %s", p.Port, summary(p.Data))
			continue
		}
		i := int(ip.Id) - 1
		if i < 0 || i >= sc.FlowCount || flows[ip.Id] != nil {
			t.Errorf("unexpected or repeated IPv4 id %d out of port %d", ip.Id, p.Port)
			continue
		}
		host := netip.MustParseAddr(sc.Hosts[i%len(sc.Hosts)])
		src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
		f := &natFlow{proto: ip.Protocol, port: p.Port, out: p.Data}
		var sport, dport, hostPort uint16
		switch l := pk.TransportLayer().(type) {
		case *layers.TCP:
			sport, dport, hostPort = uint16(l.SrcPort), uint16(l.DstPort), uint16(30000+i)
			if mss := tcpMSS(l); mss != sc.MSS {
				t.Errorf("flow %d: SYN leaves with MSS %d, want %d", i, mss, sc.MSS)
			}
		case *layers.UDP:
			sport, dport, hostPort = uint16(l.SrcPort), uint16(l.DstPort), uint16(40000+i)
		default:
			ic, _ := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ic == nil {
				t.Errorf("flow %d: no transport: %s", i, summary(p.Data))
				continue
			}
			sport, hostPort = ic.Id, uint16(1000+i)
		}
		f.host = netip.AddrPortFrom(host, hostPort)
		f.public = netip.AddrPortFrom(src, sport)
		f.remote = netip.AddrPortFrom(dst, dport)
		flows[ip.Id] = f
		if !pool.Contains(src) {
			t.Errorf("flow %d leaves from %v, outside the pool %v", i, src, pool)
		}
		if ip.TTL != 63 {
			t.Errorf("flow %d leaves with TTL %d, want 63", i, ip.TTL)
		}
		if a, ok := hostPublic[host]; ok && a != src {
			t.Errorf("host %v got two public addresses %v and %v (paired pooling)", host, a, src)
		}
		hostPublic[host] = src
		k := fmt.Sprintf("%v %v %v", ip.Protocol, f.public, f.remote)
		if prev, ok := endpoints[k]; ok {
			t.Errorf("public %v serves both %v and %v toward %v", f.public, prev, f.host, f.remote)
		}
		endpoints[k] = f.host
		wantPort := "e1"
		if f.remote.Addr() == netip.MustParseAddr("1.2.3.1") {
			wantPort = "e2"
		}
		if id, _ := replay.PortID(tables, wantPort); id != p.Port {
			t.Errorf("flow %d to %v left on port %d, want %s", i, f.remote, p.Port, wantPort)
		}
	}
	if len(flows) != sc.FlowCount {
		t.Fatalf("%d of %d flows went out; report %+v", len(flows), sc.FlowCount, rp.Report())
	}
	if d := rp.Report().Drops; len(d) != 1 || d["consumed"] != 2 {
		t.Errorf("round 1 drops %v, want only the 2 gratuitous ARPs consumed", d)
	}

	// Round 2: replies, unsolicited packets, ICMP errors.
	at := in[len(in)-1].Time.Add(2 * time.Second)
	var round2 []replay.Packet
	ids := sortedIDs(flows)
	for _, id := range ids {
		round2 = append(round2, replay.Packet{Time: at, Port: flows[id].port, Data: natReply(t, flows[id], id)})
	}
	unsolicited := 0
	e1, _ := replay.PortID(tables, "e1")
	for k := 0; k < 50; k++ {
		f := flows[ids[0]]
		pub := netip.AddrPortFrom(pool.Addr().Next(), uint16(1024+k*97))
		round2 = append(round2, replay.Packet{Time: at, Port: e1, Data: natFrame(t, f.out, netip.MustParseAddrPort("9.9.9.9:53"), pub, layers.IPProtocolUDP, uint16(60000+k), false)})
		unsolicited++
	}
	var errFlows []uint16
	for _, id := range ids {
		f := flows[id]
		if f.proto != layers.IPProtocolUDP || f.port != e1 {
			continue
		}
		if len(errFlows) < 10 {
			// The right public port from the wrong remote port.
			other := netip.AddrPortFrom(f.remote.Addr(), f.remote.Port()+1000)
			round2 = append(round2, replay.Packet{Time: at, Port: f.port, Data: natFrame(t, f.out, other, f.public, layers.IPProtocolUDP, uint16(61000+len(errFlows)), false)})
			unsolicited++
		}
		if len(errFlows) < 30 {
			round2 = append(round2, replay.Packet{Time: at, Port: f.port, Data: icmpUnreachable(t, f, uint16(50000+len(errFlows)))})
			errFlows = append(errFlows, id)
		}
	}
	sent = rp.Feed(round2)
	checkChecksums(t, "round 2", sent)
	got := map[uint16]bool{}
	for _, p := range sent {
		if p.Port != fabric {
			t.Errorf("round 2 sent on port %d: %s", p.Port, summary(p.Data))
			continue
		}
		inner := innerIPv4(p.Data)
		if inner == nil {
			t.Errorf("round 2: not VXLAN/IPv4: %s", summary(p.Data))
			continue
		}
		got[inner.Id] = true
		if inner.Id >= 50000 && int(inner.Id) < 50000+len(errFlows) {
			checkICMPErrorBack(t, flows[errFlows[inner.Id-50000]], inner)
			continue
		}
		f := flows[inner.Id]
		if f == nil {
			t.Errorf("round 2: unexpected packet id %d: %s", inner.Id, summary(p.Data))
			continue
		}
		checkReplyBack(t, f, inner)
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("reply of flow %d (%v -> %v via %v) did not come back", id-1, flows[id].host, flows[id].remote, flows[id].public)
		}
	}
	for k := range errFlows {
		if !got[uint16(50000+k)] {
			t.Errorf("ICMP error %d about flow %d did not come back", k, errFlows[k]-1)
		}
	}
	if n := rp.Report().Drops["nat_unsolicited"]; n != uint64(unsolicited) {
		t.Errorf("nat_unsolicited = %d, want %d", n, unsolicited)
	}

	// Round 3: the flood.
	flood := read(sc.Flood)
	sent = rp.Feed(flood)
	rep := rp.Report()
	exhausted := rep.Drops["nat_ports_exhausted"]
	if exhausted == 0 || uint64(len(sent))+exhausted != uint64(sc.FloodCount) || len(sent) > 4096 {
		t.Errorf("flood of %d: %d sent, %d nat_ports_exhausted; want the sum, at most 4096 sent and some exhausted", sc.FloodCount, len(sent), exhausted)
	}

	t.Logf("flood: %d sent, %d exhausted; drops %v", len(sent), exhausted, rep.Drops)
	// Round 4: the first round's sessions still work both ways.
	at = flood[len(flood)-1].Time.Add(time.Second)
	var round4 []replay.Packet
	for _, id := range ids[:300] {
		round4 = append(round4, replay.Packet{Time: at, Port: flows[id].port, Data: natReply(t, flows[id], id)})
	}
	sent = rp.Feed(round4)
	checkChecksums(t, "round 4", sent)
	if len(sent) != 300 {
		t.Errorf("round 4: %d of 300 replies came back after the flood; drops %v", len(sent), rp.Report().Drops)
	}
	for _, p := range sent {
		if inner := innerIPv4(p.Data); inner != nil && flows[inner.Id] != nil {
			checkReplyBack(t, flows[inner.Id], inner)
		}
	}
	rep = rp.Report()
	if rep.NAT == nil || rep.NAT.Sessions < uint64(sc.FlowCount) {
		t.Errorf("NAT report %+v, want at least %d sessions", rep.NAT, sc.FlowCount)
	}
	if rep.Peerings["vpc-1--vpc-e1"].Packets == 0 || rep.Peerings["vpc-1--vpc-e2"].Packets == 0 || rep.VPCs["vpc-1"].Packets == 0 {
		t.Errorf("traffic counters: vpcs %v peerings %v", rep.VPCs, rep.Peerings)
	}
	if ss := rp.Pipeline().Sessions(nat.Filter{VPC: 0, Limit: 5}); len(ss) != 5 {
		t.Errorf("Sessions listed %d, want 5", len(ss))
	}
}

func sortedIDs(m map[uint16]*natFlow) []uint16 {
	ids := make([]uint16, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func tcpMSS(l *layers.TCP) int {
	for _, o := range l.Options {
		if o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2 {
			return int(o.OptionData[0])<<8 | int(o.OptionData[1])
		}
	}
	return -1
}

// natFrame builds a frame answering out (the gateway's frame on an
// external port): from src to dst, IPv4 id id.
func natFrame(t *testing.T, out []byte, src, dst netip.AddrPort, proto layers.IPProtocol, id uint16, synAck bool, pl ...gopacket.SerializableLayer) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: out[0:6], DstMAC: out[6:12], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 50, Id: id, Protocol: proto, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	ls := []gopacket.SerializableLayer{eth, ip}
	switch proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), SYN: synAck, ACK: true, Seq: 7, Ack: 1, Window: 1000}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp, gopacket.Payload("reply"))
	}
	ls = append(ls, pl...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// natReply is the remote end's answer to flow f.
func natReply(t *testing.T, f *natFlow, id uint16) []byte {
	if f.proto == layers.IPProtocolICMPv4 {
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: f.public.Port(), Seq: 1}
		return natFrame(t, f.out, netip.AddrPortFrom(f.remote.Addr(), 0), netip.AddrPortFrom(f.public.Addr(), 0), layers.IPProtocolICMPv4, id, false, ic, gopacket.Payload("pong"))
	}
	return natFrame(t, f.out, f.remote, f.public, f.proto, id, true)
}

// icmpUnreachable is a port unreachable from f's remote end quoting what
// the gateway sent.
func icmpUnreachable(t *testing.T, f *natFlow, id uint16) []byte {
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}
	return natFrame(t, f.out, netip.AddrPortFrom(f.remote.Addr(), 0), netip.AddrPortFrom(f.public.Addr(), 0), layers.IPProtocolICMPv4, id, false, ic, gopacket.Payload(f.out[14:]))
}

// innerIPv4 decodes a VXLAN frame's inner IPv4 header (with its payload).
func innerIPv4(frame []byte) *layers.IPv4 {
	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var last *layers.IPv4
	for _, l := range pk.Layers() {
		if ip, ok := l.(*layers.IPv4); ok {
			last = ip
		}
	}
	if pk.Layer(layers.LayerTypeVXLAN) == nil || last == nil || last.SrcIP.Equal(net.IP{192, 0, 2, 1}) {
		return nil
	}
	return last
}

func l4Ports(ip *layers.IPv4) (sport, dport uint16) {
	p := ip.Payload
	if len(p) < 8 {
		return 0, 0
	}
	if ip.Protocol == layers.IPProtocolICMPv4 {
		return 0, uint16(p[4])<<8 | uint16(p[5])
	}
	return uint16(p[0])<<8 | uint16(p[1]), uint16(p[2])<<8 | uint16(p[3])
}

func checkReplyBack(t *testing.T, f *natFlow, ip *layers.IPv4) {
	t.Helper()
	dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
	src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	sport, dport := l4Ports(ip)
	if dst != f.host.Addr() || dport != f.host.Port() || src != f.remote.Addr() || (f.proto != layers.IPProtocolICMPv4 && sport != f.remote.Port()) {
		t.Errorf("reply of %v -> %v (public %v) reached %v:%d from %v:%d", f.host, f.remote, f.public, dst, dport, src, sport)
	}
}

func checkICMPErrorBack(t *testing.T, f *natFlow, ip *layers.IPv4) {
	t.Helper()
	dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
	p := ip.Payload
	if dst != f.host.Addr() || len(p) < 8+20+8 {
		t.Errorf("ICMP error about %v -> %v reached %v (%d bytes)", f.host, f.remote, dst, len(p))
		return
	}
	emb := p[8:]
	esrc, _ := netip.AddrFromSlice(emb[12:16])
	ihl := int(emb[0]&0xf) * 4
	esport := uint16(emb[ihl])<<8 | uint16(emb[ihl+1])
	if netip.AddrPortFrom(esrc, esport) != f.host {
		t.Errorf("ICMP error about %v quotes source %v:%d", f.host, esrc, esport)
	}
	var s uint32
	for i := 0; i < ihl; i += 2 {
		s += uint32(emb[i])<<8 | uint32(emb[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	if s != 0xffff {
		t.Errorf("ICMP error about %v: quoted IPv4 header checksum is wrong", f.host)
	}
}

// checkChecksums runs tshark's checksum validation over a round's output.
func checkChecksums(t *testing.T, round string, sent []replay.Packet) {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Logf("tshark not installed: %s checksums not validated", round)
		return
	}
	f := filepath.Join(t.TempDir(), "out.pcap")
	if err := replay.WriteFile(f, sent); err != nil {
		t.Fatal(err)
	}
	if bad := tsharkBadChecksums(t, tshark, f); bad != "" {
		t.Errorf("%s: bad checksums:\n%s", round, bad)
	}
}
