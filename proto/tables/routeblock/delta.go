package routeblock

import (
	"fmt"
	"slices"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
			out = shallow(d)
			out.Vpcs = slices.Clone(d.GetVpcs())
		}
		nv := shallow(vd)
		nv.UpsertRoutes, nv.UpsertRouteBlock, nv.UpsertLocalRoutes, nv.UpsertLocalRouteBlock = routes, block, local, localBlock
		out.Vpcs[i] = nv
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
	out := shallow(d)
	out.Vpcs = nil
	for _, vd := range d.GetVpcs() {
		nv := shallow(vd)
		nv.UpsertRouteBlock, nv.UpsertLocalRouteBlock = nil, nil
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

// PackTables returns t with every route list of at least PackMin routes
// moved into its VPC's block, sharing the rest with t; t itself is
// unchanged. As for PackDelta, a list stays plain when its block is taken
// or a prefix does not parse.
func PackTables(t *tablesv1.Tables) *tablesv1.Tables {
	var vpcs []*tablesv1.Vpc
	for i, v := range t.GetVpcs() {
		routes, block := pack(v.GetRoutes(), v.GetRouteBlock())
		local, localBlock := pack(v.GetLocalRoutes(), v.GetLocalRouteBlock())
		if block == v.GetRouteBlock() && localBlock == v.GetLocalRouteBlock() {
			continue
		}
		if vpcs == nil {
			vpcs = slices.Clone(t.GetVpcs())
		}
		nv := shallow(v)
		nv.Routes, nv.RouteBlock, nv.LocalRoutes, nv.LocalRouteBlock = routes, block, local, localBlock
		vpcs[i] = nv
	}
	if vpcs == nil {
		return t
	}
	out := shallow(t)
	out.Vpcs = vpcs
	return out
}

// UnpackTables returns t with its blocks expanded into the plain route
// lists (after their routes), for receivers that work on Route messages.
func UnpackTables(t *tablesv1.Tables) (*tablesv1.Tables, error) {
	out := shallow(t)
	out.Vpcs = slices.Clone(t.GetVpcs())
	for i, v := range out.Vpcs {
		if v.GetRouteBlock() == nil && v.GetLocalRouteBlock() == nil {
			continue
		}
		nv := shallow(v)
		var err error
		if nv.Routes, err = unpack(v.GetRoutes(), v.GetRouteBlock()); err != nil {
			return nil, fmt.Errorf("vpc %s routes: %w", v.GetName(), err)
		}
		if nv.LocalRoutes, err = unpack(v.GetLocalRoutes(), v.GetLocalRouteBlock()); err != nil {
			return nil, fmt.Errorf("vpc %s local routes: %w", v.GetName(), err)
		}
		nv.RouteBlock, nv.LocalRouteBlock = nil, nil
		out.Vpcs[i] = nv
	}
	return out, nil
}

// shallow returns a copy of m that shares every field's value with m
// (lists and messages alike), whatever fields its message type has.
func shallow[M proto.Message](m M) M {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	return dst.Interface().(M)
}
