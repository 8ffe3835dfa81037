package nat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/peergate/peergate/flowtable"
)

func benchNAT(b *testing.B, capacity int, to flowtable.Timeouts) *Stateful {
	b.Helper()
	s, err := NewStateful(Config{Capacity: capacity, Timeouts: to, Generation: 1, Seed: 3, Pools: []Pool{
		{ID: 1, VPC: 1, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/22")}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkTranslateEstablished: ns per packet for bursts of 32 UDP packets
// of existing sessions through Translate (parse, hash, prefetch, lock-free
// lookup, source rewrite with incremental checksums). Each burst's bytes are
// restored from a pristine copy first (about 1 ns per packet of the figure).
func BenchmarkTranslateEstablished(b *testing.B) {
	for _, n := range []int{1000, 1 << 20} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s := benchNAT(b, n+n/8, flowtable.DefaultTimeouts())
			// The packets sit back to back in a random order of the
			// sessions, as a NIC would hand them over: the benchmark reads
			// them sequentially while the sessions they hit are scattered.
			const rec = 64
			pristine := make([]byte, n*rec)
			plen := 0
			for i := 0; i < n; i++ {
				src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				p := udpPkt(b, src.String(), uint16(1000+i%50000), "8.8.8.8", 53)
				plen = len(p)
				if r := s.TranslatePacket(sec, append([]byte(nil), p...), 1, 2, 1, false); r != OK {
					b.Fatalf("setup %d: %v", i, r)
				}
				copy(pristine[i*rec:], p)
			}
			rnd := uint64(88172645463325252)
			tmp := make([]byte, rec)
			for i := n - 1; i > 0; i-- {
				rnd ^= rnd << 13
				rnd ^= rnd >> 7
				rnd ^= rnd << 17
				j := int(rnd % uint64(i+1))
				copy(tmp, pristine[i*rec:(i+1)*rec])
				copy(pristine[i*rec:(i+1)*rec], pristine[j*rec:(j+1)*rec])
				copy(pristine[j*rec:(j+1)*rec], tmp)
			}
			reqs := make([]Request, burst)
			bufs := make([][]byte, burst)
			for i := range bufs {
				bufs[i] = make([]byte, 64)
				reqs[i] = Request{SrcVPC: 1, DstVPC: 2, Pool: 1}
			}
			b.ReportAllocs()
			cpu := startCPU(b)
			b.ResetTimer()
			for i := 0; i < b.N; i += burst {
				base := i % (n - burst)
				for k := range reqs {
					buf := bufs[k][:plen]
					copy(buf, pristine[(base+k)*rec:])
					reqs[k].Packet = buf
				}
				s.Translate(2*sec, reqs)
			}
			b.StopTimer()
			cpu.report(b)
			for _, q := range reqs {
				if q.Result != OK {
					b.Fatal(q.Result)
				}
			}
		})
	}
}

// BenchmarkNewSessions: sessions created per second through Outbound (pool
// address, host block, random port, both index entries) in steady churn, 64
// sweep slots per 32 packets, 1 M capacity.
func BenchmarkNewSessions(b *testing.B) {
	const capacity = 1 << 20
	to := flowtable.DefaultTimeouts()
	to.UDP = time.Second
	s := benchNAT(b, capacity, to)
	now := int64(0)
	dropped := 0
	b.ReportAllocs()
	cpu := startCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%(capacity/4) == 0 {
			now += int64(time.Second)
		}
		k := Key{VPC: 1, Proto: ipProtoUDP, Src: 0x0a000000 + uint32(i>>8), Dst: 0x08000000 + uint32(i&1023)*7919, SrcPort: uint16(i), DstPort: 53}
		if _, _, r := s.Outbound(1, &k, 0, now); r != OK {
			dropped++
		}
		if i%32 == 31 {
			s.Sweep(now, 64)
		}
	}
	b.StopTimer()
	cpu.report(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Msessions/s")
	b.ReportMetric(float64(dropped), "dropped")
}

// BenchmarkBytesPerSession reports the NAT's memory per session of capacity.
func BenchmarkBytesPerSession(b *testing.B) {
	var s *Stateful
	for i := 0; i < b.N; i++ {
		s = benchNAT(b, 1<<20, flowtable.DefaultTimeouts())
	}
	b.ReportMetric(float64(s.Bytes())/float64(1<<20), "bytes/session")
}

// BenchmarkTranslateNewSessions: ns per packet for bursts of 32 UDP packets
// that each open a new session through Translate (lookup miss, then the
// burst's creations prefetched together), in steady churn with 64 sweep
// slots per burst, 1 M capacity.
func BenchmarkTranslateNewSessions(b *testing.B) {
	const capacity = 1 << 20
	to := flowtable.DefaultTimeouts()
	to.UDP = time.Second
	s := benchNAT(b, capacity, to)
	tmpl := udpPkt(b, "10.0.0.1", 1000, "8.8.8.8", 53)
	put16(tmpl, 26, 0) // no UDP checksum: the fields below change freely
	reqs := make([]Request, burst)
	bufs := make([][]byte, burst)
	for i := range bufs {
		bufs[i] = make([]byte, len(tmpl))
	}
	now := int64(0)
	dropped := 0
	b.ReportAllocs()
	cpu := startCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		if i%(capacity/4) < burst {
			now += int64(time.Second)
		}
		for k := range reqs {
			j := uint32(i + k)
			buf := bufs[k]
			copy(buf, tmpl)
			put32(buf, 12, 0x0a000000+j>>8)
			put32(buf, 16, 0x08000000+(j&1023)*7919)
			put16(buf, 20, uint16(j))
			reqs[k] = Request{Packet: buf, SrcVPC: 1, DstVPC: 2, Pool: 1}
		}
		s.Translate(now, reqs)
		for k := range reqs {
			if reqs[k].Result != OK {
				dropped++
			}
		}
		s.Sweep(now, 64)
	}
	b.StopTimer()
	cpu.report(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Msessions/s")
	b.ReportMetric(float64(dropped), "dropped")
}
