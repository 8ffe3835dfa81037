package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"

	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

// flowsOpts are the flags of "get flows".
type flowsOpts struct {
	vpc   string
	limit uint
}

func flowsFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.flows.vpc, "vpc", "", "get flows: only the sessions of this `VPC`")
	fs.UintVar(&o.flows.limit, "limit", 0, "get flows: at most `N` sessions per dataplane (0: the dataplane's cap)")
	fs.StringVar(&o.dpID, "dataplane", "", "get flows: only the dataplane with this `ID`")
}

// getFlows lists the stateful-NAT sessions of every connected dataplane.
func getFlows(ctx context.Context, o *opts) error {
	resp, err := o.client.ListFlows(ctx, &apiv1.ListFlowsRequest{Vpc: o.flows.vpc, Limit: uint32(o.flows.limit), Dataplane: o.dpID})
	if err != nil {
		return err
	}
	if o.output != "table" {
		return printProto(o, resp)
	}
	printFlows(o.stdout, resp)
	return nil
}

func printFlows(w io.Writer, resp *apiv1.ListFlowsResponse) {
	if len(resp.GetDataplanes()) == 0 {
		fmt.Fprintln(w, "no dataplane connected")
		return
	}
	for i, d := range resp.GetDataplanes() {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "DATAPLANE %s  %d sessions listed\n", d.GetId(), len(d.GetFlows()))
		if d.GetError() != "" {
			fmt.Fprintf(w, "error: %s\n", d.GetError())
		}
		if len(d.GetFlows()) > 0 {
			tw := newTable(w)
			fmt.Fprintln(tw, "VPC\tPROTO\tINNER\tPUBLIC\tREMOTE\tSTATE\tEXPIRES IN\tGENERATION")
			for _, f := range d.GetFlows() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%ds\t%d\n", f.GetVpc(), f.GetProtocol(),
					hostPort(f.GetInnerAddr(), f.GetInnerPort()), hostPort(f.GetPublicAddr(), f.GetPublicPort()),
					hostPort(f.GetRemoteAddr(), f.GetRemotePort()), f.GetState(), f.GetExpiresInSeconds(), f.GetGeneration())
			}
			tw.Flush()
		}
		printMap(w, "COUNTER", d.GetCounters())
	}
}

func hostPort(addr string, port uint32) string {
	return net.JoinHostPort(addr, strconv.FormatUint(uint64(port), 10))
}
