// Command gen writes the golden replay scenarios of testdata/pcap: for each
// seed scenario, the pcaps the gateway receives on each port, the pcaps it
// must send (built here by hand from the scenario's meaning, never by running
// the pipeline) and a scenario.json the golden test reads. Run it with
// `go generate ./dataplane/replay` (or `make testdata`).
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Scenario is what the golden test reads from scenario.json.
type Scenario struct {
	Name string `json:"name"`
	// Manifests are relative to the repository root.
	Manifests []string `json:"manifests"`
	// Inputs maps port name to the input pcap (relative to the scenario dir).
	Inputs map[string]string `json:"inputs"`
	// Expected maps every port to its expected output pcap.
	Expected map[string]string `json:"expected"`
	// Drops are the exact drop counters of the report.
	Drops map[string]uint64 `json:"drops"`
	Notes []string          `json:"notes"`
}

type frame struct {
	t    int // seconds after the scenario start
	data []byte
}

type builder struct {
	sc  Scenario
	in  map[string][]frame
	out map[string][]frame
}

func newBuilder(name string, manifests ...string) *builder {
	return &builder{sc: Scenario{Name: name, Manifests: manifests, Inputs: map[string]string{}, Expected: map[string]string{}, Drops: map[string]uint64{}},
		in: map[string][]frame{}, out: map[string][]frame{}}
}

func (b *builder) rx(t int, port string, data []byte, note string) {
	b.in[port] = append(b.in[port], frame{t, data})
	b.sc.Notes = append(b.sc.Notes, fmt.Sprintf("t=%d rx %s: %s", t, port, note))
}

func (b *builder) tx(t int, port string, data []byte) {
	b.out[port] = append(b.out[port], frame{t, data})
}

func (b *builder) drop(reason string) { b.sc.Drops[reason]++ }

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (b *builder) write(root string, ports []string) error {
	dir := filepath.Join(root, b.sc.Name)
	if err := os.MkdirAll(filepath.Join(dir, "expected"), 0o755); err != nil {
		return err
	}
	for port, fr := range b.in {
		name := "in-" + port + ".pcap"
		b.sc.Inputs[port] = name
		if err := writePcap(filepath.Join(dir, name), fr); err != nil {
			return err
		}
	}
	for _, port := range ports {
		name := filepath.Join("expected", port+".pcap")
		b.sc.Expected[port] = name
		if err := writePcap(filepath.Join(dir, name), b.out[port]); err != nil {
			return err
		}
	}
	j, err := json.MarshalIndent(b.sc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "scenario.json"), append(j, '\n'), 0o644)
}

func writePcap(path string, fr []frame) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	sort.SliceStable(fr, func(i, j int) bool { return fr[i].t < fr[j].t })
	for _, x := range fr {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(x.t) * time.Second), CaptureLength: len(x.data), Length: len(x.data)}
		if err := w.WritePacket(ci, x.data); err != nil {
			return err
		}
	}
	return nil
}

// ---- frame construction ----------------------------------------------

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ip(s string) net.IP { return net.ParseIP(s).To4() }

// gwMAC is the MAC replay gives a port without one (fib.DefaultPortMAC).
func gwMAC(id int) net.HardwareAddr { return net.HardwareAddr{0x02, 0x70, 0x67, 0, 0, byte(id + 1)} }

var bcast = mac("ff:ff:ff:ff:ff:ff")

func ser(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipPkt returns an IPv4 packet (header + l4) with correct checksums.
func ipPkt(src, dst string, ttl uint8, id uint16, df bool, l4 ...gopacket.SerializableLayer) []byte {
	h := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: id, SrcIP: ip(src), DstIP: ip(dst)}
	if df {
		h.Flags = layers.IPv4DontFragment
	}
	switch l := l4[0].(type) {
	case *layers.ICMPv4:
		h.Protocol = layers.IPProtocolICMPv4
	case *layers.TCP:
		h.Protocol = layers.IPProtocolTCP
		l.SetNetworkLayerForChecksum(h)
	case *layers.UDP:
		h.Protocol = layers.IPProtocolUDP
		l.SetNetworkLayerForChecksum(h)
	}
	return ser(append([]gopacket.SerializableLayer{h}, l4...)...)
}

func echo(req bool, id, seq uint16, size int) []gopacket.SerializableLayer {
	t := layers.ICMPv4TypeEchoReply
	if req {
		t = layers.ICMPv4TypeEchoRequest
	}
	pl := make([]byte, size)
	for i := range pl {
		pl[i] = byte(i)
	}
	return []gopacket.SerializableLayer{&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(uint8(t), 0), Id: id, Seq: seq}, gopacket.Payload(pl)}
}

func tcpSeg(sp, dp uint16, syn, ack bool, seq, an uint32) []gopacket.SerializableLayer {
	return []gopacket.SerializableLayer{&layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), SYN: syn, ACK: ack, Seq: seq, Ack: an, Window: 64240}}
}

func udpDgram(sp, dp uint16, payload string) []gopacket.SerializableLayer {
	return []gopacket.SerializableLayer{&layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}, gopacket.Payload(payload)}
}

// icmpErr builds an ICMPv4 error from src to dst quoting quote.
func icmpErr(src, dst string, typ, code uint8, mtu uint16, quote []byte) []byte {
	if len(quote) > 548 {
		quote = quote[:548]
	}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}
	if mtu != 0 {
		ic.Seq = mtu
	}
	return ipPkt(src, dst, 64, 0, false, ic, gopacket.Payload(quote))
}

// eth frames payload without the padding to 60 bytes gopacket would add:
// the gateway sends frames as long as their content (the NIC pads).
func eth(src, dst net.HardwareAddr, et layers.EthernetType, payload []byte) []byte {
	f := make([]byte, 14+len(payload))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], uint16(et))
	copy(f[14:], payload)
	return f
}

func eth4(src, dst net.HardwareAddr, payload []byte) []byte {
	return eth(src, dst, layers.EthernetTypeIPv4, payload)
}

func arp(op uint16, sha net.HardwareAddr, spa string, tha net.HardwareAddr, tpa string) []byte {
	if tha == nil {
		tha = mac("00:00:00:00:00:00")
	}
	return ser(&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: op, SourceHwAddress: sha, SourceProtAddress: ip(spa), DstHwAddress: tha, DstProtAddress: ip(tpa)})
}

// vxlan wraps an inner frame: outer Ethernet/IPv4/UDP(4789, checksum 0)/VXLAN.
// An outer IP id and UDP source port of 0 mean "chosen by the gateway": the
// golden test does not compare them (and the IP checksum that covers the id).
func vxlan(osrcMAC, odstMAC net.HardwareAddr, osrc, odst string, id, sport uint16, vni uint32, inner []byte) []byte {
	vx := ser(&layers.VXLAN{ValidIDFlag: true, VNI: vni}, gopacket.Payload(inner))
	udp := make([]byte, 8+len(vx))
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], 4789)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], vx)
	h := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: layers.IPProtocolUDP, SrcIP: ip(osrc), DstIP: ip(odst)}
	return eth4(osrcMAC, odstMAC, ser(h, gopacket.Payload(udp)))
}

// withTTL returns a copy of an IPv4 packet with another TTL and checksum.
func withTTL(p []byte, ttl uint8) []byte {
	q := append([]byte(nil), p...)
	q[8] = ttl
	fixIPSum(q)
	return q
}

func fixIPSum(q []byte) {
	q[10], q[11] = 0, 0
	ihl := int(q[0]&0xf) * 4
	var s uint32
	for i := 0; i < ihl; i += 2 {
		s += uint32(binary.BigEndian.Uint16(q[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(q[10:], ^uint16(s))
}

func main() {
	out := flag.String("out", "../../testdata/pcap", "output directory")
	flag.Parse()
	for _, s := range []struct {
		b     *builder
		ports []string
	}{
		{kubeOVN(), []string{"fabric", "vpc2"}},
		{staticNAT(), []string{"fabric", "vpc2"}},
		{overlapping(), []string{"fabric", "vpc2"}},
		{externals(), []string{"fabric", "e1", "e2"}},
	} {
		if err := s.b.write(*out, s.ports); err != nil {
			log.Fatalf("scenario %s: %v", s.b.sc.Name, err)
		}
	}
	if err := statefulScenario(*out); err != nil {
		log.Fatalf("stateful scenario: %v", err)
	}
}

func payload(b []byte) gopacket.Payload { return gopacket.Payload(b) }
