package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/peergate/peergate/bench/trafficgen"
)

// topology is the namespaces and veths of one run.
type topology struct {
	sender, receiver, router string    // namespaces
	gw                       [2]string // gateway ends of the veths: e1 (sender side), e2 (receiver side)
	gwMACs                   [2]net.HardwareAddr
	fenceTable               string
	once                     sync.Once
	gwInRouter               bool
}

const (
	senderIf   = "s0"
	receiverIf = "r0"
	countTable = "pgcount"
)

func newTopology(pid int) *topology {
	return &topology{
		sender:     fmt.Sprintf("pgbs%d", pid),
		receiver:   fmt.Sprintf("pgbr%d", pid),
		router:     fmt.Sprintf("pgbl%d", pid),
		gw:         [2]string{fmt.Sprintf("pgbs%dg", pid), fmt.Sprintf("pgbr%dg", pid)},
		gwMACs:     [2]net.HardwareAddr{trafficgen.AFGatewayMAC, {0x02, 0x70, 0x67, 0x00, 0x00, 0x03}},
		fenceTable: fmt.Sprintf("pgbf%d", pid),
	}
}

func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func nsh(ns string, args ...string) (string, error) {
	return sh("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func nftIn(ns, rules string) error {
	args := []string{"nft", "-f", "-"}
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.Command(args[0], args[1:]...)
	} else {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %q: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (t *topology) setup() error {
	steps := [][]string{
		{"ip", "netns", "add", t.sender},
		{"ip", "netns", "add", t.receiver},
		{"ip", "-n", t.sender, "link", "set", "lo", "up"},
		{"ip", "-n", t.receiver, "link", "set", "lo", "up"},
		{"ip", "link", "add", t.gw[0], "address", t.gwMACs[0].String(), "type", "veth", "peer", "name", senderIf, "address", trafficgen.AFSenderMAC.String(), "netns", t.sender},
		{"ip", "link", "add", t.gw[1], "address", t.gwMACs[1].String(), "type", "veth", "peer", "name", receiverIf, "netns", t.receiver},
		{"ip", "-n", t.sender, "addr", "add", "203.0.113.1/29", "dev", senderIf},
		{"ip", "-n", t.receiver, "addr", "add", "198.51.100.1/29", "dev", receiverIf},
		{"ip", "-n", t.sender, "link", "set", senderIf, "up"},
		{"ip", "-n", t.receiver, "link", "set", receiverIf, "up"},
		{"ip", "link", "set", t.gw[0], "up"},
		{"ip", "link", "set", t.gw[1], "up"},
		{"ip", "-n", t.receiver, "route", "add", "20.0.0.0/8", "via", "198.51.100.2"},
	}
	for _, gw := range t.gw {
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+gw+"/disable_ipv6", []byte("1"), 0o644)
	}
	for i, s := range steps {
		if _, err := sh(s[0], s[1:]...); err != nil {
			return fmt.Errorf("topology: %w", err)
		}
		if i == 1 {
			// No IPv6 in the namespaces: router solicitations and MLD
			// reports would reach the gateway outside the pcap's packets.
			for _, ns := range []string{t.sender, t.receiver} {
				if _, err := nsh(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
					return fmt.Errorf("topology: %w", err)
				}
			}
		}
	}
	// The receiver counts the traffic (Internet destinations behind e2) and
	// drops it before its IP stack; ARP passes.
	return nftIn(t.receiver, fmt.Sprintf("table netdev %s {\n chain in {\n  type filter hook ingress device %q priority 0;\n  ip daddr 30.0.0.0/8 counter drop\n }\n}\n", countTable, receiverIf))
}

// fence keeps the host's kernel off the gateway's veth ends while DPDK owns
// them (af_packet sees the frames before the ingress hook drops them).
func (t *topology) fence() error {
	return nftIn("", fmt.Sprintf("table netdev %s {\n chain e1 {\n  type filter hook ingress device %q priority -500; policy drop;\n }\n chain e2 {\n  type filter hook ingress device %q priority -500; policy drop;\n }\n}\n", t.fenceTable, t.gw[0], t.gw[1]))
}

func (t *topology) unfence() error {
	_, err := sh("nft", "delete", "table", "netdev", t.fenceTable)
	return err
}

// linuxRouter moves the gateway ends into a router namespace that forwards
// between them.
func (t *topology) linuxRouter() error {
	steps := [][]string{
		{"ip", "netns", "add", t.router},
		{"ip", "-n", t.router, "link", "set", "lo", "up"},
		{"ip", "link", "set", t.gw[0], "netns", t.router},
		{"ip", "link", "set", t.gw[1], "netns", t.router},
	}
	for _, s := range steps {
		if _, err := sh(s[0], s[1:]...); err != nil {
			return fmt.Errorf("linux router: %w", err)
		}
	}
	t.gwInRouter = true
	steps = [][]string{
		{"ip", "-n", t.router, "addr", "add", "203.0.113.2/29", "dev", t.gw[0]},
		{"ip", "-n", t.router, "addr", "add", "198.51.100.2/29", "dev", t.gw[1]},
		{"ip", "-n", t.router, "link", "set", t.gw[0], "up"},
		{"ip", "-n", t.router, "link", "set", t.gw[1], "up"},
		{"ip", "-n", t.router, "route", "add", "default", "via", "198.51.100.1"},
		{"ip", "netns", "exec", t.router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
			"net.ipv4.conf." + t.gw[0] + ".rp_filter=0", "net.ipv4.conf." + t.gw[1] + ".rp_filter=0", "net.ipv6.conf.all.disable_ipv6=1"},
	}
	for _, s := range steps {
		if _, err := sh(s[0], s[1:]...); err != nil {
			return fmt.Errorf("linux router: %w", err)
		}
	}
	// The sender's router MAC is the e1 end's, which kept its address.
	return nil
}

// linuxNAT adds source NAT toward e2, as the gateway's stateful pool would.
func (t *topology) linuxNAT() error {
	return nftIn(t.router, fmt.Sprintf("table ip pgnat {\n chain post {\n  type nat hook postrouting priority 100;\n  oifname %q snat to 198.51.100.2\n }\n}\n", t.gw[1]))
}

var (
	reCounter = regexp.MustCompile(`counter packets (\d+) bytes`)
	reActual  = regexp.MustCompile(`Actual: (\d+) packets \((\d+) bytes\) sent in ([0-9.]+) seconds`)
)

// received is the receiver's count.
func (t *topology) received() (uint64, error) {
	out, err := nsh(t.receiver, "nft", "list", "table", "netdev", countTable)
	if err != nil {
		return 0, err
	}
	m := reCounter.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("receiver: no counter in %q", out)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

func stat(ns, iface, name string) uint64 {
	var raw string
	if ns == "" {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", iface, "statistics", name))
		if err != nil {
			return 0
		}
		raw = string(b)
	} else {
		out, err := nsh(ns, "cat", filepath.Join("/sys/class/net", iface, "statistics", name))
		if err != nil {
			return 0
		}
		raw = out
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
	return v
}

// senderTx is what left the sender's veth.
func (t *topology) senderTx() (uint64, error) {
	return stat(t.sender, senderIf, "tx_packets"), nil
}

// kernelDrops are the kernel's drop counters along the path: the gateway
// ends' (where the kernel or the af_packet socket dropped) and the
// receiver's.
func (t *topology) kernelDrops(gatewayInRoot bool) map[string]uint64 {
	ns := ""
	if !gatewayInRoot {
		ns = t.router
	}
	return map[string]uint64{
		"kernel: " + "e1 veth rx_dropped":       stat(ns, t.gw[0], "rx_dropped"),
		"kernel: " + "e2 veth tx_dropped":       stat(ns, t.gw[1], "tx_dropped"),
		"kernel: " + "sender veth tx_dropped":   stat(t.sender, senderIf, "tx_dropped"),
		"kernel: " + "receiver veth rx_dropped": stat(t.receiver, receiverIf, "rx_dropped"),
	}
}

type replayResult struct {
	packets uint64
	seconds float64
}

// replay runs tcpreplay in the sender's namespace.
func (t *topology) replay(ctx context.Context, pcap string, args ...string) (replayResult, error) {
	a := append([]string{"netns", "exec", t.sender, "tcpreplay", "-i", senderIf}, args...)
	a = append(a, pcap)
	out, err := exec.CommandContext(ctx, "ip", a...).CombinedOutput()
	if err != nil {
		return replayResult{}, fmt.Errorf("tcpreplay %s: %v: %s", strings.Join(args, " "), err, out)
	}
	m := reActual.FindStringSubmatch(string(out))
	if m == nil {
		return replayResult{}, fmt.Errorf("tcpreplay: no \"Actual:\" line in %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	s, _ := strconv.ParseFloat(m[3], 64)
	return replayResult{packets: n, seconds: s}, nil
}

// cleanup removes everything setup created; safe to call more than once
// and concurrently with a failing run.
func (t *topology) cleanup() {
	t.once.Do(func() {
		_, _ = sh("nft", "delete", "table", "netdev", t.fenceTable)
		for _, ns := range []string{t.sender, t.receiver, t.router} {
			_, _ = sh("ip", "netns", "del", ns)
		}
		for _, gw := range t.gw {
			_, _ = sh("ip", "link", "del", gw)
		}
	})
}
