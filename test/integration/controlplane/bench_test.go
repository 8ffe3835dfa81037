package controlplane_test

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/server"
	"github.com/peergate/peergate/dataplane/agent"
	"github.com/peergate/peergate/internal/gcpause"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// BenchmarkLearnedRoutesToDataplane measures the control plane's part of
// "BGP update to tables live": SetLearned with n routes learned by the two
// externals of the Peering document's fourth use case → compile → push
// over a unix socket → the agent has the decoded Tables in hand (the
// dataplane's own lookup build is not included). One op is one generation;
// compile-ms and push-ms split the last one.
//
//	go test ./test/integration/controlplane -run '^$' -bench LearnedRoutesToDataplane -benchtime 3x
func BenchmarkLearnedRoutesToDataplane(b *testing.B) {
	root, err := moduleRoot()
	if err != nil {
		b.Fatal(err)
	}
	objs, err := manifest.LoadPaths(filepath.Join(root, "testdata", "manifests", "peering-api-4-internet-by-cost"))
	if err != nil {
		b.Skipf("seed manifests: %v", err)
	}
	// As cmd/controlplane runs it: the collector paused while a million
	// learned routes compile, except in the gc=running variant.
	var gc gcpause.Pauser
	gcRunning := false
	srv, err := server.New(server.Options{AroundUpdate: func(n int) func() {
		if gcRunning {
			return func() {}
		}
		return gc.Around(n)
	}})
	if err != nil {
		b.Fatal(err)
	}
	if res, err := srv.ApplyObjects(objs, false); err != nil || !res.Accepted {
		b.Fatalf("apply use case 4: %v %v", err, res.Errors)
	}
	dir, err := os.MkdirTemp("", "pgbench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "cp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(srv.GRPCOptions()...)
	srv.Register(g)
	go g.Serve(ln)
	defer g.Stop()

	live := make(chan *tablesv1.Tables, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{Address: "unix://" + sock, DataplaneID: "bench",
			Apply: func(t *tablesv1.Tables) error { live <- t; return nil }})
	}()
	defer func() { cancel(); <-done }()
	<-live // the configuration's first tables

	for _, n := range []int{1_000_000} {
		learned := make([]compile.Learned, 2)
		for v := range learned {
			learned[v] = randomLearned(n, int64(v))
		}
		for _, running := range []bool{false, true} {
			name := fmt.Sprintf("routes=%d", n)
			if running {
				name += ",gc=running"
			}
			gcRunning = running
			b.Run(name, func(b *testing.B) {
				var size int
				i := 0
				for b.Loop() {
					start := time.Now()
					if err := srv.SetLearned(learned[i%2]); err != nil {
						b.Fatal(err)
					}
					published := time.Since(start)
					want := srv.Generation()
					for t := range live {
						if t.GetGeneration() == want {
							size = proto.Size(t)
							break
						}
					}
					b.ReportMetric(float64(published.Milliseconds()), "compile-ms")
					b.ReportMetric(float64((time.Since(start) - published).Milliseconds()), "push-ms")
					i++
				}
				b.ReportMetric(float64(size)/(1<<20), "tables-MiB")
			})
		}
	}
}

// randomLearned spreads n prefixes over the two externals of use case 4;
// seed varies the MEDs so that consecutive generations differ.
func randomLearned(n int, seed int64) compile.Learned {
	r := rand.New(rand.NewSource(1))
	med := rand.New(rand.NewSource(seed))
	l := compile.Learned{}
	for i := range n {
		a := netip.AddrFrom4([4]byte{byte(11 + r.Intn(180)), byte(r.Intn(256)), byte(r.Intn(256)), 0})
		p, _ := a.Prefix(8 + r.Intn(17))
		ext, nh := "vpc-e1", "203.0.113.1"
		if i%2 == 1 {
			ext, nh = "vpc-e2", "198.51.100.1"
		}
		l[ext] = append(l[ext], compile.LearnedRoute{Prefix: p, NextHop: netip.MustParseAddr(nh), MED: uint32(med.Intn(3)), Neighbor: nh, ASPathLen: 2})
	}
	return l
}
