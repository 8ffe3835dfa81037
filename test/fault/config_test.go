package fault_test

import (
	"fmt"
	"strings"
)

// bigConfig is one of two large, valid configurations with the same object
// keys and different contents, so that applying one over the other
// replaces every object and changes every compiled table: n VPCs on VXLAN,
// each with a subnet, chained by n Peerings with static NAT on one side.
// Variant 0 peers VPC i with i+1, variant 1 with i+2, on other subnets,
// VNIs and NAT prefixes.
func bigConfig(variant, n int) string {
	var b strings.Builder
	// Even the Gateway differs, so that no object is left unchanged.
	fmt.Fprintf(&b, `apiVersion: peergate.io/v1alpha1
kind: Gateway
metadata:
  name: gateway
spec:
  asn: 65000
  routerID: 192.0.2.1
  vtepIP: 192.0.2.1
  ports:
    - {name: fabric, device: "net_af_packet0,iface=gw0", ips: [192.0.2.1/24], mtu: %d}
`, 1500+variant*7500)
	subnet := func(i int) string {
		if variant == 0 {
			return fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		}
		return fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256)
	}
	nat := func(i int) string {
		if variant == 0 {
			return fmt.Sprintf("100.%d.%d.0/24", 64+i/256, i%256)
		}
		return fmt.Sprintf("100.%d.%d.0/24", 96+i/256, i%256)
	}
	vniBase, step := 1000, 1
	if variant == 1 {
		vniBase, step = 50000, 2
	}
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata:
  name: vpc-%04d
spec:
  subnets: [%s]
  vxlan: {port: fabric, vni: %d, vteps: [192.0.2.10]}
`, i, subnet(i), vniBase+i)
	}
	for i := range n {
		j := (i + step) % n
		fmt.Fprintf(&b, `---
apiVersion: gateway.githedgehog.com/v1alpha1
kind: Peering
metadata:
  name: peering-%04d
spec:
  vpc-%04d:
    ips: [{cidr: %s}]
    as: [%s]
  vpc-%04d:
    ips: [{cidr: %s}]
`, i, i, subnet(i), nat(i), j, subnet(j))
	}
	return b.String()
}
