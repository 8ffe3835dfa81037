//go:build cgo && dpdk

package dpdk

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
)

// skipReason is set by TestMain when the EAL cannot start here (not root);
// every test then skips with it.
var skipReason string

func TestMain(m *testing.M) {
	prefix := fmt.Sprintf("pgdpdk%d", os.Getpid())
	// With telemetry on, as an operator's --eal usually leaves it: its
	// socket is the file Cleanup must remove for the directory to go.
	args := append(slices.DeleteFunc(NoHugeArgs(prefix, 256), func(a string) bool { return a == "--no-telemetry" }),
		"-l", "0", "--log-level=lib.eal:error")
	if err := Init(args); err != nil {
		if os.Geteuid() == 0 {
			fmt.Fprintf(os.Stderr, "dpdk: EAL init as root failed: %v\n", err)
			os.Exit(1)
		}
		skipReason = fmt.Sprintf("DPDK EAL does not start without root here: %v", err)
	}
	code := m.Run()
	if skipReason == "" {
		if err := Cleanup(); err != nil {
			fmt.Fprintf(os.Stderr, "dpdk: %v\n", err)
			code = 1
		}
		// Cleanup must not leave an empty runtime directory behind.
		if _, err := os.Stat(RuntimeDir(prefix)); !os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "dpdk: runtime dir %s still there after Cleanup (%v)\n", RuntimeDir(prefix), err)
			code = 1
		}
	}
	os.Exit(code)
}

func needEAL(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

func newPool(t *testing.T, n int) *Mempool {
	t.Helper()
	p, err := NewPktmbufPool(fmt.Sprintf("t%d", poolSeq()), n, 0, DefaultDataRoom, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

var seq int

func poolSeq() int { seq++; return seq }

func newBurst(t *testing.T, n int) *Burst {
	t.Helper()
	b, err := NewBurst(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// startPort probes dev with one RX and one TX queue and removes it at the end.
func startPort(t *testing.T, dev string, pool *Mempool) PortID {
	t.Helper()
	p, err := Probe(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if err := p.Remove(); err != nil {
			t.Errorf("remove %s: %v", dev, err)
		}
	})
	if err := p.Configure(1, 1, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.SetupRxQueue(0, 256, -1, pool); err != nil {
		t.Fatal(err)
	}
	if err := p.SetupTxQueue(0, 256, -1); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMbufAccessorsEditThePacketInPlace(t *testing.T) {
	needEAL(t)
	pool := newPool(t, 63)
	m := pool.Alloc()
	if m == nil {
		t.Fatal("alloc from a fresh pool returned nil")
	}
	defer m.Free()
	if m.DataOff() != Headroom || m.DataLen() != 0 || m.PktLen() != 0 || m.NbSegs() != 1 {
		t.Fatalf("fresh mbuf: data_off %d data_len %d pkt_len %d segs %d", m.DataOff(), m.DataLen(), m.PktLen(), m.NbSegs())
	}
	if m.BufLen() != DefaultDataRoom {
		t.Fatalf("buf_len %d, want %d", m.BufLen(), DefaultDataRoom)
	}
	m.SetData(Headroom, 4)
	copy(m.Data(), "abcd")
	if h := m.Prepend(2); h == nil {
		t.Fatal("prepend 2 into the headroom failed")
	} else {
		copy(h, "xy")
	}
	if got := string(m.Data()); got != "xyabcd" || m.PktLen() != 6 {
		t.Fatalf("after prepend: %q pkt_len %d", got, m.PktLen())
	}
	if !m.Adj(3) || string(m.Data()) != "bcd" || m.DataOff() != Headroom+1 {
		t.Fatalf("after adj 3: %q off %d", m.Data(), m.DataOff())
	}
	if m.Prepend(Headroom+2) != nil {
		t.Fatal("prepend beyond the headroom succeeded")
	}
	if m.Adj(4) {
		t.Fatal("adj beyond the data succeeded")
	}
	if !bytes.Equal(m.Buffer()[m.DataOff():m.DataOff()+3], []byte("bcd")) {
		t.Fatal("Buffer and Data disagree")
	}
}

func TestPoolInUseCountsAllocAndFree(t *testing.T) {
	needEAL(t)
	pool := newPool(t, 127)
	b := newBurst(t, 32)
	if pool.InUse() != 0 || pool.Size() != 127 {
		t.Fatalf("fresh pool: in use %d size %d", pool.InUse(), pool.Size())
	}
	if err := pool.AllocBulk(b); err != nil {
		t.Fatal(err)
	}
	if pool.InUse() != 32 || b.Len() != 32 {
		t.Fatalf("after bulk alloc: in use %d, burst %d", pool.InUse(), b.Len())
	}
	b.FreeMbufs()
	if pool.InUse() != 0 || b.Len() != 0 {
		t.Fatalf("after bulk free: in use %d, burst %d", pool.InUse(), b.Len())
	}
}

func TestRingPortLoopsPacketsBackIntact(t *testing.T) {
	needEAL(t)
	pool := newPool(t, 1023)
	p := startPort(t, "net_ring_loop0", pool)
	base := pool.InUse()
	tx, rx := newBurst(t, 32), newBurst(t, 32)
	if err := pool.AllocBulk(tx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < tx.Len(); i++ {
		m := tx.At(i)
		m.SetData(Headroom, 60)
		copy(m.Data(), fmt.Sprintf("packet %02d", i))
	}
	if sent := p.TxBurstFree(0, tx); sent != 32 {
		t.Fatalf("sent %d of 32", sent)
	}
	if n := p.RxBurst(0, rx); n != 32 {
		t.Fatalf("received %d of 32", n)
	}
	for i := 0; i < rx.Len(); i++ {
		if want := fmt.Sprintf("packet %02d", i); string(rx.At(i).Data()[:9]) != want || rx.At(i).DataLen() != 60 {
			t.Fatalf("packet %d: %q len %d", i, rx.At(i).Data()[:9], rx.At(i).DataLen())
		}
	}
	rx.FreeMbufs()
	if got := pool.InUse(); got != base {
		t.Fatalf("mbufs in use %d after traffic, baseline %d", got, base)
	}
	st, err := p.Stats(1)
	if err != nil {
		t.Fatal(err)
	}
	if st.OPackets != 32 || st.IPackets != 32 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestNullPortGeneratesAndSinksPackets(t *testing.T) {
	needEAL(t)
	pool := newPool(t, 1023)
	p := startPort(t, "net_null_gen0,size=64", pool)
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "net_null_gen0" || info.Driver == "" {
		t.Fatalf("info: %+v", info)
	}
	if _, err := p.MAC(); err != nil {
		t.Fatal(err)
	}
	if l, err := p.Link(); err != nil || !l.Up {
		t.Fatalf("link %+v, %v", l, err)
	}
	b := newBurst(t, 32)
	if n := p.RxBurst(0, b); n != 32 || b.At(0).DataLen() != 64 {
		t.Fatalf("null rx: %d packets", n)
	}
	if sent := p.TxBurstFree(0, b); sent != 32 {
		t.Fatalf("null tx: %d", sent)
	}
	if pool.InUse() != 0 {
		t.Fatalf("in use %d after null rx+tx", pool.InUse())
	}
}

func TestRemovedDeviceCanBeProbedAgain(t *testing.T) {
	needEAL(t)
	for i := 0; i < 2; i++ {
		p, err := Probe("net_null_again0")
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := p.Remove(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if _, err := PortByName("net_null_again0"); err == nil {
		t.Fatal("removed port still found by name")
	}
}

func TestProbeOfAnUnknownDriverFails(t *testing.T) {
	needEAL(t)
	if _, err := Probe("net_nosuchdriver0"); err == nil {
		t.Fatal("probe of an unknown driver succeeded")
	}
}

func TestRegisteredThreadGetsAnLcore(t *testing.T) {
	needEAL(t)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if LcoreID() != -1 {
			done <- fmt.Errorf("unregistered thread has lcore %d", LcoreID())
			return
		}
		id, err := RegisterThread()
		if err == nil && (id < 0 || LcoreID() != id) {
			err = fmt.Errorf("registered lcore %d, LcoreID %d", id, LcoreID())
		}
		UnregisterThread()
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSecondInitIsRefused(t *testing.T) {
	needEAL(t)
	if err := Init(nil); err == nil {
		t.Fatal("second EAL init succeeded")
	}
}
