package validate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/manifest"
)

const gateway = `apiVersion: peergate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec:
  asn: 65000
  routerID: 192.0.2.1
  vtepIP: 192.0.2.1
  ports:
    - {name: fabric, device: "net_null0", ips: [192.0.2.1/24]}
    - {name: p1, device: "net_null1"}
    - {name: p2, device: "net_null2"}
`

// vpc is a peergate VPC document; attach is its flow-style attachment.
func vpc(name, subnets, attach string, extra ...string) string {
	s := fmt.Sprintf("---\napiVersion: peergate.io/v1alpha1\nkind: VPC\nmetadata: {name: %s}\nspec:\n  subnets: [%s]\n  %s\n", name, subnets, attach)
	for _, e := range extra {
		s += "  " + e + "\n"
	}
	return s
}

// twoVPCs attaches vpc-1 (10.1.1.0/24, VXLAN 100) and vpc-2 (10.2.1.0/24, untagged p1).
var twoVPCs = gateway + vpc("vpc-1", "10.1.1.0/24", "vxlan: {port: fabric, vni: 100, vteps: [192.0.2.10]}") +
	vpc("vpc-2", "10.2.1.0/24", "untagged: {port: p1}")

func peering(name, body string) string {
	return fmt.Sprintf("---\napiVersion: gateway.githedgehog.com/v1alpha1\nkind: Peering\nmetadata: {name: %s}\nspec:\n%s", name, body)
}

func kubeVpc(name, spec string) string {
	return fmt.Sprintf("---\nkind: Vpc\napiVersion: kubeovn.io/v1\nmetadata: {name: %s}\nspec:\n%s", name, spec)
}

const okPeering = `  vpc-1:
    ips: [{cidr: 10.1.1.0/24}]
  vpc-2:
    ips: [{cidr: 10.2.1.0/24}]
`

var kubeOK = kubeVpc("vpc-1", `  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 169.254.0.1/30}]
  staticRoutes: [{cidr: 10.2.1.0/24, nextHopIP: 169.254.0.2, policy: policyDst}]
`) + kubeVpc("vpc-2", `  vpcPeerings: [{remoteVpc: vpc-1, localConnectIP: 169.254.0.2/30}]
  staticRoutes: [{cidr: 10.1.1.0/24, nextHopIP: 169.254.0.1}]
`)

func check(t *testing.T, doc string) (warns, errs []Diagnostic) {
	t.Helper()
	objs, err := manifest.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Validate(manifest.NewConfig(objs))
}

func TestValidConfigurationsHaveNoErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"two VPCs and a plain peering", twoVPCs + peering("p", okPeering)},
		{"a reciprocal Kube-OVN peering", twoVPCs + kubeOK},
		{"stateless NAT of equal sizes", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}, {not: 10.1.1.42/32}]\n    as: [192.168.1.0/25, 192.168.2.0/25]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n")},
		{"one pool shared by two peerings of one VPC", twoVPCs + vpc("vpc-3", "10.3.0.0/24", "untagged: {port: p2}") +
			peering("a", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/30]\n    natType: stateful\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n") +
			peering("b", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/30]\n    natType: stateful\n  vpc-3:\n    ips: [{cidr: 10.3.0.0/24}]\n")},
		{"overlapping subnets separated by NAT", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}") + vpc("vpc-2", "10.1.1.0/24", "untagged: {port: p2}") +
			peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/24]\n  vpc-2:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.2.0/24]\n")},
		{"fromVPCSubnet naming a Kube-OVN Subnet", gateway + vpc("vpc-1", "", "untagged: {port: p1}") + vpc("vpc-2", "10.2.1.0/24", "untagged: {port: p2}") +
			"---\nkind: Subnet\napiVersion: kubeovn.io/v1\nmetadata: {name: net1}\nspec: {vpc: vpc-1, cidrBlock: 10.1.1.0/24}\n" +
			peering("p", "  vpc-1:\n    ips: [{fromVPCSubnet: net1}]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := check(t, tc.doc)
			for _, e := range errs {
				t.Errorf("unexpected error: %s", e)
			}
		})
	}
}

// TestEveryRuleRejectsItsFailingExample lists one failing example per
// validation rule and the diagnostic it must produce ("Kind/name: field:
// reason", after the file and document).
func TestEveryRuleRejectsItsFailingExample(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"a CIDR with a bad length is rejected", gateway + vpc("vpc-1", "10.1.1.0/33", "untagged: {port: p1}"),
			`VPC/vpc-1: spec.subnets[0]: invalid CIDR "10.1.1.0/33": want address/length, e.g. 10.1.1.0/24`},
		{"a CIDR with host bits set is rejected", gateway + vpc("vpc-1", "10.1.1.1/24", "untagged: {port: p1}"),
			`VPC/vpc-1: spec.subnets[0]: CIDR "10.1.1.1/24" has host bits set: did you mean 10.1.1.0/24?`},
		{"an invalid IP address is rejected", twoVPCs + kubeVpc("vpc-1", "  staticRoutes: [{cidr: 10.2.1.0/24, nextHopIP: 169.254.0.300}]\n"),
			`Vpc/vpc-1: spec.staticRoutes[0].nextHopIP: invalid IP address "169.254.0.300"`},
		{"a peering naming three VPCs is rejected", twoVPCs + vpc("vpc-3", "10.3.0.0/24", "untagged: {port: p2}") +
			peering("p", okPeering+"  vpc-3:\n    ips: [{cidr: 10.3.0.0/24}]\n"),
			`Peering/p: spec: a Peering names exactly two VPCs, got 3 (vpc-1, vpc-2, vpc-3)`},
		{"a peering naming one VPC is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n"),
			`Peering/p: spec: a Peering names exactly two VPCs, got 1 (vpc-1)`},
		{"a second Peering between one pair is rejected", twoVPCs + peering("a", okPeering) + peering("b", okPeering),
			`Peering/b: spec: a second peering between vpc-1 and vpc-2 (the first is Peering/a, test.yaml:doc 3): two VPCs have at most one peering`},
		{"a Peering beside a Kube-OVN peering of the same pair is rejected", twoVPCs + kubeOK + peering("p", okPeering),
			`Peering/p: spec: a second peering between vpc-1 and vpc-2 (the first is Vpc/vpc-1, test.yaml:doc 3): two VPCs have at most one peering`},
		{"a Peering naming an unknown VPC is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n  vpc-9:\n    ips: [{cidr: 10.9.0.0/24}]\n"),
			`Peering/p: spec.vpc-9: unknown VPC "vpc-9": declare it with a peergate.io/v1alpha1 VPC (external: true for an external) or a kubeovn.io/v1 Vpc`},
		{"a Subnet naming an unknown VPC is rejected", twoVPCs + "---\nkind: Subnet\napiVersion: kubeovn.io/v1\nmetadata: {name: s}\nspec: {vpc: vpc-9, cidrBlock: 10.9.0.0/24}\n",
			`Subnet/s: spec.vpc: unknown VPC "vpc-9"`},
		{"a Kube-OVN peering with an unknown VPC is rejected", twoVPCs + kubeVpc("vpc-1", "  vpcPeerings: [{remoteVpc: vpc-9, localConnectIP: 169.254.0.1/30}]\n"),
			`Vpc/vpc-1: spec.vpcPeerings[0].remoteVpc: unknown VPC "vpc-9"`},
		{"an attachment on an unknown port is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p9}"),
			`VPC/vpc-1: spec.untagged.port: unknown port "p9": the Gateway has no such port`},
		{"fromVPCSubnet naming a subnet the VPC lacks is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{fromVPCSubnet: net9}]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.ips[0].fromVPCSubnet: VPC vpc-1 has no subnet "net9" (its Kube-OVN Subnets: none)`},
		{"a Kube-OVN peering that is not reciprocal is rejected", twoVPCs + kubeVpc("vpc-1", "  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 169.254.0.1/30}]\n"),
			`Vpc/vpc-1: spec.vpcPeerings[0].remoteVpc: peering with vpc-2 is not reciprocal: vpc-2 has no vpcPeerings entry with remoteVpc: vpc-1`},
		{"localConnectIPs in two subnets are rejected", twoVPCs + kubeVpc("vpc-1", "  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 169.254.0.1/30}]\n") +
			kubeVpc("vpc-2", "  vpcPeerings: [{remoteVpc: vpc-1, localConnectIP: 169.254.1.2/30}]\n"),
			`Vpc/vpc-1: spec.vpcPeerings[0].localConnectIP: localConnectIP 169.254.0.1/30 and vpc-2's 169.254.1.2/30 are not in one subnet`},
		{"a localConnectIP colliding with a subnet is rejected", twoVPCs + kubeVpc("vpc-1", "  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 10.1.1.1/30}]\n") +
			kubeVpc("vpc-2", "  vpcPeerings: [{remoteVpc: vpc-1, localConnectIP: 10.1.1.2/30}]\n"),
			`Vpc/vpc-1: spec.vpcPeerings[0].localConnectIP: peering subnet 10.1.1.0/30 collides with subnet 10.1.1.0/24 of vpc-1`},
		{"a static route whose next hop is not the remote localConnectIP is rejected", twoVPCs + kubeVpc("vpc-1", `  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 169.254.0.1/30}]
  staticRoutes: [{cidr: 10.2.1.0/24, nextHopIP: 169.254.0.3}]
`) + kubeVpc("vpc-2", "  vpcPeerings: [{remoteVpc: vpc-1, localConnectIP: 169.254.0.2/30}]\n"),
			`Vpc/vpc-1: spec.staticRoutes[0].nextHopIP: next hop 169.254.0.3 is not the localConnectIP of a VPC vpc-1 peers with`},
		{"overlapping subnets of a Kube-OVN peering are rejected", gateway + vpc("vpc-1", "10.1.0.0/16", "untagged: {port: p1}") + vpc("vpc-2", "10.1.1.0/24", "untagged: {port: p2}") +
			kubeVpc("vpc-1", "  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 169.254.0.1/30}]\n") + kubeVpc("vpc-2", "  vpcPeerings: [{remoteVpc: vpc-1, localConnectIP: 169.254.0.2/30}]\n"),
			`Vpc/vpc-1: spec.vpcPeerings[0].remoteVpc: subnet 10.1.0.0/16 of vpc-1 overlaps subnet 10.1.1.0/24 of vpc-2: a Kube-OVN peering routes without NAT`},
		{"overlapping subnets peered without NAT are rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}") + vpc("vpc-2", "10.1.1.0/24", "untagged: {port: p2}") +
			peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/24]\n  vpc-2:\n    ips: [{cidr: 10.1.1.0/24}]\n"),
			`Peering/p: spec.vpc-2: vpc-2 exposes 10.1.1.0/24 toward vpc-1, which overlaps vpc-1's subnet 10.1.1.0/24: give vpc-2 an ` + "`as`" + ` (NAT) that does not overlap it`},
		{"stateless NAT of different sizes is rejected (counted before not)", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}, {not: 10.1.1.0/25}]\n    as: [192.168.1.0/25]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.as: stateless NAT needs as many addresses in as as in ips (counted before not): ips 10.1.1.0/24 hold 256, as 192.168.1.0/25 hold 128`},
		{"as CIDRs that overlap each other are rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/25, 192.168.1.0/25]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.as: as CIDRs 192.168.1.0/25 and 192.168.1.0/25 overlap: each public address maps to one private address`},
		{"ips outside the VPC's subnets are rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.0.0/16}]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.ips[0].cidr: 10.1.0.0/16 is outside the subnets of vpc-1 (10.1.1.0/24)`},
		{"stateful NAT on both sides is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/30]\n    natType: stateful\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n    as: [192.168.2.0/30]\n    natType: stateful\n"),
			`Peering/p: spec.vpc-2.natType: stateful NAT on both sides of one peering: neither side could ever open a session; keep natType: stateful on the side whose hosts initiate`},
		{"stateful NAT without a pool is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    natType: stateful\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.natType: stateful NAT needs a pool: give the public addresses in as`},
		{"an unknown natType is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    natType: dynamic\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.natType: unknown natType "dynamic": want stateless or stateful`},
		{"IPv4 and IPv6 mixed on one side are rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: ['fd00::/120']\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1: IPv4 and IPv6 mixed on one side (10.1.1.0/24 and fd00::/120): a side is one address family`},
		{"two VPCs with one VNI are rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "vxlan: {port: fabric, vni: 100, vteps: [192.0.2.10]}") + vpc("vpc-2", "10.2.1.0/24", "vxlan: {port: fabric, vni: 100, vteps: [192.0.2.11]}"),
			`VPC/vpc-2: spec.vxlan.vni: VNI 100 is already VPC vpc-1's: a VNI identifies one VPC`},
		{"two VPCs with one VLAN on a port are rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "vlan: {port: p1, id: 200}") + vpc("vpc-2", "10.2.1.0/24", "vlan: {port: p1, id: 200}"),
			`VPC/vpc-2: spec.vlan.id: VLAN 200 on port "p1" is already VPC vpc-1's`},
		{"VXLAN without the gateway's VTEP address is rejected", strings.Replace(gateway, "  vtepIP: 192.0.2.1\n", "", 1) + vpc("vpc-1", "10.1.1.0/24", "vxlan: {port: fabric, vni: 100, vteps: [192.0.2.10]}"),
			`VPC/vpc-1: spec.vxlan: VXLAN needs the gateway's own VTEP address: set spec.vtepIP in the Gateway`},
		{"VXLAN without remote VTEPs is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "vxlan: {port: fabric, vni: 100}"),
			`VPC/vpc-1: spec.vxlan.vteps: at least one remote VTEP is required`},
		{"a VLAN id out of range is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "vlan: {port: p1, id: 4095}"),
			`VPC/vpc-1: spec.vlan.id: VLAN id 4095 out of range 1-4094`},
		{"two untagged VPCs on one port are rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}") + vpc("vpc-2", "10.2.1.0/24", "untagged: {port: p1}"),
			`VPC/vpc-2: spec.untagged.port: port "p1" already carries VPC vpc-1 untagged: one untagged VPC per port`},
		{"a VPC with two attachments is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}", "vlan: {port: p2, id: 3}"),
			`VPC/vpc-1: spec: exactly one of vxlan, vlan or untagged is required, got 2`},
		{"an ingress port out of range is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    ingress: [{allow: {stateless: true, tcp: {dstPort: 70000}}}]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.ingress[0].allow.tcp.dstPort: port 70000 out of range 1-65535`},
		{"a BGP neighbour port out of range is rejected", gateway + vpc("e", "203.0.113.0/29", "untagged: {port: p1}", "external: true", "bgp: {neighbors: [{address: 127.0.0.1, port: 0x10000, asn: 65100}]}"),
			`VPC/e: spec.bgp.neighbors[0].port: port 65536 out of range 1-65535`},
		{"stateful pools of two VPCs that overlap are rejected", twoVPCs + vpc("vpc-3", "10.3.0.0/24", "untagged: {port: p2}") +
			peering("a", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n    as: [192.168.1.0/30]\n    natType: stateful\n  vpc-3:\n    ips: [{cidr: 10.3.0.0/24}]\n") +
			peering("b", "  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n    as: [192.168.1.0/29]\n    natType: stateful\n  vpc-3:\n    ips: [{cidr: 10.3.0.0/24}]\n"),
			`Peering/b: spec.vpc-2.as: stateful pool 192.168.1.0/29 of vpc-2 overlaps pool 192.168.1.0/30 of vpc-1 (peering a): two VPCs' allocators could give one public address and port to two sessions`},
		{"an external's as without natType (the Peering document's third use case) is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}") +
			vpc("vpc-e1", "203.0.113.0/29", "untagged: {port: p2}", "external: true") +
			peering("vpc-1--vpc-e1", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n  vpc-e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}]\n    as: [192.168.1.0/30]\n"),
			"Peering/vpc-1--vpc-e1: spec.vpc-e1.as: stateless NAT maps the i-th address of ips onto the i-th address of as, but 0.0.0.0/0 minus its not exclusions cannot be mapped 1:1 onto the 4 addresses of 192.168.1.0/30 (ips hold 4294967296 addresses before exclusions). To let vpc-1 reach vpc-e1 from these addresses, masquerade vpc-1 instead: move as to the vpc-1 side with natType: stateful, as in the fourth use case of the Peering document: `vpc-1: {ips: [{cidr: 10.1.1.0/24}], as: [192.168.1.0/30], natType: stateful}`"},
		{"an unknown static route policy is rejected", twoVPCs + kubeVpc("vpc-1", "  staticRoutes: [{cidr: 10.2.1.0/24, nextHopIP: 169.254.0.2, policy: policyAny}]\n"),
			`Vpc/vpc-1: spec.staticRoutes[0].policy: unknown policy "policyAny": want policyDst or policySrc`},
		{"an ips entry with two fields is rejected", twoVPCs + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24, not: 10.1.1.0/25}]\n  vpc-2:\n    ips: [{cidr: 10.2.1.0/24}]\n"),
			`Peering/p: spec.vpc-1.ips[0]: exactly one of cidr, not or fromVPCSubnet is required, got 2`},
		{"a second Gateway is rejected", gateway + "---\n" + strings.Replace(gateway, "name: gw", "name: gw2", 1),
			`Gateway/gw2: a second Gateway: one gateway is configured by exactly one Gateway object`},
		{"BGP on an internal VPC is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}", "bgp: {neighbors: [{address: 127.0.0.1, asn: 65100}]}"),
			`VPC/vpc-1: spec.bgp: BGP neighbours are for external VPCs: set external: true`},
		{"a static route next hop outside the subnets is rejected", gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}", "routes: [{cidr: 0.0.0.0/0, nextHop: 10.9.9.9}]"),
			`VPC/vpc-1: spec.routes[0].nextHop: next hop 10.9.9.9 is in none of the VPC's subnets: it cannot be resolved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := check(t, tc.doc)
			var got []string
			for _, e := range errs {
				got = append(got, e.String())
				if strings.HasSuffix(e.String(), ": "+tc.want) && strings.HasPrefix(e.String(), "test.yaml:doc ") {
					return
				}
			}
			t.Errorf("want error\n  %s\ngot\n  %s", tc.want, strings.Join(got, "\n  "))
		})
	}
}

func TestOverlappingExposuresTowardOneVPCAreWarnings(t *testing.T) {
	doc := gateway + vpc("vpc-1", "10.1.1.0/24", "untagged: {port: p1}") +
		vpc("e1", "203.0.113.0/29", "untagged: {port: p2}", "external: true") +
		vpc("e2", "198.51.100.0/29", "vxlan: {port: fabric, vni: 7, vteps: [192.0.2.7]}", "external: true") +
		peering("a", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n  e1:\n    ips: [{cidr: 8.0.0.0/8}]\n") +
		peering("b", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n  e2:\n    ips: [{cidr: 8.8.0.0/16}]\n")
	warns, errs := check(t, doc)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := "test.yaml:doc 5: Peering/b: spec.e2.ips: exposure of e2 overlaps that of e1 (peering a) toward vpc-1 (8.8.0.0/16): equal routes are ECMP"
	if len(warns) != 1 || warns[0].String() != want {
		t.Errorf("warnings = %v, want [%s]", warns, want)
	}
}

func TestDiagnosticStringNamesFileDocumentObjectFieldAndReason(t *testing.T) {
	d := Diagnostic{Source: manifest.Source{File: "a.yaml", Index: 2}, Key: manifest.Key{Kind: "Peering", Name: "p"}, Field: "spec.vpc-1.as", Message: "bad"}
	if got, want := d.String(), "a.yaml:doc 2: Peering/p: spec.vpc-1.as: bad"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestAlignedSegmentsMapTheIthAddressOntoTheIth(t *testing.T) {
	s := &Side{CIDRs: mustPrefixes("10.0.0.0/24", "10.0.2.0/25"), As: mustPrefixes("192.168.0.128/25", "192.168.1.0/24")}
	var got []string
	for _, seg := range s.Segments() {
		got = append(got, seg.From.String()+">"+seg.To.String())
	}
	want := "10.0.0.0/25>192.168.0.128/25 10.0.0.128/25>192.168.1.0/25 10.0.2.0/25>192.168.1.128/25"
	if strings.Join(got, " ") != want {
		t.Errorf("segments = %v, want %s", got, want)
	}
}

func mustPrefixes(ss ...string) []netipPrefix {
	out := make([]netipPrefix, len(ss))
	for i, s := range ss {
		out[i] = mustPrefix(s)
	}
	return out
}
