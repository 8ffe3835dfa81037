package manifest_test

import (
	"reflect"
	"testing"

	"github.com/peergate/peergate/controlplane/manifest"
)

// TestIssueExamplesUseExactlyTheseFieldNames parses the Gateway and VPC
// examples of the manifest contract (issue 2) as written there, so a
// renamed YAML tag breaks this test before it breaks an acceptance test.
func TestIssueExamplesUseExactlyTheseFieldNames(t *testing.T) {
	doc := `apiVersion: peergate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec:
  asn: 65000                # BGP ASN of the gateway (externals)
  routerID: 192.0.2.1
  vtepIP: 192.0.2.1         # source address of the VXLAN packets it sends
  ports:
    - name: fabric
      device: "net_af_packet0,iface=gw0"   # DPDK vdev devargs, or a PCI address
      mac: "02:00:00:00:00:01"  # optional; default the device's own MAC
      ips: [192.0.2.1/24]   # addresses it owns on that port (ARP, ping)
      mtu: 1500
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: v}
spec:
  subnets: [10.1.1.0/24]          # may be left out when Kube-OVN Subnets name this VPC
  vxlan: {port: fabric, vni: 100, vteps: [192.0.2.10]}   # exactly one of vxlan / vlan / untagged
  vlan: {port: fabric, id: 200}   # 802.1Q id 1-4094
  untagged: {port: uplink}        # untagged frames on that port (native VLAN; tagged frames may share the port)
  routerIPs: [10.1.1.1]           # default: each subnet's first host address (Subnet.gateway for Kube-OVN)
  routes: [{cidr: 0.0.0.0/0, nextHop: 203.0.113.1}]   # optional static routes inside the VPC
  external: false
  bgp: {neighbors: [{address: 127.0.0.1, port: 1790, asn: 65100}]}   # externals only
---
kind: Subnet
apiVersion: kubeovn.io/v1
metadata: {name: s}
spec: {vpc: v, cidrBlock: 10.1.1.0/24, gateway: 10.1.1.254}
`
	objs, err := manifest.Parse("issue.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	gw := &manifest.GatewaySpec{ASN: 65000, RouterID: "192.0.2.1", VTEPIP: "192.0.2.1", Ports: []manifest.Port{
		{Name: "fabric", Device: "net_af_packet0,iface=gw0", MAC: "02:00:00:00:00:01", IPs: []string{"192.0.2.1/24"}, MTU: 1500},
	}}
	vpc := &manifest.VPCSpec{
		Subnets:   []string{"10.1.1.0/24"},
		VXLAN:     &manifest.VXLAN{Port: "fabric", VNI: 100, VTEPs: []string{"192.0.2.10"}},
		VLAN:      &manifest.VLAN{Port: "fabric", ID: 200},
		Untagged:  &manifest.Untagged{Port: "uplink"},
		RouterIPs: []string{"10.1.1.1"},
		Routes:    []manifest.VPCRoute{{CIDR: "0.0.0.0/0", NextHop: "203.0.113.1"}},
		BGP:       &manifest.BGP{Neighbors: []manifest.Neighbor{{Address: "127.0.0.1", Port: 1790, ASN: 65100}}},
	}
	subnet := &manifest.SubnetSpec{Vpc: "v", CIDRBlock: "10.1.1.0/24", Gateway: "10.1.1.254"}
	if !reflect.DeepEqual(objs[0].Gateway, gw) {
		t.Errorf("Gateway = %+v, want %+v", objs[0].Gateway, gw)
	}
	if !reflect.DeepEqual(objs[1].VPC, vpc) {
		t.Errorf("VPC = %+v, want %+v", objs[1].VPC, vpc)
	}
	if !reflect.DeepEqual(objs[2].Subnet, subnet) {
		t.Errorf("Subnet = %+v, want %+v", objs[2].Subnet, subnet)
	}
}
