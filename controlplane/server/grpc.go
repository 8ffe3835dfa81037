package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/peergate/peergate/controlplane/manifest"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// Apply implements apiv1.GatewayServer.
func (s *Server) Apply(ctx context.Context, req *apiv1.ApplyRequest) (*apiv1.ApplyResponse, error) {
	if err := contextDone(ctx); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	objs, diags, err := parseRequest(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(diags) > 0 {
		s.mu.Lock()
		gen := s.gen
		s.mu.Unlock()
		s.noteRejected(req.GetDryRun(), diags)
		return &apiv1.ApplyResponse{Generation: gen, Errors: diags, DryRun: req.GetDryRun()}, nil
	}
	res, err := s.ApplyObjects(objs, req.GetDryRun())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &apiv1.ApplyResponse{
		Accepted: res.Accepted, Generation: res.Generation, Warnings: res.Warnings, Errors: res.Errors,
		Results: res.Objects, DryRun: req.GetDryRun(),
	}, nil
}

func (s *Server) noteRejected(dryRun bool, diags []*apiv1.Diagnostic) {
	s.reject(dryRun, diags[0].GetText())
}

// Delete implements apiv1.GatewayServer.
func (s *Server) Delete(ctx context.Context, req *apiv1.DeleteRequest) (*apiv1.DeleteResponse, error) {
	if err := contextDone(ctx); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	if len(req.GetKeys()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "nothing to delete: give object keys")
	}
	keys := make([]manifest.Key, len(req.GetKeys()))
	for i, k := range req.GetKeys() {
		keys[i] = keyFromProto(k)
		if keys[i].Kind == "" || keys[i].Name == "" {
			return nil, status.Errorf(codes.InvalidArgument, "keys[%d]: kind and name are required", i)
		}
		if keys[i].APIVersion == "" {
			av, err := apiVersionOf(keys[i].Kind)
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "keys[%d]: %v", i, err)
			}
			keys[i].APIVersion = av
		}
	}
	res, err := s.DeleteObjects(keys, req.GetDryRun())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &apiv1.DeleteResponse{
		Accepted: res.Accepted, Generation: res.Generation, Warnings: res.Warnings, Errors: res.Errors,
		Results: res.Objects, DryRun: req.GetDryRun(),
	}, nil
}

// apiVersionOf completes a key given by kind alone; the kinds' names are
// distinct ("Vpc" is Kube-OVN's, "VPC" peergate's).
func apiVersionOf(kind string) (string, error) {
	switch kind {
	case manifest.KindKubeOVNVpc, manifest.KindSubnet:
		return manifest.KubeOVNAPIVersion, nil
	case manifest.KindPeering:
		return manifest.PeeringAPIVersion, nil
	case manifest.KindGateway, manifest.KindVPC:
		return manifest.PeergateAPIVersion, nil
	case manifest.KindPod:
		return manifest.CoreAPIVersion, nil
	}
	return "", errors.New("unknown kind " + kind)
}

// List implements apiv1.GatewayServer.
func (s *Server) List(_ context.Context, req *apiv1.ListRequest) (*apiv1.ListResponse, error) {
	s.mu.Lock()
	cfg, gen := s.cfg, s.gen
	s.mu.Unlock()
	resp := &apiv1.ListResponse{Generation: gen}
	for _, o := range cfg.Objects() {
		if k := req.GetKind(); k != "" && k != o.Key.Kind {
			continue
		}
		if n := req.GetName(); n != "" && n != o.Key.Name {
			continue
		}
		resp.Objects = append(resp.Objects, objectToProto(o))
	}
	return resp, nil
}

func (s *Server) liveTables() (*tablesv1.Tables, error) {
	s.mu.Lock()
	t, cerr := s.tables, s.compileErr
	s.mu.Unlock()
	if t == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "the stored configuration does not compile: %v", cerr)
	}
	return t, nil
}

// GetRoutes implements apiv1.GatewayServer.
func (s *Server) GetRoutes(_ context.Context, req *apiv1.GetRoutesRequest) (*apiv1.GetRoutesResponse, error) {
	t, err := s.liveTables()
	if err != nil {
		return nil, err
	}
	resp := &apiv1.GetRoutesResponse{
		Generation: t.GetGeneration(), NatTables: t.GetNatTables(), NatPools: t.GetNatPools(), Filters: t.GetFilters(),
		Ports: t.GetPorts(),
	}
	for _, v := range t.GetVpcs() {
		resp.VpcNames = append(resp.VpcNames, v.GetName())
		if req.GetVpc() == "" || req.GetVpc() == v.GetName() {
			resp.Vpcs = append(resp.Vpcs, v)
		}
	}
	if req.GetVpc() != "" && len(resp.Vpcs) == 0 {
		return nil, status.Errorf(codes.NotFound, "no VPC %q in generation %d (VPCs: %v)", req.GetVpc(), t.GetGeneration(), resp.VpcNames)
	}
	return resp, nil
}

// GetTables implements apiv1.GatewayServer.
func (s *Server) GetTables(context.Context, *apiv1.GetTablesRequest) (*apiv1.GetTablesResponse, error) {
	t, err := s.liveTables()
	if err != nil {
		return nil, err
	}
	return &apiv1.GetTablesResponse{Tables: t}, nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// Status implements apiv1.GatewayServer.
func (s *Server) Status(context.Context, *apiv1.StatusRequest) (*apiv1.StatusResponse, error) {
	s.mu.Lock()
	resp := &apiv1.StatusResponse{
		Generation: s.gen, Objects: int32(s.cfg.Len()), AppliesAccepted: s.accepted, AppliesRejected: s.rejected,
		LastError: s.lastErr, LastChange: ts(s.lastChange), Started: ts(s.started),
	}
	if s.compileErr != nil {
		resp.CompileError = s.compileErr.Error()
	}
	s.mu.Unlock()
	for _, d := range s.hub.Dataplanes() {
		resp.Dataplanes = append(resp.Dataplanes, &apiv1.DataplaneStatus{
			Id: d.ID, Peer: d.Peer, Connected: d.Connected, Generation: d.Generation, SentGeneration: d.SentGeneration,
			Error: d.Error, ConnectedAt: ts(d.ConnectedAt), LastAck: ts(d.LastAck), LastStats: ts(d.LastStats),
			DisconnectedAt: ts(d.DisconnectedAt),
		})
	}
	return resp, nil
}

// Stats implements apiv1.GatewayServer.
func (s *Server) Stats(_ context.Context, req *apiv1.StatsRequest) (*apiv1.StatsResponse, error) {
	resp := &apiv1.StatsResponse{}
	for _, d := range s.hub.Dataplanes() {
		if id := req.GetDataplaneId(); id != "" && id != d.ID {
			continue
		}
		if d.Stats == nil {
			continue
		}
		resp.Dataplanes = append(resp.Dataplanes, &apiv1.DataplaneStats{
			Id: d.ID, Connected: d.Connected, Received: ts(d.LastStats), Stats: d.Stats,
		})
	}
	return resp, nil
}

// GetBGP implements apiv1.GatewayServer.
func (s *Server) GetBGP(_ context.Context, req *apiv1.GetBGPRequest) (*apiv1.GetBGPResponse, error) {
	s.mu.Lock()
	r := s.bgp
	s.mu.Unlock()
	if r == nil {
		return &apiv1.GetBGPResponse{}, nil
	}
	return r.BGPStatus(req), nil
}
