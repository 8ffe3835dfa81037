package pipeline

import (
	"testing"
)

// FuzzPipeline feeds arbitrary frames, raw and inside a VXLAN header to the
// gateway, on every port: nothing may panic, and every packet ends with a
// verdict whose drops are counted.
func FuzzPipeline(f *testing.F) {
	f.Add([]byte{}, uint8(0), false)
	f.Add(udpFrame(f, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1, 53, 64, 64), uint8(0), true)
	f.Add(arpFrame(f, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1"), uint8(0), true)
	f.Add(arpFrame(f, 1, macVTEP, vtepA, [6]byte{}, gwVTEP), uint8(0), false)
	f.Add(tagged(f, macV, gwMAC, 0, 10, icmp4Layers("10.3.0.5", "10.4.0.7", 64)...), uint8(1), false)
	tables := peeredTables(nil)
	f.Fuzz(func(t *testing.T, data []byte, port uint8, wrap bool) {
		_, w, _ := newTestPipeline(t, tables, Config{HoldQueue: 4})
		frame := data
		if wrap {
			frame = vxlanFrame(vtepA, 100, data)
		}
		bufs := []*Buf{bufOf(frame, uint16(port%3)), bufOf(data, uint16(port%3))}
		// A buffer without headroom must not make encapsulation write out of
		// range either.
		bufs = append(bufs, &Buf{Mem: append([]byte(nil), frame...), Len: len(frame)})
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
			if b.Verdict == VerdictTx && (b.Off < 0 || b.Off+b.Len > len(b.Mem)) {
				t.Fatalf("sent buffer out of range: off %d len %d mem %d", b.Off, b.Len, len(b.Mem))
			}
		}
	})
}
