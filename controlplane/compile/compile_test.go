package compile

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/peergate/peergate/controlplane/manifest"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

const gateway = `apiVersion: peergate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec:
  vtepIP: 192.0.2.1
  ports:
    - {name: fabric, device: "net_null0", ips: [192.0.2.1/24]}
    - {name: e1, device: "net_null1"}
    - {name: e2, device: "net_null2"}
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: vpc-1}
spec:
  subnets: [10.1.1.0/24]
  vxlan: {port: fabric, vni: 100, vteps: [192.0.2.10]}
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: e1}
spec:
  subnets: [203.0.113.0/29]
  untagged: {port: e1}
  routerIPs: [203.0.113.2]
  external: true
  bgp: {neighbors: [{address: 203.0.113.1, asn: 65101}]}
---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: e2}
spec:
  subnets: [198.51.100.0/29]
  untagged: {port: e2}
  routerIPs: [198.51.100.2]
  external: true
  bgp: {neighbors: [{address: 198.51.100.1, asn: 65102}]}
`

func peering(name, a, b string) string {
	return fmt.Sprintf("---\napiVersion: gateway.githedgehog.com/v1alpha1\nkind: Peering\nmetadata: {name: %s}\nspec:\n%s%s", name, a, b)
}

const vpc1Side = "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n"

func compileYAML(t *testing.T, doc string, learned Learned) *tablesv1.Tables {
	t.Helper()
	objs, err := manifest.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tables, _, err := Compile(manifest.NewConfig(objs), learned)
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// render lists a route table one line per route, actions compact.
func renderRoutes(t *tablesv1.Tables, vpc string, local bool) string {
	var b strings.Builder
	for _, v := range t.Vpcs {
		if v.Name != vpc {
			continue
		}
		rs := v.Routes
		if local {
			rs = v.LocalRoutes
		}
		for _, r := range rs {
			fmt.Fprintf(&b, "%s m%d", r.Prefix, r.Metric)
			for _, a := range r.Actions {
				b.WriteString(" " + strings.TrimPrefix(a.Kind.String(), "ACTION_"))
				if a.Kind == tablesv1.ActionKind_ACTION_FORWARD || a.Kind == tablesv1.ActionKind_ACTION_DELIVER {
					fmt.Fprintf(&b, ">%s", t.Vpcs[a.DstVpc].Name)
				}
				if a.Via != "" {
					b.WriteString(" via " + a.Via)
				}
				if a.DstNat != "" {
					b.WriteString(" dnat " + a.DstNat)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func lr(prefix, nh, neighbor string, med uint32, aspath int) LearnedRoute {
	return LearnedRoute{Prefix: netip.MustParsePrefix(prefix), NextHop: netip.MustParseAddr(nh), MED: med, Neighbor: neighbor, ASPathLen: aspath}
}

func TestLearnedRoutes(t *testing.T) {
	e1 := "  e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}]\n"
	e2 := "  e2:\n    ips: [{cidr: 0.0.0.0/0}]\n    metric: 10\n"
	for _, tc := range []struct {
		name    string
		doc     string
		learned Learned
		vpc     string
		local   bool
		want    string
	}{
		{
			name: "an external delivers via the next hop inside its subnet, else via the neighbour",
			doc:  gateway + peering("a", vpc1Side, e1), vpc: "e1", local: true,
			learned: Learned{"e1": {lr("8.8.8.0/24", "203.0.113.5", "203.0.113.1", 0, 1), lr("9.9.9.0/24", "172.16.0.1", "203.0.113.1", 7, 1)}},
			want:    "8.8.8.0/24 m0 DELIVER>e1 via 203.0.113.5\n9.9.9.0/24 m7 DELIVER>e1 via 203.0.113.1\n203.0.113.0/29 m0 DELIVER>e1\n203.0.113.2/32 m0 LOCAL\n",
		},
		{
			name: "the lowest MED wins, then the shortest AS path, and equal best routes are ECMP",
			doc:  gateway + peering("a", vpc1Side, e1), vpc: "e1", local: true,
			learned: Learned{"e1": {
				lr("8.0.0.0/8", "203.0.113.3", "n1", 5, 1), lr("8.0.0.0/8", "203.0.113.4", "n2", 1, 3), lr("8.0.0.0/8", "203.0.113.5", "n3", 1, 2),
				lr("9.0.0.0/8", "203.0.113.3", "n1", 0, 2), lr("9.0.0.0/8", "203.0.113.4", "n2", 0, 2),
			}},
			want: "8.0.0.0/8 m1 DELIVER>e1 via 203.0.113.5\n9.0.0.0/8 m0 DELIVER>e1 via 203.0.113.3 DELIVER>e1 via 203.0.113.4\n203.0.113.0/29 m0 DELIVER>e1\n203.0.113.2/32 m0 LOCAL\n",
		},
		{
			name: "a learned route straddling a not keeps its prefix and the excluded part is dropped",
			doc:  gateway + peering("a", vpc1Side, e1), vpc: "vpc-1",
			learned: Learned{"e1": {lr("10.0.0.0/7", "203.0.113.3", "n1", 0, 1)}},
			want:    "10.0.0.0/7 m0 FORWARD>e1\n10.0.0.0/8 m0 DROP\n10.1.1.0/24 m0 DELIVER>vpc-1\n10.1.1.1/32 m0 LOCAL\n203.0.113.0/29 m0 FORWARD>e1\n",
		},
		{
			name: "a learned route inside a not is not reachable at all",
			doc:  gateway + peering("a", vpc1Side, e1), vpc: "vpc-1",
			learned: Learned{"e1": {lr("10.9.0.0/16", "203.0.113.3", "n1", 0, 1)}},
			want:    "10.1.1.0/24 m0 DELIVER>vpc-1\n10.1.1.1/32 m0 LOCAL\n203.0.113.0/29 m0 FORWARD>e1\n",
		},
		{
			name: "the side's metric is added to the MED and the lowest sum wins",
			doc:  gateway + peering("a", vpc1Side, e1) + peering("b", vpc1Side, e2), vpc: "vpc-1",
			learned: Learned{"e1": {lr("8.0.0.0/8", "203.0.113.3", "n1", 15, 1)}, "e2": {lr("8.0.0.0/8", "198.51.100.3", "n2", 2, 1), lr("9.0.0.0/8", "198.51.100.3", "n2", 0, 1)}},
			want:    "8.0.0.0/8 m12 FORWARD>e2\n9.0.0.0/8 m10 FORWARD>e2\n10.1.1.0/24 m0 DELIVER>vpc-1\n10.1.1.1/32 m0 LOCAL\n198.51.100.0/29 m10 FORWARD>e2\n203.0.113.0/29 m0 FORWARD>e1\n",
		},
		{
			name: "equal sums are one ECMP route, and an address one external excludes goes to the other",
			doc:  gateway + peering("a", vpc1Side, e1) + peering("b", vpc1Side, e2), vpc: "vpc-1",
			learned: Learned{"e1": {lr("0.0.0.0/0", "203.0.113.3", "n1", 10, 1)}, "e2": {lr("0.0.0.0/0", "198.51.100.3", "n2", 0, 1)}},
			want:    "0.0.0.0/0 m10 FORWARD>e1 FORWARD>e2\n10.0.0.0/8 m10 FORWARD>e2\n10.1.1.0/24 m0 DELIVER>vpc-1\n10.1.1.1/32 m0 LOCAL\n198.51.100.0/29 m10 FORWARD>e2\n203.0.113.0/29 m0 FORWARD>e1\n",
		},
		{
			name: "a longer prefix wins over a lower metric",
			doc:  gateway + peering("a", vpc1Side, e1) + peering("b", vpc1Side, e2), vpc: "vpc-1",
			learned: Learned{"e1": {lr("0.0.0.0/0", "203.0.113.3", "n1", 0, 1)}, "e2": {lr("8.8.0.0/16", "198.51.100.3", "n2", 100, 1)}},
			want:    "0.0.0.0/0 m0 FORWARD>e1\n8.8.0.0/16 m110 FORWARD>e2\n10.0.0.0/8 m0 DROP\n10.1.1.0/24 m0 DELIVER>vpc-1\n10.1.1.1/32 m0 LOCAL\n198.51.100.0/29 m10 FORWARD>e2\n",
		},
		{
			name: "learned routes of an external are not its own hosts' routes",
			doc:  gateway + peering("a", vpc1Side, e1), vpc: "e1",
			learned: Learned{"e1": {lr("0.0.0.0/0", "203.0.113.3", "n1", 0, 1)}},
			want:    "10.1.1.0/24 m0 FORWARD>vpc-1\n203.0.113.0/29 m0 DELIVER>e1\n203.0.113.2/32 m0 LOCAL\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderRoutes(compileYAML(t, tc.doc, tc.learned), tc.vpc, tc.local)
			if got != tc.want {
				t.Errorf("routes of %s:\n%s\nwant:\n%s", tc.vpc, got, tc.want)
			}
		})
	}
}

func TestStatelessNATTranslatesEachAlignedSegment(t *testing.T) {
	doc := gateway + `---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: vpc-2}
spec:
  subnets: [10.2.0.0/24]
  vlan: {port: e1, id: 20}
` + peering("p", "  vpc-1:\n    ips: [{cidr: 10.1.1.0/24}]\n", "  vpc-2:\n    ips: [{cidr: 10.2.0.0/24}, {not: 10.2.0.128/26}]\n    as: [192.168.0.128/25, 192.168.1.0/25]\n")
	got := renderRoutes(compileYAML(t, doc, nil), "vpc-1", false)
	want := "10.1.1.0/24 m0 DELIVER>vpc-1\n10.1.1.1/32 m0 LOCAL\n" +
		"192.168.0.128/25 m0 FORWARD>vpc-2 dnat 10.2.0.0/25\n" +
		"192.168.1.0/25 m0 FORWARD>vpc-2 dnat 10.2.0.128/25\n" +
		"192.168.1.0/26 m0 DROP\n"
	if got != want {
		t.Errorf("routes of vpc-1:\n%s\nwant:\n%s", got, want)
	}
}

func TestKubeOVNPolicySrcRoutesMatchTheSource(t *testing.T) {
	doc := gateway + `---
apiVersion: peergate.io/v1alpha1
kind: VPC
metadata: {name: vpc-2}
spec:
  subnets: [10.2.0.0/24]
  vlan: {port: e1, id: 20}
---
kind: Vpc
apiVersion: kubeovn.io/v1
metadata: {name: vpc-1}
spec:
  vpcPeerings: [{remoteVpc: vpc-2, localConnectIP: 169.254.0.1/30}]
  staticRoutes: [{cidr: 10.1.1.128/25, nextHopIP: 169.254.0.2, policy: policySrc}]
---
kind: Vpc
apiVersion: kubeovn.io/v1
metadata: {name: vpc-2}
spec:
  vpcPeerings: [{remoteVpc: vpc-1, localConnectIP: 169.254.0.2/30}]
`
	tables := compileYAML(t, doc, nil)
	rs := tables.Vpcs[2].Routes // e1, e2, vpc-1, vpc-2
	last := rs[len(rs)-1]
	if tables.Vpcs[2].Name != "vpc-1" || last.Prefix != "10.1.1.128/25" || !last.MatchSource || last.Actions[0].TtlDecrement != 2 || last.Actions[0].DstVpc != 3 {
		t.Errorf("last route of vpc-1 = %v, want a match_source FORWARD to vpc-2 with ttl 2", last)
	}
}

func TestOutputDoesNotDependOnDocumentOrder(t *testing.T) {
	objs, err := manifest.LoadPaths("../../testdata/manifests/peering-api-4-internet-by-cost")
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := Compile(manifest.NewConfig(objs), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := JSON(first)
	r := rand.New(rand.NewSource(1))
	for range 5 {
		r.Shuffle(len(objs), func(i, j int) { objs[i], objs[j] = objs[j], objs[i] })
		again, _, err := Compile(manifest.NewConfig(objs), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := JSON(again); !bytes.Equal(got, want) {
			t.Fatal("compiled tables changed with document order")
		}
	}
}

func TestCompileRefusesAnInvalidConfigWithEveryError(t *testing.T) {
	_, diags, err := Files("../../testdata/manifests/peering-api-3-external-as")
	if err == nil || len(diags) != 1 || !strings.Contains(err.Error(), "cannot be mapped 1:1 onto the 4 addresses") {
		t.Errorf("err = %v, diags = %v", err, diags)
	}
}

// TestCloneAndCompareCoverEveryActionField fails when Action grows a field
// that cloneAction or compareActions does not know.
func TestCloneAndCompareCoverEveryActionField(t *testing.T) {
	a := &tablesv1.Action{}
	fields := a.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		one := &tablesv1.Action{} // this field only, to catch compareActions ignoring it
		for _, m := range []protoreflect.Message{a.ProtoReflect(), one.ProtoReflect()} {
			set(t, m, f)
		}
		if compareActions(one, &tablesv1.Action{}) == 0 {
			t.Errorf("compareActions ignores field %s", f.Name())
		}
	}
	if c := cloneAction(a); !proto.Equal(c, a) {
		t.Errorf("cloneAction(%v) = %v", a, c)
	}
}

func set(t *testing.T, m protoreflect.Message, f protoreflect.FieldDescriptor) {
	switch f.Kind() {
	case protoreflect.EnumKind:
		m.Set(f, protoreflect.ValueOfEnum(1))
	case protoreflect.StringKind:
		m.Set(f, protoreflect.ValueOfString("x"))
	case protoreflect.Uint32Kind:
		m.Set(f, protoreflect.ValueOfUint32(7))
	default:
		t.Fatalf("field %s of kind %s: teach this test and cloneAction", f.Name(), f.Kind())
	}
}
