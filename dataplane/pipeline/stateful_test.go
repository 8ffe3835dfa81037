package pipeline

import (
	"encoding/binary"
	"testing"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/packet"
	"github.com/peergate/peergate/nat"
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
		r.Result = NATDrop
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

// masqReplyTables adds b's route back to the pool: replies through
// reverse_pool 1 into a.
func masqReplyTables() *tablesv1.Tables {
	t := masqTables()
	t.Vpcs[1].Routes = append(t.Vpcs[1].Routes, &tablesv1.Route{Prefix: "198.18.0.1/32",
		Actions: fwd(0, func(a *tablesv1.Action) { a.ReversePool = 1 })})
	return t
}

// resolveHosts teaches w where a's 10.1.0.5 and b's 10.2.0.7 are.
func resolveHosts(t *testing.T, w *Worker) {
	t.Helper()
	run(w, 1, bufOf(vxlanFrame(vtepB, 200, arpFrame(t, 1, macB, "10.2.0.7", [6]byte{}, "10.2.0.1")), 0))
	run(w, 1, bufOf(vxlanFrame(vtepA, 100, arpFrame(t, 1, macA, "10.1.0.5", [6]byte{}, "10.1.0.1")), 0))
}

func TestThePipelinesOwnStatefulNATMasqueradesAndTranslatesRepliesBack(t *testing.T) {
	p, w, _ := newTestPipeline(t, masqReplyTables(), Config{NATSessions: 1024, NATSeed: 1})
	resolveHosts(t, w)
	out := bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.2.0.7", 1000, 4000, 64, 64)), 0)
	run(w, 2, out)
	if out.Verdict != VerdictTx {
		t.Fatalf("outbound verdict %v, drops %v", out.Verdict, w.C.DropsByName())
	}
	ip := packet.IPv4(out.Bytes()[64:])
	pub := binary.BigEndian.Uint16(ip[20:])
	if ip.Src() != 0xc6120001 || pub < 1024 || !ip.HeaderChecksumOK() {
		t.Fatalf("translated: src %#x port %d checksum ok %v", ip.Src(), pub, ip.HeaderChecksumOK())
	}
	reply := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "198.18.0.1", 4000, pub, 64, 64)), 0)
	run(w, 3, reply)
	if reply.Verdict != VerdictTx {
		t.Fatalf("reply verdict %v, drops %v", reply.Verdict, w.C.DropsByName())
	}
	rip := packet.IPv4(reply.Bytes()[64:])
	if rip.Dst() != 0x0a010005 || binary.BigEndian.Uint16(rip[22:]) != 1000 {
		t.Errorf("reply to %#x:%d, want 10.1.0.5:1000", rip.Dst(), binary.BigEndian.Uint16(rip[22:]))
	}
	unsolicited := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "198.18.0.1", 4000, pub+1, 64, 64)), 0)
	run(w, 4, unsolicited)
	if unsolicited.Verdict != VerdictDrop || w.C.DropsByName()["nat_unsolicited"] != 1 {
		t.Errorf("unsolicited: verdict %v drops %v", unsolicited.Verdict, w.C.DropsByName())
	}
	w.Tick(5, &Output{})
	if c := p.Counters(); c.DropsByName()["nat_unsolicited"] != 1 {
		t.Errorf("pipeline drops %v", c.DropsByName())
	}
	nc, ok := p.NATCounters()
	if !ok || nc.Sessions != 1 || nc.Created != 1 {
		t.Errorf("NAT counters %+v (ok %v), want one session", nc, ok)
	}
	ss := p.Sessions(nat.Filter{AllVPCs: true})
	if len(ss) != 1 || ss[0].Inner.String() != "10.1.0.5:1000" || ss[0].Public.Port() != pub {
		t.Errorf("sessions %+v", ss)
	}
	vpcs, peerings := p.Traffic()
	if len(vpcs) != 2 || vpcs[0].Name != "a" || vpcs[0].Packets != 2 || vpcs[1].Packets != 3 {
		t.Errorf("vpc traffic %v", vpcs)
	}
	if len(peerings) != 1 || peerings[0].Name != "a--b" || peerings[0].Packets != 2 {
		t.Errorf("peering traffic %v", peerings)
	}
}

func TestANewSnapshotReconfiguresTheStatefulNAT(t *testing.T) {
	tables := masqReplyTables()
	s0, err := fib.Build(tables, fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var h fib.Holder
	h.Store(s0)
	p := New(&h, Config{NATSessions: 1024, NATSeed: 1})
	w := p.NewWorker(0, &testPool{})
	resolveHosts(t, w)
	out := bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.2.0.7", 1000, 4000, 64, 64)), 0)
	run(w, 2, out)
	pub := binary.BigEndian.Uint16(out.Bytes()[64+20:])
	// Generation 2 moves the pool to another address: the session's public
	// address is gone, so its replies are stale.
	tables.Generation = 2
	tables.NatPools[0].Prefixes = []string{"198.18.0.2/32"}
	s1, err := fib.Build(tables, fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.Store(s1)
	reply := bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "198.18.0.1", 4000, pub, 64, 64)), 0)
	run(w, 3, reply)
	if reply.Verdict != VerdictDrop || w.C.DropsByName()["nat_stale_session"] != 1 {
		t.Errorf("reply after the pool moved: verdict %v drops %v", reply.Verdict, w.C.DropsByName())
	}
	if _, err := p.NAT(); err != nil {
		t.Errorf("reconfigure: %v", err)
	}
}

func TestPipelinesWithoutPoolsNeverBuildTheSessionTable(t *testing.T) {
	p, w, _ := newTestPipeline(t, peeredTables(nil), Config{})
	run(w, 1, bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "192.168.2.7", 1000, 53, 64, 64)), 0))
	if s, _ := p.NAT(); s != nil {
		t.Error("a session table was built for tables without NAT pools")
	}
}

func TestMSSIsClampedToTheSmallestEgressLessVXLAN(t *testing.T) {
	s, err := fib.Build(masqTables(), fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := clampMSS(s); got != 1500-50-40 {
		t.Errorf("MSS %d, want %d", got, 1500-50-40)
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

func TestTwoWorkersShareTheSessionsOfTheStatefulNAT(t *testing.T) {
	p, w0, _ := newTestPipeline(t, masqReplyTables(), Config{NATSessions: 4096, NATSeed: 3})
	w1 := p.NewWorker(1, &testPool{})
	resolveHosts(t, w0)
	resolveHosts(t, w1)
	// Worker 0 sends 200 flows out while worker 1 counts traffic; then
	// worker 1 receives every reply.
	outs := make([]*Buf, 200)
	for i := range outs {
		outs[i] = bufOf(vxlanFrame(vtepA, 100, udpFrame(t, macA, gwMAC0, "10.1.0.5", "10.2.0.7", uint16(2000+i), 4000, 64, 64)), 0)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			w1.Tick(int64(2+i), &Output{})
			p.Traffic()
			p.Counters()
		}
	}()
	for i := 0; i < len(outs); i += 32 {
		run(w0, 2, outs[i:min(i+32, len(outs))]...)
	}
	<-done
	var replies []*Buf
	for _, o := range outs {
		if o.Verdict != VerdictTx {
			t.Fatalf("outbound verdict %v, drops %v", o.Verdict, w0.C.DropsByName())
		}
		pub := binary.BigEndian.Uint16(o.Bytes()[64+20:])
		replies = append(replies, bufOf(vxlanFrame(vtepB, 200, udpFrame(t, macB, gwMAC0, "10.2.0.7", "198.18.0.1", 4000, pub, 64, 64)), 0))
	}
	for i := 0; i < len(replies); i += 32 {
		run(w1, 3, replies[i:min(i+32, len(replies))]...)
	}
	for i, r := range replies {
		if r.Verdict != VerdictTx || binary.BigEndian.Uint16(r.Bytes()[64+22:]) != uint16(2000+i) {
			t.Fatalf("reply %d on the other worker: verdict %v, drops %v", i, r.Verdict, w1.C.DropsByName())
		}
	}
}
