package agent

import (
	"sync"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// answerFlows answers a FlowsRequest on its own goroutine, so that listing
// a large session table does not hold up the tables the controlplane sends
// meanwhile. The answer carries the request's id; a dataplane without a
// Flows callback answers with an error rather than letting the
// controlplane wait for its timeout.
func (a *agent) answerFlows(req *tablesv1.FlowsRequest, send func(*tablesv1.DataplaneMessage) error, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var resp *tablesv1.Flows
		if a.cfg.Flows != nil {
			resp = a.cfg.Flows(req)
		}
		if resp == nil {
			resp = &tablesv1.Flows{Error: "this dataplane does not list flows"}
		}
		resp.RequestId = req.GetRequestId()
		if err := send(&tablesv1.DataplaneMessage{Msg: &tablesv1.DataplaneMessage_Flows{Flows: resp}}); err != nil {
			// The receive loop sees the broken stream and reconnects.
			a.log.Warn("could not send flows", "request", req.GetRequestId(), "err", err)
		}
	}()
}
