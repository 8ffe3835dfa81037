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
