package compile

import (
	"fmt"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/peergate/peergate/controlplane/manifest"
)

// BenchmarkCompileLearned compiles the fourth use case's shape (vpc-1
// reaching two externals) with n BGP-learned routes split between them.
//
//	go test ./controlplane/compile -run '^$' -bench CompileLearned -benchtime 1x
func BenchmarkCompileLearned(b *testing.B) {
	e1 := "  e1:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 192.168.0.0/16}, {not: 1.2.3.0/30}]\n"
	e2 := "  e2:\n    ips: [{cidr: 0.0.0.0/0}, {not: 10.0.0.0/8}, {not: 192.168.0.0/16}, {not: 3.2.1.0/30}]\n    metric: 10\n"
	objs, err := manifest.Parse("bench.yaml", []byte(gateway+peering("a", vpc1Side, e1)+peering("b", vpc1Side, e2)))
	if err != nil {
		b.Fatal(err)
	}
	c := manifest.NewConfig(objs)
	for _, n := range benchSizes {
		r := rand.New(rand.NewSource(1))
		learned := Learned{}
		for i := range n {
			bits := 8 + r.Intn(17)
			a := netip.AddrFrom4([4]byte{byte(r.Intn(224)), byte(r.Intn(256)), byte(r.Intn(256)), 0})
			p, _ := a.Prefix(bits)
			ext, nh := "e1", "203.0.113.1"
			if i%2 == 1 {
				ext, nh = "e2", "198.51.100.1"
			}
			learned[ext] = append(learned[ext], LearnedRoute{Prefix: p, NextHop: netip.MustParseAddr(nh), MED: uint32(r.Intn(3)), Neighbor: nh, ASPathLen: 2})
		}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			for b.Loop() {
				t, _, err := Compile(c, learned)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(t.Vpcs[2].Routes)), "vpc1-routes")
			}
		})
	}
}

var benchSizes = []int{10_000, 100_000, 1_000_000}
