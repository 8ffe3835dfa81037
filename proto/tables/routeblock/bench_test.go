package routeblock

import (
	"testing"

	"github.com/peergate/peergate/internal/fulltable"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkSendInternetTable is the controlplane's side of a full-table
// transfer (~1 M learned routes into an external's local routes and the
// routes of the VPC peering with it, one action list each, as the
// compiler shares them): marshal as Route messages, against packing into
// route blocks and marshalling those, in the same run.
//
//	go test -run '^$' -bench SendInternetTable -benchmem ./proto/tables/routeblock/
func BenchmarkSendInternetTable(b *testing.B) {
	ps := fulltable.Prefixes(b)
	deliver := []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_DELIVER, Via: "192.0.2.1"}}
	fwd := []*tablesv1.Action{{Kind: tablesv1.ActionKind_ACTION_FORWARD, DstVpc: 2, TtlDecrement: 1, Peering: "a-e"}}
	local := make([]*tablesv1.Route, len(ps))
	routes := make([]*tablesv1.Route, len(ps))
	for i, p := range ps {
		local[i] = &tablesv1.Route{Prefix: p.String(), Source: "bgp:192.0.2.1", Actions: deliver}
		routes[i] = &tablesv1.Route{Prefix: p.String(), Source: "peering:a-e", Actions: fwd}
	}
	d := &tablesv1.TableDelta{BaseGeneration: 1, Generation: 2, Vpcs: []*tablesv1.VpcRouteDelta{
		{VpcId: 0, UpsertRoutes: routes}, {VpcId: 2, UpsertLocalRoutes: local},
	}}
	for _, tc := range []struct {
		name string
		pack func(*tablesv1.TableDelta) *tablesv1.TableDelta
	}{
		{"plain", func(d *tablesv1.TableDelta) *tablesv1.TableDelta { return d }},
		{"block", PackDelta},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for range b.N {
				wire, err := proto.Marshal(tc.pack(d))
				if err != nil {
					b.Fatal(err)
				}
				n = len(wire)
			}
			b.ReportMetric(float64(n)/1e6, "wire-MB")
		})
	}
}
