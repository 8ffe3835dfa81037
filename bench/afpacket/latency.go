package main

import (
	"encoding/binary"
	"fmt"
	"net"
	goruntime "runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peergate/peergate/bench/trafficgen"
)

// probePort marks the latency probes (UDP destination port).
const probePort = 7777

// inNetns runs f on an OS thread that entered netns ns; the thread is
// discarded afterwards, sockets f opens stay in ns.
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

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// rawSocket opens an AF_PACKET socket bound to iface in ns.
func rawSocket(ns, iface string) (int, error) {
	var fd int
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind %s: %w", iface, err)
		}
		return nil
	})
	return fd, err
}

// probeFrame is a 64-byte UDP frame from the sender to an Internet
// destination behind e2 carrying seq.
func probeFrame(seq uint32) []byte {
	b := make([]byte, 60)
	copy(b[0:6], trafficgen.AFGatewayMAC)
	copy(b[6:12], trafficgen.AFSenderMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], 46)
	copy(ip[12:16], []byte{20, 0, 0, 7})
	copy(ip[16:20], []byte{30, 0, 0, 7})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := b[34:42]
	binary.BigEndian.PutUint16(udp[0:], 5555)
	binary.BigEndian.PutUint16(udp[2:], probePort)
	binary.BigEndian.PutUint16(udp[4:], 26)
	binary.BigEndian.PutUint32(b[42:], seq)
	return b
}

// latency sends n probes at rate per second from the sender's veth and
// times their arrival on the receiver's: one clock, user-space timestamps
// (send before sendto, receive after recvfrom), so the figures include the
// two system calls and scheduling on a shared machine.
func (t *topology) latency(n, rate int) (map[string]float64, error) {
	tx, err := rawSocket(t.sender, senderIf)
	if err != nil {
		return nil, err
	}
	defer unix.Close(tx)
	rx, err := rawSocket(t.receiver, receiverIf)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rx)
	_ = unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})

	sent := make([]int64, n)
	got := make([]int64, n)
	epoch := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		idle := 0
		for idle < 10 {
			m, _, err := unix.Recvfrom(rx, buf, 0)
			at := time.Since(epoch).Nanoseconds()
			if err != nil {
				idle++
				continue
			}
			idle = 0
			if m < 46 || binary.BigEndian.Uint16(buf[12:]) != 0x0800 || buf[23] != 17 || binary.BigEndian.Uint16(buf[36:]) != probePort {
				continue
			}
			if seq := binary.BigEndian.Uint32(buf[42:]); int(seq) < n && got[seq] == 0 {
				got[seq] = at
			}
		}
	}()
	gap := time.Second / time.Duration(rate)
	next := time.Now()
	for i := 0; i < n; i++ {
		f := probeFrame(uint32(i))
		time.Sleep(time.Until(next))
		next = next.Add(gap)
		sent[i] = time.Since(epoch).Nanoseconds()
		if _, err := unix.Write(tx, f); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
	}
	<-done
	var lat []float64
	for i := range n {
		if got[i] > 0 {
			lat = append(lat, float64(got[i]-sent[i])/1e3)
		}
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("no probe came through")
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return round3(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	return map[string]float64{"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": round3(lat[len(lat)-1]), "lost": float64(n - len(lat))}, nil
}
