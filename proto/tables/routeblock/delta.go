package routeblock

import (
	"fmt"
	"slices"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// PackMin is the number of upserts from which PackDelta moves a list into
// a block. A single BGP update stays in the plain form, readable in a
// dump; a transfer's batches are thousands of routes.
const PackMin = 64

// PackDelta returns d with every upsert list of at least PackMin routes
// moved into a block, sharing the rest with d; d itself is unchanged. A
// list stays plain when its VPC already has a block for it (the block is
// applied after the list) or when a prefix does not parse (for the
// receiver to report).
func PackDelta(d *tablesv1.TableDelta) *tablesv1.TableDelta {
	var out *tablesv1.TableDelta
	for i, vd := range d.GetVpcs() {
		routes, block := pack(vd.GetUpsertRoutes(), vd.GetUpsertRouteBlock())
		local, localBlock := pack(vd.GetUpsertLocalRoutes(), vd.GetUpsertLocalRouteBlock())
		if block == vd.GetUpsertRouteBlock() && localBlock == vd.GetUpsertLocalRouteBlock() {
			continue
		}
		if out == nil {
			out = &tablesv1.TableDelta{BaseGeneration: d.GetBaseGeneration(), Generation: d.GetGeneration(), Vpcs: slices.Clone(d.GetVpcs())}
		}
		out.Vpcs[i] = &tablesv1.VpcRouteDelta{
			VpcId: vd.GetVpcId(), RemoveRoutes: vd.GetRemoveRoutes(), RemoveLocalRoutes: vd.GetRemoveLocalRoutes(),
			UpsertRoutes: routes, UpsertRouteBlock: block, UpsertLocalRoutes: local, UpsertLocalRouteBlock: localBlock,
		}
	}
	if out == nil {
		return d
	}
	return out
}

// pack returns routes in a block when there are PackMin or more and b is
// empty, else routes and b unchanged.
func pack(routes []*tablesv1.Route, b *tablesv1.RouteBlock) ([]*tablesv1.Route, *tablesv1.RouteBlock) {
	if len(routes) < PackMin || b != nil {
		return routes, b
	}
	nb, err := Pack(routes)
	if err != nil {
		return routes, b
	}
	return nil, nb
}

// UnpackDelta returns d with its blocks expanded into the plain upsert
// lists (after their routes), for receivers that work on Route messages.
func UnpackDelta(d *tablesv1.TableDelta) (*tablesv1.TableDelta, error) {
	out := &tablesv1.TableDelta{BaseGeneration: d.GetBaseGeneration(), Generation: d.GetGeneration()}
	for _, vd := range d.GetVpcs() {
		nv := &tablesv1.VpcRouteDelta{
			VpcId: vd.GetVpcId(), RemoveRoutes: vd.GetRemoveRoutes(), RemoveLocalRoutes: vd.GetRemoveLocalRoutes(),
		}
		var err error
		if nv.UpsertRoutes, err = unpack(vd.GetUpsertRoutes(), vd.GetUpsertRouteBlock()); err != nil {
			return nil, fmt.Errorf("vpc %d routes: %w", vd.GetVpcId(), err)
		}
		if nv.UpsertLocalRoutes, err = unpack(vd.GetUpsertLocalRoutes(), vd.GetUpsertLocalRouteBlock()); err != nil {
			return nil, fmt.Errorf("vpc %d local routes: %w", vd.GetVpcId(), err)
		}
		out.Vpcs = append(out.Vpcs, nv)
	}
	return out, nil
}

func unpack(routes []*tablesv1.Route, b *tablesv1.RouteBlock) ([]*tablesv1.Route, error) {
	if b == nil {
		return routes, nil
	}
	more, err := Routes(b)
	if err != nil {
		return nil, err
	}
	return append(append(make([]*tablesv1.Route, 0, len(routes)+len(more)), routes...), more...), nil
}
