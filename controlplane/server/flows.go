package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/peergate/peergate/controlplane/push"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// ListFlows implements apiv1.GatewayServer: it asks the connected
// dataplanes (or the one named) for their stateful-NAT sessions through the
// push hub. A dataplane that does not answer within the call's deadline
// (push.DefaultFlowsTimeout without one, a tenth earlier with one) is listed with its error, so one
// stuck dataplane does not hide the others' sessions.
func (s *Server) ListFlows(ctx context.Context, req *apiv1.ListFlowsRequest) (*apiv1.ListFlowsResponse, error) {
	// Answer a little before the caller's deadline, so that it gets the
	// dataplanes that did answer rather than its own DeadlineExceeded.
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, left-min(left/10, time.Second))
		defer cancel()
	}
	answers, err := s.hub.Flows(ctx, req.GetDataplane(), &tablesv1.FlowsRequest{Vpc: req.GetVpc(), Limit: req.GetLimit()})
	if errors.Is(err, push.ErrNoDataplane) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &apiv1.ListFlowsResponse{}
	for _, a := range answers {
		d := &apiv1.DataplaneFlows{Id: a.DataplaneID}
		switch {
		case a.Err != nil:
			d.Error = a.Err.Error()
		default:
			d.Flows, d.Counters, d.Error = a.Flows.GetFlows(), a.Flows.GetCounters(), a.Flows.GetError()
		}
		resp.Dataplanes = append(resp.Dataplanes, d)
	}
	return resp, nil
}
