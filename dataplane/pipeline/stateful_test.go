package pipeline

import (
	"encoding/binary"
	"testing"

	"github.com/peergate/peergate/dataplane/packet"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// masqTables: a's route to b's 10.2.0.0/24 masquerades onto pool 1.
func masqTables() *tablesv1.Tables {
	t := peeredTables(nil)
	t.NatPools = []*tablesv1.NatPool{{Id: 1, Vpc: 0, Prefixes: []string{"198.18.0.1/32"}}}
	t.Vpcs[0].Routes = append(t.Vpcs[0].Routes, &tablesv1.Route{Prefix: "10.2.0.0/24",
		Actions: fwd(1, func(a *tablesv1.Action) { a.SnatPool = 1 })})
	return t
}

// fakeNAT rewrites the source to 198.18.0.1 and drops odd source ports.
type fakeNAT struct {
	calls, packets int
}

func (f *fakeNAT) Translate(now int64, reqs []NATRequest) {
	f.calls++
	for i := range reqs {
		r := &reqs[i]
		f.packets++
		if r.Pool != 1 || r.Reverse || r.SrcVPC != 0 || r.DstVPC != 1 {
			continue
		}
		ip := packet.IPv4(r.Packet)
		if binary.BigEndian.Uint16(ip[ip.HeaderLen():])%2 == 1 {
			continue
		}
		// A real NAT also fixes the UDP checksum; the test packets carry 0.
		ip.SetSrc(0xc6120001)
		r.Result = NATOK
	}
}

func TestStatefulNATWithoutAHookIsCountedAsUnavailable(t *testing.T) {
	_, w, _ := newTestPipeline(t, masqTables(), Config{})
	b := bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.2.0.7", 1000, 53, 64, 64)), 0)
	run(w, 1, b)
	if b.Verdict != VerdictDrop || w.C.Drops[DropStatefulNATUnavailable] != 1 {
		t.Errorf("verdict %v drops %v", b.Verdict, w.C.DropsByName())
	}
}

func TestStatefulNATHookIsCalledOncePerBurst(t *testing.T) {
	nat := &fakeNAT{}
	_, w, _ := newTestPipeline(t, masqTables(), Config{StatefulNAT: nat})
	run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
	var burst []*Buf
	for _, sp := range []uint16{1000, 1001, 1002} {
		burst = append(burst, bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.2.0.7", sp, 53, 64, 64)), 0))
	}
	run(w, 2, burst...)
	if nat.calls != 1 || nat.packets != 3 {
		t.Fatalf("hook: %d calls for %d packets, want 1 for 3", nat.calls, nat.packets)
	}
	want := []Verdict{VerdictTx, VerdictDrop, VerdictTx}
	for i, b := range burst {
		if b.Verdict != want[i] {
			t.Errorf("packet %d: verdict %v, want %v (drops %v)", i, b.Verdict, want[i], w.C.DropsByName())
		}
	}
	if w.C.Drops[DropStatefulNAT] != 1 {
		t.Errorf("drops %v, want one stateful_nat", w.C.DropsByName())
	}
	ip := packet.IPv4(burst[0].Bytes()[64:])
	if ip.Src() != 0xc6120001 || ip.TTL() != 63 || !ip.HeaderChecksumOK() {
		t.Errorf("translated packet: src %#x ttl %d checksum ok %v", ip.Src(), ip.TTL(), ip.HeaderChecksumOK())
	}
}
