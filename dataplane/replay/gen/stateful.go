package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Stateful describes the stateful NAT scenario (stateful.json). Its
// expected output cannot be written by hand: the gateway chooses the public
// ports. The test (cmd/dataplane) feeds Flows, checks what comes out, answers
// it, and then feeds Flood; the properties it asserts are in its doc.
type Stateful struct {
	Name      string   `json:"name"`
	Manifests []string `json:"manifests"`
	// Pool is the masquerade pool every translated source must be in.
	Pool string `json:"pool"`
	// Flows maps port name to the pcap of the first round: the upstream
	// routers announce themselves, vpc-1's hosts resolve their router and
	// open FlowCount flows (TCP SYN with MSS 1460, UDP, ICMP echo in turn);
	// flow i has IPv4 id i+1 and comes from Hosts[i%len(Hosts)].
	Flows     map[string]string `json:"flows"`
	FlowCount int               `json:"flow_count"`
	Hosts     []string          `json:"hosts"`
	// Flood is the pcap of the last round: one host opens FloodCount UDP
	// flows toward one remote endpoint, more than the ports it may use
	// toward it (a block range of 4096).
	Flood      map[string]string `json:"flood"`
	FloodCount int               `json:"flood_count"`
	// MSS is what TCP SYNs must carry after the gateway (fabric MTU 1500
	// less 50 of VXLAN less 40).
	MSS   int      `json:"mss"`
	Notes []string `json:"notes"`
}

// statefulDst is flow i's remote address: 60 /8s times 5 addresses, so
// several hosts meet at each remote endpoint; every 100th flow goes to
// 1.2.3.1, which only vpc-e2 exposes.
func statefulDst(i int) string {
	if i%100 == 99 {
		return "1.2.3.1"
	}
	return fmt.Sprintf("%d.1.%d.1", 130+i%60, i%5)
}

func tcpSYNWithMSS(sp, dp uint16, seq uint32) []gopacket.SerializableLayer {
	return []gopacket.SerializableLayer{&layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), SYN: true, Seq: seq, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}}
}

func statefulScenario(root string) error {
	const name = "peering-api-4-internet-by-cost"
	sc := Stateful{Name: name, Manifests: []string{"testdata/manifests/" + name}, Pool: "192.168.1.0/30",
		Flows: map[string]string{}, Flood: map[string]string{}, FlowCount: 3000, FloodCount: 4600, MSS: 1500 - 50 - 40}
	r1, r2 := mac("52:54:00:0e:01:01"), mac("52:54:00:0e:02:01")
	var fabric, e1, e2, flood []frame
	e1 = append(e1, frame{1, arpFrame(r1, bcast, arp(1, r1, "203.0.113.1", nil, "203.0.113.1"))})
	e2 = append(e2, frame{1, arpFrame(r2, bcast, arp(1, r2, "198.51.100.1", nil, "198.51.100.1"))})
	sc.Notes = append(sc.Notes, "t=1 rx e1, e2: the upstream routers announce themselves (gratuitous ARP): learned")
	hostMAC := func(h int) []byte { return []byte{0x52, 0x54, 0x00, 0x01, 0x01, byte(h)} }
	for h := 10; h < 210; h++ {
		a := fmt.Sprintf("10.1.1.%d", h)
		sc.Hosts = append(sc.Hosts, a)
		fabric = append(fabric, frame{2, fromVTEP(uint16(h), arpFrame(hostMAC(h), bcast, arp(1, hostMAC(h), a, nil, "10.1.1.1")))})
	}
	sc.Notes = append(sc.Notes, "t=2 rx fabric: 200 vpc-1 hosts (10.1.1.10-209) ask for their router over VXLAN: answered, learned")
	for i := 0; i < sc.FlowCount; i++ {
		h := 10 + i%len(sc.Hosts)
		src, dst := sc.Hosts[i%len(sc.Hosts)], statefulDst(i)
		var l4 []gopacket.SerializableLayer
		switch i % 3 {
		case 0:
			l4 = tcpSYNWithMSS(uint16(30000+i), 443, uint32(i)*1000)
		case 1:
			l4 = udpDgram(uint16(40000+i), uint16(4500+i%7), "flow")
		default:
			l4 = echo(true, uint16(1000+i), 1, 16)
		}
		fabric = append(fabric, frame{3, fromVTEP(uint16(i), eth4(hostMAC(h), gw0, ipPkt(src, dst, 64, uint16(i+1), true, l4...)))})
	}
	sc.Notes = append(sc.Notes, fmt.Sprintf("t=3 rx fabric: %d flows from vpc-1 to the Internet (TCP SYN, UDP, ICMP echo in turn), masqueraded onto 192.168.1.0/30", sc.FlowCount))
	for i := 0; i < sc.FloodCount; i++ {
		flood = append(flood, frame{20, fromVTEP(uint16(i), eth4(hostMAC(250), gw0, ipPkt("10.1.1.250", "151.101.1.1", 64, uint16(i+1), true, udpDgram(uint16(20000+i), 9999, "x")...)))})
	}
	sc.Notes = append(sc.Notes, fmt.Sprintf("t=20 rx fabric (flood): 10.1.1.250 opens %d UDP flows to 151.101.1.1:9999: beyond its 4096 ports, dropped as nat_ports_exhausted", sc.FloodCount))

	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		port, file string
		fr         []frame
		m          map[string]string
	}{
		{"fabric", "in-fabric.pcap", fabric, sc.Flows},
		{"e1", "in-e1.pcap", e1, sc.Flows},
		{"e2", "in-e2.pcap", e2, sc.Flows},
		{"fabric", "in-fabric-flood.pcap", flood, sc.Flood},
	} {
		f.m[f.port] = f.file
		if err := writePcap(filepath.Join(dir, f.file), f.fr); err != nil {
			return err
		}
	}
	j, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "stateful.json"), append(j, '\n'), 0o644)
}
