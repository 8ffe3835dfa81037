package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// Offsets in a VXLAN frame built by floodFrames.vxlan (no VLAN tag, outer
// IHL 5).
const (
	outerIP  = 14
	outerUDP = outerIP + 20
	vxlanHdr = outerUDP + 8
	innerEth = vxlanHdr + 8
	innerIP  = innerEth + 14
)

// floodFrames builds the frames a host on the fabric sends to the
// gateway's data port: good VXLAN of vpc-1 (VNI 100) toward the vpc-2 host,
// then bent.
type floodFrames struct {
	gwMAC, hostMAC   net.HardwareAddr // outer: gw0, u0
	innerDst, vxMAC  net.HardwareAddr // inner: the gateway's MAC in vpc-1, vx100
	outerSrc, outerD net.IP
}

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(fmt.Sprintf("serialize flood frame: %v", err))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// inner is an Ethernet frame of vpc-1's host 10.0.0.2 to the vpc-2 host:
// UDP to the discard port with payload bytes, IP id and fragment offset
// (in 8-byte units) as given.
func (f *floodFrames) inner(id uint16, flags layers.IPv4Flag, fragOff uint16, payload int) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Flags: flags, FragOffset: fragOff, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 0, 0, 2).To4(), DstIP: net.IPv4(172, 31, 0, 2).To4()}
	eth := &layers.Ethernet{SrcMAC: f.vxMAC, DstMAC: f.innerDst, EthernetType: layers.EthernetTypeIPv4}
	data := gopacket.Payload(bytes.Repeat([]byte{0xa5}, payload))
	if fragOff != 0 {
		// A non-first fragment carries no UDP header: only bytes.
		return serialize(eth, ip, data)
	}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return serialize(eth, ip, udp, data)
}

// vxlan wraps an inner frame in VXLAN to the gateway's VTEP.
func (f *floodFrames) vxlan(vni uint32, inner []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP, SrcIP: f.outerSrc, DstIP: f.outerD}
	udp := &layers.UDP{SrcPort: 49152, DstPort: 4789}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return serialize(&layers.Ethernet{SrcMAC: f.hostMAC, DstMAC: f.gwMAC, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, &layers.VXLAN{ValidIDFlag: true, VNI: vni}, gopacket.Payload(inner))
}

// outerFragment returns, for even i, the first and, for odd i, the second
// outer IPv4 fragment of VXLAN packet i/2 (its own IP id): UDP, VXLAN and
// the inner frame's first 32 bytes, then the rest.
func (f *floodFrames) outerFragment(i int) []byte {
	whole := f.vxlan(100, f.inner(uint16(i/2), 0, 0, 64))
	const split = 40 // bytes of IP payload in the first fragment (8-byte units)
	id := uint16(30000 + i/2)
	var b []byte
	if i%2 == 0 {
		b = append(b, whole[:outerUDP+split]...)
		binary.BigEndian.PutUint16(b[outerIP+6:], 0x2000) // MF, offset 0
	} else {
		b = append(b, whole[:outerUDP]...)
		b = append(b, whole[outerUDP+split:]...)
		binary.BigEndian.PutUint16(b[outerIP+6:], split/8) // last, offset 40
	}
	binary.BigEndian.PutUint16(b[outerIP+2:], uint16(len(b)-outerIP))
	binary.BigEndian.PutUint16(b[outerIP+4:], id)
	fixIPv4Checksum(b, outerIP)
	return b
}

// fixIPv4Checksum recomputes the header checksum of the IPv4 header at off.
func fixIPv4Checksum(b []byte, off int) {
	ihl := int(b[off]&0x0f) * 4
	if ihl < 20 || off+ihl > len(b) {
		ihl = 20
	}
	b[off+10], b[off+11] = 0, 0
	var sum uint32
	for i := off; i < off+ihl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[off+10:], ^uint16(sum))
}

// floodKind is one kind of bad (or odd) traffic and what the gateway must
// make of it.
type floodKind struct {
	name string
	// reason is the drop reason each frame must be counted under; "" when
	// the frames are forwarded by design: then the vpc-2 host's
	// /proc/net/snmp counter arrived ("Ip ReasmReqds") must grow by
	// perFrame times the frames sent.
	reason   string
	arrived  [2]string
	perFrame float64
	frame    func(i int) []byte
}

func (f *floodFrames) kinds() []floodKind {
	good := func(i int) []byte { return f.vxlan(100, f.inner(uint16(i), 0, 0, 64)) }
	bend := func(fix bool, edit func(b []byte)) func(int) []byte {
		return func(i int) []byte {
			b := good(i)
			edit(b)
			if fix {
				fixIPv4Checksum(b, outerIP)
			}
			return b
		}
	}
	return []floodKind{
		{name: "VXLAN whose outer IPv4 total length runs past the frame", reason: "malformed",
			frame: bend(true, func(b []byte) { binary.BigEndian.PutUint16(b[outerIP+2:], uint16(len(b)-outerIP+200)) })},
		{name: "IPv4 to the VTEP with a header length of 12 bytes (IHL 3)", reason: "malformed",
			frame: bend(true, func(b []byte) { b[outerIP] = 0x43 })},
		{name: "VXLAN truncated: the inner frame is shorter than an Ethernet header", reason: "malformed",
			frame: bend(true, func(b []byte) { binary.BigEndian.PutUint16(b[outerIP+2:], 20+8+8+6) })},
		{name: "VXLAN header without the valid-VNI flag", reason: "malformed",
			frame: bend(false, func(b []byte) { b[vxlanHdr] = 0 })},
		{name: "VXLAN carrying IPv4 with a header length of 16 bytes (IHL 4)", reason: "malformed",
			frame: bend(false, func(b []byte) { b[innerIP] = 0x44 })},
		{name: "VXLAN carrying IPv4 with a bad header checksum", reason: "ipv4_bad_checksum",
			frame: bend(false, func(b []byte) { b[innerIP+10] ^= 0xff })},
		// DPDK's af_packet PMD joins its socket to a fanout group with
		// PACKET_FANOUT_FLAG_DEFRAG: the kernel reassembles outer fragments
		// before the pipeline sees them (and holds incomplete ones until
		// they time out), so a fragmented tunnel packet arrives whole and
		// is forwarded; the inner UDP to the discard port counts in the
		// vpc-2 host's Udp NoPorts.
		{name: "VXLAN packets split in two outer IPv4 fragments, reassembled by the af_packet port and forwarded",
			arrived: [2]string{"Udp", "NoPorts"}, perFrame: 0.5,
			frame: func(i int) []byte { return f.outerFragment(i) }},
		{name: "VXLAN with the unknown VNI 999", reason: "unknown_vni",
			frame: func(i int) []byte { return f.vxlan(999, f.inner(uint16(i), 0, 0, 64)) }},
		{name: "802.1Q VLAN 777, which no VPC uses, on the fabric port", reason: "unknown_vlan",
			frame: func(i int) []byte {
				ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: f.outerSrc, DstIP: f.outerD}
				udp := &layers.UDP{SrcPort: 40000, DstPort: 9}
				_ = udp.SetNetworkLayerForChecksum(ip)
				return serialize(&layers.Ethernet{SrcMAC: f.hostMAC, DstMAC: f.gwMAC, EthernetType: layers.EthernetTypeDot1Q},
					&layers.Dot1Q{VLANIdentifier: 777, Type: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(make([]byte, 32)))
			}},
		{name: "oversized: 1600-byte inner packets with DF clear, beyond vpc-2's MTU 1500", reason: "fragmentation_needed_df_clear",
			frame: func(i int) []byte { return f.vxlan(100, f.inner(uint16(i), 0, 0, 1600-28)) }},
		{name: "oversized: 1600-byte inner packets with DF set, beyond vpc-2's MTU 1500", reason: "too_big",
			frame: func(i int) []byte { return f.vxlan(100, f.inner(uint16(i), layers.IPv4DontFragment, 0, 1600-28)) }},
		{name: "inner IPv4 fragments (non-first, offset 1480), forwarded by design",
			arrived: [2]string{"Ip", "ReasmReqds"}, perFrame: 1,
			frame: func(i int) []byte { return f.vxlan(100, f.inner(uint16(20000+i), 0, 185, 64)) }},
	}
}

// rawSocket sends whole Ethernet frames out of one interface of a
// namespace (AF_PACKET: the socket stays in the namespace it was made in).
type rawSocket struct {
	fd  int
	sll unix.SockaddrLinklayer
}

func openRaw(ns, ifname string) (*rawSocket, error) {
	r := &rawSocket{fd: -1}
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		r.fd = fd
		r.sll = unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raw socket on %s in %s: %w", ifname, ns, err)
	}
	return r, nil
}

func (r *rawSocket) close() { unix.Close(r.fd) }

// send sends one frame, retrying while the device queue is full.
func (r *rawSocket) send(b []byte) error {
	for tries := 0; ; tries++ {
		err := unix.Sendto(r.fd, b, 0, &r.sll)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) || tries > 1000 {
			return fmt.Errorf("send %d-byte frame: %w", len(b), err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// flood sends n frames of a kind paced in bursts of 16 every 4 ms (at
// most 4 000 frames/s: af_packet's 512-frame ring then absorbs a worker
// descheduled for 120 ms on a loaded 2-core machine, so every frame
// reaches the pipeline and must be counted there; a frame the kernel drops
// from a full ring is counted nowhere: the port's rx_dropped did not move
// when a 60 ms stall at 8 000 frames/s lost 49 frames).
func (r *rawSocket) flood(n int, frame func(int) []byte) error {
	for i := 0; i < n; i++ {
		if err := r.send(frame(i)); err != nil {
			return err
		}
		if i%16 == 15 {
			time.Sleep(4 * time.Millisecond)
		}
	}
	return nil
}

// missingSeqs returns the echo sequence numbers ping printed no reply for
// below the highest it printed one for, and that highest.
func missingSeqs(out string) (missing []int, last int) {
	seen := map[int]bool{}
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "icmp_seq="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				seen[n] = true
				last = max(last, n)
			}
		}
	}
	for i := 1; i < last; i++ {
		if !seen[i] {
			missing = append(missing, i)
		}
	}
	return missing, last
}

func ifaceMAC(ns, name string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(name)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	})
	return mac, err
}

// snmpCounter reads one counter of /proc/net/snmp in namespace ns (e.g.
// "Ip", "ReasmReqds").
func snmpCounter(ns, group, name string) (uint64, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		return 0, fmt.Errorf("read /proc/net/snmp in %s: %w", ns, err)
	}
	var head []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != group+":" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i := range head {
			if head[i] == name && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/net/snmp in %s: no %s %s", ns, group, name)
}

// floods sends each kind of bad traffic into the fabric port while the
// hosts ping each other, and checks each kind is dropped under its reason
// (or forwarded, for what is forwarded by design), the ping loses nothing
// and the dataplane still runs.
func floods(t *testing.T, g *gateway) {
	const n = 1000
	var f floodFrames
	var err error
	if f.gwMAC, err = ifaceMAC(g.gw, "gw0"); err != nil {
		t.Fatal(err)
	}
	if f.hostMAC, err = ifaceMAC(g.h1, "u0"); err != nil {
		t.Fatal(err)
	}
	if f.vxMAC, err = ifaceMAC(g.h1, "vx100"); err != nil {
		t.Fatal(err)
	}
	f.innerDst = f.gwMAC
	// The gateway's MAC in vpc-1, as the host resolved it (pings ran).
	if out := g.ns(g.h1, "ip", "neigh", "show", "10.0.0.1", "dev", "vx100"); strings.Contains(out, "lladdr") {
		fs := strings.Fields(out[strings.Index(out, "lladdr"):])
		if len(fs) > 1 {
			if m, err := net.ParseMAC(fs[1]); err == nil {
				f.innerDst = m
			}
		}
	}
	f.outerSrc, f.outerD = net.IPv4(192, 0, 2, 10).To4(), net.IPv4(192, 0, 2, 1).To4()

	raw, err := openRaw(g.h1, "u0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	// Jumbo frames need both ends of the fabric veth to carry them; the
	// dataplane's port MTU (1500) is what the pipeline enforces.
	g.ip("-n", g.h1, "link", "set", "u0", "mtu", "9000")
	g.ip("-n", g.gw, "link", "set", "gw0", "mtu", "9000")
	defer func() {
		g.ip("-n", g.gw, "link", "set", "gw0", "mtu", "1500")
		g.ip("-n", g.h1, "link", "set", "u0", "mtu", "1500")
	}()

	pinger := exec.Command("ip", "netns", "exec", g.h1, "ping", "-n", "-i", "0.05", "-W", "1", "172.31.0.2")
	var pingOut bytes.Buffer
	pinger.Stdout, pinger.Stderr = &pingOut, &pingOut
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	pingDone := make(chan error, 1)
	go func() { pingDone <- pinger.Wait() }()
	stopPing := func() {
		if pinger.ProcessState == nil {
			_ = pinger.Process.Signal(unix.SIGINT)
		}
	}
	defer stopPing()
	time.Sleep(300 * time.Millisecond)
	start := g.dpMetrics(t)

	for _, k := range f.kinds() {
		before := g.dpMetrics(t)
		var arrived0 uint64
		if k.reason == "" {
			if arrived0, err = snmpCounter(g.h2, k.arrived[0], k.arrived[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := raw.flood(n, k.frame); err != nil {
			t.Fatalf("flood %s: %v", k.name, err)
		}
		// Counters are summed at each scrape: wait until the pipeline has
		// counted the flood (a hang guard, not a speed assertion).
		series := `peergate_dataplane_port_rx_packets_total{port="fabric"}`
		drops := fmt.Sprintf(`peergate_dataplane_drops_total{reason=%q}`, k.reason)
		deadline := time.Now().Add(5 * time.Second)
		var after sample
		for {
			after = g.dpMetrics(t)
			if k.reason == "" || after[drops]-before[drops] >= n || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if k.reason != "" {
			s := drops
			t.Logf("%s: %s +%v (fabric rx +%v, rx dropped +%v)", k.name, s, after[s]-before[s], after[series]-before[series],
				after[`peergate_dataplane_port_rx_dropped_total{port="fabric"}`]-before[`peergate_dataplane_port_rx_dropped_total{port="fabric"}`])
			grew(t, "dataplane, after "+k.name, before, after, n, s)
			continue
		}
		// Forwarded by design: each packet reaches the vpc-2 host.
		want := uint64(float64(n) * k.perFrame)
		deadline = time.Now().Add(5 * time.Second)
		var got uint64
		for {
			v, err := snmpCounter(g.h2, k.arrived[0], k.arrived[1])
			if err != nil {
				t.Fatal(err)
			}
			if got = v - arrived0; got >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s: vpc-2 host's %s %s +%d, vpc2 tx +%v", k.name, k.arrived[0], k.arrived[1], got,
			after[`peergate_dataplane_port_tx_packets_total{port="vpc2"}`]-before[`peergate_dataplane_port_tx_packets_total{port="vpc2"}`])
		if got < want {
			t.Errorf("%s: the vpc-2 host's %s %s grew by %d, want %d", k.name, k.arrived[0], k.arrived[1], got, want)
		}
	}

	// The ping goes on a while after the floods: a request sent during
	// them and lost leaves a gap below the last answered sequence number
	// (SIGINT counts the requests still in flight as lost: not a gap).
	time.Sleep(1500 * time.Millisecond)
	stopPing()
	<-pingDone
	out := pingOut.String()
	// On this 2-core shared machine under load 10+, one or two requests in
	// a hundred are sometimes lost during the floods without any drop
	// counter of the dataplane moving (not on the pipeline's ports: every
	// flood frame is counted; the veths' and the hosts' counters are
	// logged to find where): up to 3 % is tolerated, forwarding must go on.
	missing, last := missingSeqs(out)
	if len(missing) > 0 || last < 20 {
		t.Logf("ping during the floods: %d requests unanswered before the last answered (icmp_seq %d): %v\n%s",
			len(missing), last, missing, tail(pingOut.Bytes(), 300))
		end := g.dpMetrics(t)
		for k, v := range end {
			if (strings.Contains(k, "drop") || strings.Contains(k, "packets_total")) && v != start[k] {
				t.Logf("during the floods: %s +%v", k, v-start[k])
			}
		}
		for _, l := range [][2]string{{g.h1, "u0"}, {g.gw, "gw0"}, {g.gw, "gw1"}, {g.h2, "e0"}} {
			t.Logf("%s: %s", l[1], strings.Join(strings.Fields(g.ns(l[0], "ip", "-s", "link", "show", l[1])), " "))
		}
		for _, ns := range []string{g.h1, g.h2} {
			for _, c := range [][2]string{{"Ip", "InDiscards"}, {"Icmp", "InErrors"}, {"Icmp", "OutErrors"}, {"Ip", "OutDiscards"}} {
				v, _ := snmpCounter(ns, c[0], c[1])
				t.Logf("%s: %s %s %d", ns, c[0], c[1], v)
			}
		}
	}
	if last < 20 || len(missing) > max(2, last*3/100) {
		t.Errorf("ping between the VPC hosts during the floods: %d of %d requests unanswered (icmp_seq %v), want at most 3%%", len(missing), last, missing)
	} else {
		t.Logf("ping during and after the floods: %d of the %d requests before the last answered one unanswered; %s", len(missing), last,
			strings.TrimSpace(out[strings.LastIndex(out, "---")+3:]))
	}
	select {
	case <-g.dp.done:
		t.Fatalf("the dataplane exited during the floods: %v", g.dp.err)
	default:
	}
	if v, _ := g.dpMetrics(t).get("peergate_dataplane_forwarding"); v != 1 {
		t.Errorf("after the floods: peergate_dataplane_forwarding = %v, want 1", v)
	}
}
