package server_test

import (
	"context"
	"testing"

	"github.com/peergate/peergate/controlplane/compile"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

func TestChangedClosesWhenANewGenerationIsLive(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, e env)
	}{
		{"an apply", func(t *testing.T, e env) { apply(t, e, false, vpcs) }},
		{"learned routes", func(t *testing.T, e env) {
			if err := e.srv.SetLearned(compile.Learned{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, "")
			ch := e.srv.Changed()
			select {
			case <-ch:
				t.Fatal("Changed closed before any change")
			default:
			}
			c.change(t, e)
			select {
			case <-ch:
			default:
				t.Fatal("Changed still open after a new generation went live")
			}
			if e.srv.Changed() == ch {
				t.Error("Changed returns the closed channel again")
			}
		})
	}
}

func TestARejectedApplyDoesNotSignalChanged(t *testing.T) {
	e := start(t, "")
	apply(t, e, false, vpcs)
	ch := e.srv.Changed()
	if r := apply(t, e, false, unknownField); r.GetAccepted() {
		t.Fatal("invalid apply accepted")
	}
	select {
	case <-ch:
		t.Error("Changed closed by a rejected apply")
	default:
	}
}

type fakeBGP struct{ resp *apiv1.GetBGPResponse }

func (f fakeBGP) BGPStatus(req *apiv1.GetBGPRequest) *apiv1.GetBGPResponse {
	r := f.resp
	if req.GetVpc() != "" {
		r = &apiv1.GetBGPResponse{Running: r.GetRunning(), Asn: r.GetAsn()}
	}
	return r
}

func TestGetBGPReportsTheInstalledReporter(t *testing.T) {
	e := start(t, "")
	ctx := context.Background()
	resp, err := e.client.GetBGP(ctx, &apiv1.GetBGPRequest{})
	if err != nil || resp.GetRunning() {
		t.Fatalf("without a reporter: %v, %v; want not running", resp, err)
	}
	e.srv.SetBGP(fakeBGP{&apiv1.GetBGPResponse{Running: true, Asn: 65000, Sessions: []*apiv1.BgpSession{{Vpc: "vpc-e1", Neighbor: "127.0.0.2", State: "established"}}}})
	resp, err = e.client.GetBGP(ctx, &apiv1.GetBGPRequest{})
	if err != nil || !resp.GetRunning() || resp.GetAsn() != 65000 || len(resp.GetSessions()) != 1 {
		t.Fatalf("with a reporter: %v, %v", resp, err)
	}
	resp, err = e.client.GetBGP(ctx, &apiv1.GetBGPRequest{Vpc: "vpc-e2"})
	if err != nil || len(resp.GetSessions()) != 0 {
		t.Errorf("the request reaches the reporter: %v, %v", resp, err)
	}
}
