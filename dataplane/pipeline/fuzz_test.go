package pipeline

import (
	"encoding/binary"
	"testing"

	"github.com/peergate/peergate/dataplane/packet"
)

// FuzzPipeline feeds arbitrary frames, raw and inside a VXLAN header, to
// the gateway on each of its ports: nothing may panic, every packet ends
// with a verdict whose drops are counted, and every IPv4 header the gateway
// sends (outer and inner) has a valid checksum.
//
// The pipeline drops an IPv4 header with a bad checksum before it routes,
// and random mutation almost never repairs one, so each input is also sent
// with its IPv4 header checksums recomputed (repaired): that copy is what
// reaches routing, NAT, filters and encapsulation.
func FuzzPipeline(f *testing.F) {
	f.Add([]byte{}, uint8(0), false)
	f.Add(udpFrame(f, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1, 53, 64, 64), uint8(0), true)
	f.Add(arpFrame(f, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1"), uint8(0), true)
	f.Add(arpFrame(f, 1, macVTEP, vtepA, [6]byte{}, gwVTEP), uint8(0), false)
	f.Add(tagged(f, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "10.4.0.7", 64)...), uint8(1), false)
	tables := peeredTables(nil)
	ports := uint8(len(tables.GetPorts()))
	f.Fuzz(func(t *testing.T, data []byte, port uint8, wrap bool) {
		_, w, _ := newTestPipeline(t, tables, Config{HoldQueue: 4})
		// Neighbours known, so that routed packets are sent, not held.
		resolveHosts(t, w)
		w.C = Counters{}
		in := uint16(port % ports)
		frame := data
		if wrap {
			frame = vxlanFrame(vtepA, 100, data)
		}
		repaired := append([]byte(nil), frame...)
		repairIPv4Checksums(repaired, 0)
		bufs := []*Buf{bufOf(frame, in), bufOf(data, in), bufOf(repaired, in)}
		// A buffer without headroom must not make encapsulation write out of
		// range either.
		bufs = append(bufs, &Buf{Mem: append([]byte(nil), repaired...), Len: len(repaired), InPort: in})
		var out Output
		w.ProcessBurst(1, bufs, &out)
		w.Tick(1+int64(10e9), &out)
		var drops uint64
		for _, n := range w.C.Drops {
			drops += n
		}
		var verdicts uint64
		for _, n := range w.C.Verdicts {
			verdicts += n
		}
		if verdicts != uint64(len(bufs)) {
			t.Fatalf("%d verdicts for %d packets", verdicts, len(bufs))
		}
		if w.C.Verdicts[VerdictDrop] > drops {
			t.Fatalf("%d drop verdicts, %d counted drops", w.C.Verdicts[VerdictDrop], drops)
		}
		for _, b := range append(bufs, out.Extra...) {
			if b.Verdict != VerdictTx {
				continue
			}
			if b.Off < 0 || b.Off+b.Len > len(b.Mem) {
				t.Fatalf("sent buffer out of range: off %d len %d mem %d", b.Off, b.Len, len(b.Mem))
			}
			if at, ok := badIPv4Checksum(b.Mem[b.Off:b.Off+b.Len], 0); !ok {
				t.Fatalf("sent an IPv4 header with a bad checksum at byte %d: % x", at, b.Mem[b.Off:b.Off+b.Len])
			}
		}
	})
}

// ipv4At returns the offset of the IPv4 header of the Ethernet frame f
// (after up to two VLAN tags) and its length, or ok false.
func ipv4At(f []byte) (off, hlen int, ok bool) {
	off = 12
	for range 3 {
		if len(f) < off+2 {
			return 0, 0, false
		}
		switch binary.BigEndian.Uint16(f[off:]) {
		case 0x8100, 0x88a8:
			off += 4
			continue
		case 0x0800:
			off += 2
			if len(f) < off+20 || f[off]>>4 != 4 {
				return 0, 0, false
			}
			hlen = int(f[off]&0xf) * 4
			if hlen < 20 || len(f) < off+hlen {
				return 0, 0, false
			}
			return off, hlen, true
		}
		return 0, 0, false
	}
	return 0, 0, false
}

// vxlanInner returns the inner frame of an IPv4 VXLAN packet whose IPv4
// header is at off with length hlen.
func vxlanInner(f []byte, off, hlen int) ([]byte, bool) {
	u := off + hlen
	if f[off+9] != 17 || len(f) < u+16 || binary.BigEndian.Uint16(f[u+2:]) != packet.VXLANPort {
		return nil, false
	}
	return f[u+16:], true
}

// repairIPv4Checksums recomputes the checksum of f's IPv4 header and, in a
// VXLAN packet, of the inner frame's (depth bounds the recursion).
func repairIPv4Checksums(f []byte, depth int) {
	off, hlen, ok := ipv4At(f)
	if !ok || depth > 1 {
		return
	}
	h := f[off : off+hlen]
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], packet.Checksum(h, 0))
	if in, ok := vxlanInner(f, off, hlen); ok {
		repairIPv4Checksums(in, depth+1)
	}
}

// badIPv4Checksum checks the IPv4 header checksums of f (and of a VXLAN
// packet's inner frame); it returns the offset of a bad one and false.
func badIPv4Checksum(f []byte, depth int) (int, bool) {
	off, hlen, ok := ipv4At(f)
	if !ok || depth > 1 {
		return 0, true
	}
	if packet.Checksum(f[off:off+hlen], 0) != 0 {
		return off, false
	}
	if in, ok := vxlanInner(f, off, hlen); ok {
		at, ok := badIPv4Checksum(in, depth+1)
		return len(f) - len(in) + at, ok
	}
	return 0, true
}
