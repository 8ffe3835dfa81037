package server_test

import (
	"fmt"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/server"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func learnedRoute(prefix, nb string, med uint32) compile.LearnedRoute {
	return compile.LearnedRoute{Prefix: netip.MustParsePrefix(prefix), NextHop: netip.MustParseAddr(nb), Neighbor: nb, MED: med, ASPathLen: 1}
}

func TestUpdateLearnedPublishesADeltaEqualToAFullCompile(t *testing.T) {
	objs, err := manifest.LoadPaths("../../testdata/manifests/peering-api-4-internet-by-cost")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := srv.ApplyObjects(objs, false); err != nil || !res.Accepted {
		t.Fatalf("apply: %v %v", err, res.Errors)
	}
	var batch []compile.LearnedRoute // large enough to travel as a route block
	for i := range 2 * 64 {
		batch = append(batch, learnedRoute(fmt.Sprintf("100.64.%d.0/24", i), "203.0.113.3", 0))
	}
	steps := []struct {
		name     string
		vpc      string
		add, wd  []compile.LearnedRoute
		learned  compile.Learned // the whole learned set after the step
		newTable bool
	}{
		{"a first route of vpc-e1", "vpc-e1", []compile.LearnedRoute{learnedRoute("8.8.8.0/24", "203.0.113.3", 0)}, nil,
			compile.Learned{"vpc-e1": {learnedRoute("8.8.8.0/24", "203.0.113.3", 0)}}, true},
		{"the same prefix from vpc-e2 with a metric that loses", "vpc-e2", []compile.LearnedRoute{learnedRoute("8.8.8.0/24", "198.51.100.3", 0)}, nil,
			compile.Learned{"vpc-e1": {learnedRoute("8.8.8.0/24", "203.0.113.3", 0)}, "vpc-e2": {learnedRoute("8.8.8.0/24", "198.51.100.3", 0)}}, true},
		{"vpc-e1 withdraws: failover", "vpc-e1", nil, []compile.LearnedRoute{learnedRoute("8.8.8.0/24", "203.0.113.3", 0)},
			compile.Learned{"vpc-e2": {learnedRoute("8.8.8.0/24", "198.51.100.3", 0)}}, true},
		{"a batch from vpc-e1 (packed for the wire while it is applied)", "vpc-e1", batch, nil,
			compile.Learned{"vpc-e1": batch, "vpc-e2": {learnedRoute("8.8.8.0/24", "198.51.100.3", 0)}}, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := srv.Generation()
			// Streams may still be sending the previous tables: the update
			// must leave them as they were.
			prev := srv.Hub().Current()
			prevCopy := proto.Clone(prev)
			if err := srv.UpdateLearned(st.vpc, st.add, st.wd); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(prev, prevCopy) {
				t.Error("the update changed the previously published tables")
			}
			if got := srv.Generation(); got != before+1 {
				t.Fatalf("generation %d, want %d", got, before+1)
			}
			want, _, err := compile.Compile(srv.Config(), st.learned)
			if err != nil {
				t.Fatal(err)
			}
			want.Generation = srv.Generation()
			if got := srv.Hub().Current(); !proto.Equal(got, want) {
				t.Errorf("tables after the delta differ from a full compile")
			}
			if srv.Tables() != srv.Hub().Current() {
				t.Error("the server and the hub hold different tables")
			}
		})
	}
}

// withRoutesOf copies Tables and Vpc field by field: a field added to
// either message must be added there too.
func TestTheShallowCopyKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		m    protoreflect.ProtoMessage
		want int
	}{{&tablesv1.Tables{}, 7}, {&tablesv1.Vpc{}, 10}} {
		if n := c.m.ProtoReflect().Descriptor().Fields().Len(); n != c.want {
			t.Errorf("%s has %d fields, the copy in server.withRoutesOf knows %d: update it", c.m.ProtoReflect().Descriptor().FullName(), n, c.want)
		}
	}
}
