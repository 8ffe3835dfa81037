package runtime

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peergate/peergate/dataplane/pipeline"
)

// Network tests build their own namespaces and veths, named after the
// process id, and remove them in t.Cleanup.

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func addNetns(t *testing.T, name string) {
	t.Helper()
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// addHost makes a veth whose end host sits in netns ns with addr, and whose
// end gw stays here for a DPDK af_packet port. Offloads are off on the host
// side: af_packet hands TSO super-frames and partial checksums over as they
// are, which a real NIC never sees.
func addHost(t *testing.T, ns, gw, host string, addr netip.Prefix) {
	t.Helper()
	sh(t, "ip", "link", "add", gw, "type", "veth", "peer", "name", host, "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", gw).Run() })
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+gw+"/disable_ipv6", []byte("1"), 0o644)
	sh(t, "ip", "link", "set", gw, "up")
	sh(t, "ip", "netns", "exec", ns, "ethtool", "-K", host, "tso", "off", "gso", "off", "tx", "off")
	sh(t, "ip", "-n", ns, "addr", "add", addr.String(), "dev", host)
	sh(t, "ip", "-n", ns, "link", "set", host, "up")
}

// inNetns runs f on an OS thread that has entered netns ns; the thread is
// discarded afterwards. Sockets f creates stay in ns.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// echoTransfer sends size pseudo-random bytes over conn and checks that the
// same bytes come back.
func echoTransfer(conn net.Conn, size int) error {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _, _ = conn.Write(data) }()
	got := make([]byte, size)
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		return fmt.Errorf("echo differs from what was sent")
	}
	return nil
}

func echoServer(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
	}
}

func testSubnet() (byte, byte) { pid := os.Getpid(); return byte(200 + pid%50), byte(pid / 50 % 250) }

func TestAFPacketPortsForwardBetweenTwoNamespaces(t *testing.T) {
	needRoot(t)
	pid := os.Getpid()
	nsA, nsB := fmt.Sprintf("pgfa%d", pid), fmt.Sprintf("pgfb%d", pid)
	gwA, gwB := fmt.Sprintf("pgfa%dg", pid), fmt.Sprintf("pgfb%dg", pid)
	x, y := testSubnet()
	addrA := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y, 1}), 24)
	addrB := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y, 2}), 24)
	addNetns(t, nsA)
	addNetns(t, nsB)
	addHost(t, nsA, gwA, "eth0", addrA)
	addHost(t, nsB, gwB, "eth0", addrB)

	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 1, Name: "a", Device: "net_af_packet_fa,iface=" + gwA},
		{ID: 2, Name: "b", Device: "net_af_packet_fb,iface=" + gwB},
	}}, func(int, pipeline.Allocator) Processor { return NewForward(false, [2]uint16{1, 2}) })
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", addrB.Addr().String()).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(" 0% packet loss")) {
		t.Fatalf("ping through the forwarding runtime: %v\n%s", err, out)
	}

	var l net.Listener
	if err := inNetns(nsB, func() (err error) { l, err = net.Listen("tcp", addrB.Addr().String()+":7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l)
	if err := inNetns(nsA, func() error {
		c, err := net.DialTimeout("tcp", addrB.Addr().String()+":7000", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		return echoTransfer(c, 4<<20)
	}); err != nil {
		t.Fatalf("4 MB TCP echo through the forwarding runtime: %v", err)
	}
	r.Stop()
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d after traffic, baseline %d", got, base)
	}
	s, _ := r.Stats()
	t.Logf("worker: %+v", s.Total)
}

func TestPuntedTCPReachesTheKernelAndItsRepliesLeaveThroughThePort(t *testing.T) {
	needRoot(t)
	pid := os.Getpid()
	ns, gw, tap := fmt.Sprintf("pgph%d", pid), fmt.Sprintf("pgph%dg", pid), fmt.Sprintf("pgph%dt", pid)
	x, y := testSubnet()
	gwAddr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y + 1, 1}), 24)
	hostAddr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, y + 1, 2}), 24)
	addNetns(t, ns)
	addHost(t, ns, gw, "eth0", hostAddr)

	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 0, Name: "up", Device: "net_af_packet_ph,iface=" + gw, Punt: true, PuntIface: tap, PuntAddrs: []netip.Prefix{gwAddr}},
	}}, func(int, pipeline.Allocator) Processor { return PuntAll{} })
	if p := r.Ports(); len(p) != 2 || p[0].PuntIface != tap || p[1].PuntOfPort != "up" {
		t.Fatalf("ports: %+v", p)
	}
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", gwAddr.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l)
	if err := inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		return echoTransfer(c, 1<<20)
	}); err != nil {
		t.Fatalf("1 MB TCP echo with the gateway's kernel through the punt path: %v", err)
	}
	r.Stop()
	s, _ := r.Stats()
	if s.Total.Punted == 0 || s.Total.FromKernel == 0 {
		t.Fatalf("punt counters: %+v", s.Total)
	}
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d after traffic, baseline %d", got, base)
	}
	t.Logf("worker: %+v", s.Total)
}
