package pipeline

import (
	"bytes"
	"fmt"
	"testing"
)

// TestFastPathMatchesSlowPath runs the benchmark's VXLAN frame, and every
// one-byte mutation of its headers, through a worker with the VXLAN fast
// path and one without (noFast): verdicts, output bytes, generated packets
// and every counter must be identical, whichever path took each packet.
func TestFastPathMatchesSlowPath(t *testing.T) {
	tables := peeredTables(nil)
	_, fast, _ := newTestPipeline(t, tables, Config{})
	_, slow, _ := newTestPipeline(t, tables, Config{})
	slow.noFast = true
	good := vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 64))
	learn := vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1"))

	now := int64(1)
	step := func(name string, frames ...[]byte) {
		t.Helper()
		now++
		var outs [2]Output
		var bufs [2][]*Buf
		for k, w := range []*Worker{fast, slow} {
			for _, f := range frames {
				bufs[k] = append(bufs[k], bufOf(f, 0))
			}
			w.ProcessBurst(now, bufs[k], &outs[k])
		}
		for i := range bufs[0] {
			a, b := bufs[0][i], bufs[1][i]
			if a.Verdict != b.Verdict || a.OutPort != b.OutPort || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("%s: packet %d: fast %v port %d %x, slow %v port %d %x", name, i, a.Verdict, a.OutPort, a.Bytes(), b.Verdict, b.OutPort, b.Bytes())
			}
		}
		if len(outs[0].Extra) != len(outs[1].Extra) {
			t.Fatalf("%s: %d extra packets fast, %d slow", name, len(outs[0].Extra), len(outs[1].Extra))
		}
		for i := range outs[0].Extra {
			if a, b := outs[0].Extra[i], outs[1].Extra[i]; !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("%s: extra %d differs: fast %x, slow %x", name, i, a.Bytes(), b.Bytes())
			}
		}
		if fast.C != slow.C {
			t.Fatalf("%s: counters differ: fast drops %v events %v, slow drops %v events %v", name,
				fast.C.DropsByName(), fast.C.EventsByName(), slow.C.DropsByName(), slow.C.EventsByName())
		}
		for i := range fast.traffic.vpc {
			if fast.traffic.vpc[i] != slow.traffic.vpc[i] {
				t.Fatalf("%s: vpc %d traffic: fast %v, slow %v", name, i, fast.traffic.vpc[i], slow.traffic.vpc[i])
			}
		}
		for i := range fast.traffic.peer {
			if fast.traffic.peer[i] != slow.traffic.peer[i] {
				t.Fatalf("%s: peering %d traffic: fast %v, slow %v", name, i, fast.traffic.peer[i], slow.traffic.peer[i])
			}
		}
	}
	step("learn", learn)
	tx0 := fast.C.Verdicts[VerdictTx]
	step("warm", good, good)
	if fast.C.Verdicts[VerdictTx] != tx0+2 {
		t.Fatalf("warm-up not forwarded: %v", fast.C.DropsByName())
	}
	// Every header byte (outer and inner, through the inner UDP header and
	// its first payload byte), with a few values each, between good frames.
	for i := 0; i <= fastMin; i++ {
		for _, x := range []byte{0x01, 0x08, 0x10, 0x40, 0x80, 0xff} {
			m := append([]byte(nil), good...)
			m[i] ^= x
			step(fmt.Sprintf("byte %d ^ %#x", i, x), good, m, good)
		}
		for _, x := range []byte{0x00, 0xff} {
			m := append([]byte(nil), good...)
			m[i] = x
			step(fmt.Sprintf("byte %d = %#x", i, x), good, m, good)
		}
	}
	for n := 0; n <= len(good); n++ {
		step(fmt.Sprintf("truncated to %d", n), good, good[:n], good)
	}
	// Other inner frames behind the same VTEP, VNI and MAC.
	for _, inner := range [][]byte{
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 1, 64),
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1024, 53, 64, 1500),
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.1.0.1", 1024, 53, 64, 64),
		udpFrame(t, macA, gwMAC0, "10.1.0.5", "203.0.113.9", 1024, 53, 64, 64),
		udpFrame(t, macA, gwMAC0, "10.9.0.5", "192.168.2.7", 1024, 53, 64, 64),
	} {
		step(fmt.Sprintf("inner %x", inner[26:34]), good, vxlanFrame(vtepA, 100, inner), good)
	}
	if fast.C.Verdicts[VerdictTx] < 100 {
		t.Fatalf("only %d packets forwarded: the good frames were not", fast.C.Verdicts[VerdictTx])
	}
}
