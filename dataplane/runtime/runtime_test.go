package runtime

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/peergate/peergate/dataplane/pipeline"
)

// writePcap writes n UDP packets numbered in their payload.
func writePcap(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		data := udpFrame(i)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, 0), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func udpFrame(i int) []byte {
	payload := make([]byte, 18)
	binary.BigEndian.PutUint32(payload, uint32(i))
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: layers.UDPPort(1000 + i%100), DstPort: 4789}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload))
	return buf.Bytes()
}

// waitFor polls cond until it holds; the generous deadline only catches a
// hang, it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newRuntime(t *testing.T, cfg Config, np NewProcessor) *Runtime {
	t.Helper()
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Logger == nil && !testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r, err := New(cfg, np)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

// churn is a test processor that exercises every verdict and the
// allocator: by packet number it forwards, drops, holds (released on the
// next Tick, or given back with Free), and generates copies.
type churn struct {
	alloc pipeline.Allocator
	out   uint16
	held  []*pipeline.Buf
}

func (c *churn) ProcessBurst(now int64, in []*pipeline.Buf, out *pipeline.Output) {
	for _, b := range in {
		i := binary.BigEndian.Uint32(b.Bytes()[42:])
		switch i % 5 {
		case 0:
			b.Verdict, b.OutPort = pipeline.VerdictTx, c.out
		case 1:
			b.Verdict = pipeline.VerdictDrop
		case 2, 3:
			b.Verdict = pipeline.VerdictHeld
			c.held = append(c.held, b)
		case 4:
			b.Verdict = pipeline.VerdictDrop
			if g := c.alloc.Alloc(); g != nil {
				g.Len = copy(g.Mem[g.Off:], b.Bytes())
				g.Verdict, g.OutPort = pipeline.VerdictTx, c.out
				out.Extra = append(out.Extra, g)
			}
		}
	}
}

func (c *churn) Tick(now int64, out *pipeline.Output) {
	for _, b := range c.held {
		if binary.BigEndian.Uint32(b.Bytes()[42:])%5 == 2 {
			b.Verdict, b.OutPort = pipeline.VerdictTx, c.out
			out.Extra = append(out.Extra, b)
		} else {
			c.alloc.Free(b)
		}
	}
	c.held = c.held[:0]
}

func TestPcapToNullForwardsEveryPacket(t *testing.T) {
	needEAL(t)
	const n = 1000
	pcap := writePcap(t, n)
	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 1, Name: "in", Device: "net_pcap_fw0,rx_pcap=" + pcap},
		{ID: 2, Name: "out", Device: "net_null_fw0,no-rx=1"},
	}}, func(int, pipeline.Allocator) Processor { return NewForward(false, [2]uint16{1, 2}) })
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all packets sent", func() bool { s, _ := r.Stats(); return s.Total.TxPackets == n })
	r.Stop()
	s, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.RxPackets != n || s.Ports[1].OPackets != n || s.Ports[0].IPackets != n {
		t.Fatalf("stats: %+v", s)
	}
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d after traffic, baseline %d", got, base)
	}
}

func TestEveryVerdictReturnsItsMbufToThePool(t *testing.T) {
	needEAL(t)
	const n = 2000
	pcap := writePcap(t, n)
	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 3, Name: "in", Device: "net_pcap_churn0,rx_pcap=" + pcap},
		{ID: 7, Name: "out", Device: "net_null_churn0,no-rx=1"},
	}}, func(_ int, a pipeline.Allocator) Processor { return &churn{alloc: a, out: 7} })
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// 1/5 forwarded, 1/5 generated copies, half of the 2/5 held released.
	want := uint64(n/5 + n/5 + n/5)
	waitFor(t, "forwarded, generated and released packets", func() bool {
		s, _ := r.Stats()
		if s.Total.TxPackets > want {
			t.Fatalf("sent %d, want %d: %+v", s.Total.TxPackets, want, s.Total)
		}
		return s.Total.TxPackets == want
	})
	r.Stop()
	s, _ := r.Stats()
	if s.Total.Held != 2*n/5 || s.Total.Dropped != 2*n/5 || s.Total.Generated != 2*n/5 {
		t.Fatalf("worker stats: %+v", s.Total)
	}
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d after forward, drop, hold, free and alloc, baseline %d", got, base)
	}
}

func TestHeldBuffersAreReleasedAtShutdown(t *testing.T) {
	needEAL(t)
	pcap := writePcap(t, 500)
	var procs []*holdAll
	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 0, Name: "in", Device: "net_pcap_hold0,rx_pcap=" + pcap},
		{ID: 1, Name: "out", Device: "net_null_hold0,no-rx=1"},
	}}, func(_ int, a pipeline.Allocator) Processor {
		p := &holdAll{alloc: a}
		procs = append(procs, p)
		return p
	})
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all packets held", func() bool { s, _ := r.Stats(); return s.Total.Held == 500 })
	if got := r.MbufsInUse(); got != base+500 {
		t.Fatalf("mbufs in use %d while 500 are held, baseline %d", got, base)
	}
	r.Stop()
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d after shutdown, baseline %d", got, base)
	}
	if !procs[0].released {
		t.Fatal("processor was not told to release at shutdown")
	}
}

// holdAll holds everything until the final Tick.
type holdAll struct {
	alloc    pipeline.Allocator
	held     []*pipeline.Buf
	released bool
}

func (h *holdAll) ProcessBurst(now int64, in []*pipeline.Buf, out *pipeline.Output) {
	for _, b := range in {
		b.Verdict = pipeline.VerdictHeld
		h.held = append(h.held, b)
	}
}

func (h *holdAll) Tick(now int64, out *pipeline.Output) {
	if now != 1<<63-1 {
		return
	}
	h.released = true
	for _, b := range h.held {
		h.alloc.Free(b)
	}
	h.held = nil
}

func TestBadOutputPortIsDroppedAndCounted(t *testing.T) {
	needEAL(t)
	pcap := writePcap(t, 100)
	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 0, Name: "in", Device: "net_pcap_bad0,rx_pcap=" + pcap},
	}}, func(int, pipeline.Allocator) Processor { return NewForward(false, [2]uint16{0, 9}) })
	if mac := r.PortMAC(0); mac == ([6]byte{}) || net.HardwareAddr(mac[:]).String() != r.Ports()[0].MAC.String() {
		t.Fatalf("PortMAC(0) = %v, port MAC %v", mac, r.Ports()[0].MAC)
	}
	if r.PortMAC(9) != ([6]byte{}) {
		t.Fatal("PortMAC of an unknown port is not zero")
	}
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bad port drops", func() bool { s, _ := r.Stats(); return s.Total.BadOutPort == 100 })
	r.Stop()
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d, baseline %d", got, base)
	}
}

func TestTwoWorkersShareASingleQueuePort(t *testing.T) {
	needEAL(t)
	const n = 3000
	pcap := writePcap(t, n)
	r := newRuntime(t, Config{Workers: 2, Cores: []int{0, 0}, Ports: []PortConfig{
		{ID: 0, Name: "in", Device: "net_pcap_two0,rx_pcap=" + pcap},
		{ID: 1, Name: "out", Device: "net_null_two0,no-rx=1"},
	}}, func(int, pipeline.Allocator) Processor { return NewForward(true, [2]uint16{0, 1}) })
	ports := r.Ports()
	if ports[0].RxQueues != 1 || ports[1].TxQueues != 2 {
		t.Fatalf("queues: %+v", ports)
	}
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all packets sent", func() bool { s, _ := r.Stats(); return s.Total.TxPackets == n })
	r.Stop()
	s, _ := r.Stats()
	if len(s.Workers) != 2 || s.Ports[1].OPackets != n {
		t.Fatalf("stats: %+v", s)
	}
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d, baseline %d", got, base)
	}
}

func TestConfigErrorsNameThePort(t *testing.T) {
	needEAL(t)
	cases := []struct {
		name  string
		ports []PortConfig
	}{
		{"no ports", nil},
		{"a port without a device", []PortConfig{{ID: 1, Name: "a"}}},
		{"two ports with one id", []PortConfig{{ID: 1, Name: "a", Device: "net_null_x0"}, {ID: 1, Name: "b", Device: "net_null_x1"}}},
		{"an unknown driver", []PortConfig{{ID: 1, Name: "a", Device: "net_nosuch0"}}},
		{"a punt interface name too long", []PortConfig{{ID: 1, Name: "a", Device: "net_null_x2", Punt: true, PuntIface: "averyveryverylongname"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(Config{Ports: c.ports}, func(int, pipeline.Allocator) Processor { return PuntAll{} })
			if err == nil {
				t.Fatal("New succeeded")
			}
			t.Log(err)
		})
	}
	// A failed New must leave nothing attached.
	r := newRuntime(t, Config{Ports: []PortConfig{{ID: 1, Name: "a", Device: "net_null_x0"}}},
		func(int, pipeline.Allocator) Processor { return PuntAll{} })
	if got := fmt.Sprint(r.Ports()[0].Name); got != "a" {
		t.Fatal(got)
	}
}
