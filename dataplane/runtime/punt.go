package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// configureKernelIface gives a punt interface the port's addresses and MTU
// and brings it up, with iproute2 (a dependency of every peergate install).
// The kernel then answers on the port's addresses (BGP, ssh) through it.
func configureKernelIface(ifname string, pc PortConfig) error {
	cmds := [][]string{}
	if pc.MTU > 0 {
		cmds = append(cmds, []string{"link", "set", "dev", ifname, "mtu", fmt.Sprint(pc.MTU)})
	}
	hasV6 := false
	for _, a := range pc.PuntAddrs {
		hasV6 = hasV6 || a.Addr().Is6()
	}
	if !hasV6 {
		// No IPv6 address: keep the kernel from sending router
		// solicitations and MLD reports out of the data port.
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+ifname+"/disable_ipv6", []byte("1"), 0o644)
	}
	for _, a := range pc.PuntAddrs {
		cmds = append(cmds, []string{"addr", "replace", a.String(), "dev", ifname})
	}
	cmds = append(cmds, []string{"link", "set", "dev", ifname, "up"})
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// An af_packet port is a kernel interface the kernel keeps receiving on.
// Its punt interface has the same MAC and the port's addresses, so without
// a fence the kernel would take every punted packet twice: once from the
// tap and once straight from the port. An nftables netdev ingress hook
// drops on the port after packet sockets (and so DPDK) have seen the
// frame, which makes the port as deaf to the kernel as a NIC bound to DPDK.
func afPacketIface(device string) string {
	if !strings.HasPrefix(device, "net_af_packet") {
		return ""
	}
	for _, kv := range strings.Split(device, ",")[1:] {
		if v, ok := strings.CutPrefix(kv, "iface="); ok {
			return v
		}
	}
	return ""
}

func fenceTable(iface string) string {
	return "peergate_fence_" + strings.NewReplacer("-", "_", ".", "_").Replace(iface)
}

func fenceKernel(iface string) error {
	t := fenceTable(iface)
	rules := fmt.Sprintf("table netdev %s {\n chain ingress {\n  type filter hook ingress device %q priority -500; policy drop;\n }\n}\n", t, iface)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: fence kernel off %s: %v: %s", iface, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func unfenceKernel(iface string) error {
	if out, err := exec.Command("nft", "delete", "table", "netdev", fenceTable(iface)).CombinedOutput(); err != nil {
		return fmt.Errorf("nft: remove fence of %s: %v: %s", iface, err, strings.TrimSpace(string(out)))
	}
	return nil
}
