// Package replay drives the pipeline from pcap files instead of NIC ports:
// it reads the packets each port received, feeds them through one worker in
// timestamp order, and writes what the gateway sent on each port to a pcap
// file per port. It is the pipeline's test and benchmark harness and the
// engine of `dataplane replay`; it does no compilation (the caller passes
// tables) and must not import the controlplane.
package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/pipeline"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Input is one pcap of packets received on a port (by name or id).
type Input struct {
	Port string
	Path string
}

// ParseInput parses "PORT=FILE".
func ParseInput(s string) (Input, error) {
	i := bytes.IndexByte([]byte(s), '=')
	if i <= 0 || i == len(s)-1 {
		return Input{}, fmt.Errorf("--in %q: want PORT=FILE.pcap", s)
	}
	return Input{Port: s[:i], Path: s[i+1:]}, nil
}

// Packet is one received or sent frame.
type Packet struct {
	Time time.Time
	Port uint16
	Data []byte
}

// Report is what a replay did, printed as JSON by `dataplane replay`.
type Report struct {
	Generation uint64               `json:"generation"`
	PacketsIn  uint64               `json:"packets_in"`
	PacketsOut uint64               `json:"packets_out"`
	Ports      map[string]PortStats `json:"ports"`
	Drops      map[string]uint64    `json:"drops"`
	Events     map[string]uint64    `json:"events"`
	Verdicts   map[string]uint64    `json:"verdicts"`
	// VPCs counts what each VPC's hosts sent, Peerings what crossed each
	// peering (omitted when empty).
	VPCs     map[string]Traffic `json:"vpcs,omitempty"`
	Peerings map[string]Traffic `json:"peerings,omitempty"`
	// NAT is the stateful NAT's session counters (when the tables have
	// pools); its drops are in Drops (nat_unsolicited, ...).
	NAT *NATReport `json:"nat,omitempty"`
}

// Traffic counts packets and bytes.
type Traffic struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// NATReport is the stateful NAT's session counters.
type NATReport struct {
	Sessions uint64 `json:"sessions"`
	Created  uint64 `json:"sessions_created"`
	Expired  uint64 `json:"sessions_expired"`
	Killed   uint64 `json:"sessions_killed"`
}

// PortStats counts one port's packets.
type PortStats struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

// Options tune a replay.
type Options struct {
	Pipeline pipeline.Config
	// Burst is the largest burst handed to the pipeline (default 32).
	// Consecutive packets are grouped only while their timestamps are equal,
	// so learning from one packet always precedes the packets after it.
	Burst int
}

// PortID resolves a port given by name or numeric id.
func PortID(t *tablesv1.Tables, name string) (uint16, error) {
	for _, p := range t.GetPorts() {
		if p.GetName() == name {
			return uint16(p.GetId()), nil
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < len(t.GetPorts()) {
		return uint16(n), nil
	}
	return 0, fmt.Errorf("port %q: not in the gateway's ports", name)
}

// ReadInputs reads every input pcap and merges the packets by timestamp
// (stable: equal timestamps keep file order, then input order).
func ReadInputs(t *tablesv1.Tables, in []Input) ([]Packet, error) {
	var all []Packet
	for _, i := range in {
		port, err := PortID(t, i.Port)
		if err != nil {
			return nil, err
		}
		pk, err := ReadFile(i.Path, port)
		if err != nil {
			return nil, err
		}
		all = append(all, pk...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Time.Before(all[b].Time) })
	return all, nil
}

// ReadFile reads a pcap or pcapng file of Ethernet frames.
func ReadFile(path string, port uint16) ([]Packet, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	if len(raw) >= 4 && bytes.Equal(raw[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		src = r
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			return nil, fmt.Errorf("read %s: link type %v, want Ethernet", path, r.LinkType())
		}
		src = r
	}
	var out []Packet
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: packet %d: %w", path, len(out)+1, err)
		}
		out = append(out, Packet{Time: ci.Timestamp, Port: port, Data: append([]byte(nil), data...)})
	}
}

// Run feeds packets through a pipeline built from t and returns the packets
// sent, in order, with the report.
func Run(t *tablesv1.Tables, packets []Packet, o Options) ([]Packet, *Report, error) {
	r, err := New(t, o)
	if err != nil {
		return nil, nil, err
	}
	sent := r.Feed(packets)
	sent = append(sent, r.Finish()...)
	return sent, r.Report(), nil
}

// Replayer is one pipeline with one worker fed in several rounds: tests
// that must answer what the gateway sent (stateful NAT replies carry the
// public port it chose) feed a round, look at its output, and feed the next
// round to the same pipeline, sessions and neighbours.
type Replayer struct {
	t     *tablesv1.Tables
	o     Options
	pl    *pipeline.Pipeline
	h     fib.Holder
	w     *pipeline.Worker
	out   pipeline.Output
	burst []*pipeline.Buf
	last  time.Time
	in    uint64
	sent  uint64
}

// New builds the pipeline of t for a replay.
func New(t *tablesv1.Tables, o Options) (*Replayer, error) {
	snap, err := fib.Build(t, fib.Options{})
	if err != nil {
		return nil, err
	}
	if o.Burst <= 0 {
		o.Burst = 32
	}
	r := &Replayer{t: t, o: o}
	r.h.Store(snap)
	r.pl = pipeline.New(&r.h, o.Pipeline)
	r.w = r.pl.NewWorker(0, &Pool{})
	r.burst = make([]*pipeline.Buf, 0, o.Burst)
	return r, nil
}

// Pipeline returns the replay's pipeline (sessions, counters).
func (r *Replayer) Pipeline() *pipeline.Pipeline { return r.pl }

func (r *Replayer) collect(sent []Packet, ts time.Time, bufs []*pipeline.Buf) []Packet {
	for _, b := range bufs {
		if b.Verdict == pipeline.VerdictTx {
			sent = append(sent, Packet{Time: ts, Port: b.OutPort, Data: append([]byte(nil), b.Bytes()...)})
		}
	}
	return sent
}

// Feed processes packets (in timestamp order) and returns what the gateway
// sent meanwhile.
func (r *Replayer) Feed(packets []Packet) []Packet {
	var sent []Packet
	for i := 0; i < len(packets); {
		ts := packets[i].Time
		r.burst = r.burst[:0]
		for i < len(packets) && len(r.burst) < r.o.Burst && packets[i].Time.Equal(ts) {
			r.burst = append(r.burst, NewBuf(packets[i].Data, packets[i].Port))
			i++
		}
		r.out.Reset()
		r.w.ProcessBurst(ts.UnixNano(), r.burst, &r.out)
		sent = r.collect(sent, ts, r.burst)
		sent = r.collect(sent, ts, r.out.Extra)
		r.last = ts
	}
	r.in += uint64(len(packets))
	r.sent += uint64(len(sent))
	return sent
}

// Finish advances the clock past the hold timeout so every packet is
// accounted for, and returns what that released.
func (r *Replayer) Finish() []Packet {
	hold := r.o.Pipeline.HoldTimeout
	if hold <= 0 {
		hold = 3 * time.Second
	}
	r.out.Reset()
	r.w.Tick(r.last.Add(hold+time.Second).UnixNano(), &r.out)
	sent := r.collect(nil, r.last, r.out.Extra)
	r.sent += uint64(len(sent))
	return sent
}

// Report sums the counters so far (call after Finish for a final one).
func (r *Replayer) Report() *Report {
	r.w.Tick(r.last.UnixNano(), &r.out) // publishes the worker's counters
	c := r.pl.Counters()
	rep := &Report{Generation: r.t.GetGeneration(), PacketsIn: r.in, PacketsOut: r.sent,
		Ports: map[string]PortStats{}, Drops: c.DropsByName(), Events: c.EventsByName(), Verdicts: map[string]uint64{}}
	for i, p := range r.t.GetPorts() {
		if i >= pipeline.MaxPorts {
			break
		}
		pc := c.Ports[i]
		rep.Ports[p.GetName()] = PortStats{RxPackets: pc.RxPackets, RxBytes: pc.RxBytes, TxPackets: pc.TxPackets, TxBytes: pc.TxBytes}
	}
	for v, n := range c.Verdicts {
		if n != 0 {
			rep.Verdicts[pipeline.Verdict(v).String()] = n
		}
	}
	vpcs, peerings := r.pl.Traffic()
	for _, v := range vpcs {
		if rep.VPCs == nil {
			rep.VPCs = map[string]Traffic{}
		}
		rep.VPCs[v.GetName()] = Traffic{Packets: v.GetPackets(), Bytes: v.GetBytes()}
	}
	for _, v := range peerings {
		if rep.Peerings == nil {
			rep.Peerings = map[string]Traffic{}
		}
		rep.Peerings[v.GetName()] = Traffic{Packets: v.GetPackets(), Bytes: v.GetBytes()}
	}
	if nc, ok := r.pl.NATCounters(); ok {
		rep.NAT = &NATReport{Sessions: nc.Sessions, Created: nc.Created, Expired: nc.Expired, Killed: nc.Killed}
	}
	return rep
}

// WriteOutputs writes the sent packets to dir/<port name>.pcap, one file per
// port of t (empty when nothing was sent on it).
func WriteOutputs(t *tablesv1.Tables, sent []Packet, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	byPort := map[uint16][]Packet{}
	for _, p := range sent {
		byPort[p.Port] = append(byPort[p.Port], p)
	}
	for _, port := range t.GetPorts() {
		path := filepath.Join(dir, port.GetName()+".pcap")
		if err := WriteFile(path, byPort[uint16(port.GetId())]); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes Ethernet frames to a pcap file.
func WriteFile(path string, pk []Packet) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	for _, p := range pk {
		ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}
		if err := w.WritePacket(ci, p.Data); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// BufSize is the buffer size of the replay pool (headroom + a jumbo frame).
const BufSize = pipeline.Headroom + 9216

// NewBuf copies a frame into a fresh buffer with headroom.
func NewBuf(data []byte, port uint16) *pipeline.Buf {
	n := max(BufSize, pipeline.Headroom+len(data))
	mem := make([]byte, n)
	copy(mem[pipeline.Headroom:], data)
	return &pipeline.Buf{Mem: mem, Off: pipeline.Headroom, Len: len(data), InPort: port}
}

// Pool is a heap-backed pipeline.Allocator for replay and tests.
type Pool struct {
	free []*pipeline.Buf
	// Limit caps outstanding buffers (0 = none).
	Limit, out int
}

// Alloc returns a buffer with Headroom in front.
func (p *Pool) Alloc() *pipeline.Buf {
	if p.Limit > 0 && p.out >= p.Limit {
		return nil
	}
	p.out++
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		*b = pipeline.Buf{Mem: b.Mem, Off: pipeline.Headroom}
		return b
	}
	return &pipeline.Buf{Mem: make([]byte, BufSize), Off: pipeline.Headroom}
}

// Free takes a buffer back.
func (p *Pool) Free(b *pipeline.Buf) {
	p.out--
	p.free = append(p.free, b)
}
