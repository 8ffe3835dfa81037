package bgpsync

import (
	"net/netip"
	"testing"
	"time"

	"github.com/peergate/peergate/controlplane/bgp"
	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// flushServer takes updates and says which generation it asked to be
// waited for.
type flushServer struct {
	gen    uint64
	waited chan uint64
}

func (f *flushServer) Changed() <-chan struct{}          { return nil }
func (f *flushServer) Config() *manifest.Config          { return nil }
func (f *flushServer) Tables() *tablesv1.Tables          { return nil }
func (f *flushServer) SetLearned(compile.Learned) error  { f.gen++; return nil }
func (f *flushServer) Generation() uint64                { return f.gen }
func (f *flushServer) AfterSent(gen uint64, done func()) { f.waited <- gen; done() }
func (f *flushServer) UpdateLearned(string, []compile.LearnedRoute, []compile.LearnedRoute) error {
	f.gen++
	return nil
}

// A flush runs in an AroundFlush pause when the stream it came in has
// ended, and the pause ends once the server sent the new generation; the
// batches of a stream still flowing are compiled without one.
func TestAroundFlushPausesTheEndOfAStreamOnly(t *testing.T) {
	for _, c := range []struct {
		name      string
		sinceLast time.Duration // since the last route event
		tableDone bool
		paused    bool
	}{
		{"the stream paused", 2 * transferQuiet, false, true},
		{"End-of-RIB came", 0, true, true},
		{"the stream still flows (the hold's limit)", 0, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := &flushServer{gen: 7, waited: make(chan uint64, 1)}
			pauses, ended := 0, make(chan int, 1)
			s := New(srv, Options{AroundFlush: func(n int) func() {
				pauses++
				return func() { ended <- n }
			}})
			s.sp = bgp.New(nil)
			s.note(bgp.Event{Kind: bgp.RoutesChanged, VPC: "e1", Updates: []bgp.RouteUpdate{{Route: bgp.Route{
				VPC: "e1", Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHop: netip.MustParseAddr("192.0.2.1"), Neighbor: "192.0.2.1",
			}}}})
			s.lastEvent = time.Now().Add(-c.sinceLast)
			s.tableDone = c.tableDone
			s.flush()
			if !c.paused {
				if pauses != 0 {
					t.Fatalf("%d pauses", pauses)
				}
				return
			}
			if pauses != 1 {
				t.Fatalf("%d pauses, want 1", pauses)
			}
			if gen := <-srv.waited; gen != 8 {
				t.Errorf("waited for generation %d to be sent, want 8 (the flush's)", gen)
			}
			if n := <-ended; n != 1 {
				t.Errorf("the pause was for %d changes, want 1", n)
			}
		})
	}
}

// Changes that become a transfer's batch start DuringTransfer once, and
// its flush ends it.
func TestDuringTransferLastsUntilTheBatchIsFlushed(t *testing.T) {
	srv := &flushServer{gen: 1, waited: make(chan uint64, 1)}
	started, ended := 0, 0
	s := New(srv, Options{DuringTransfer: func() func() {
		started++
		return func() { ended++ }
	}})
	s.sp = bgp.New(nil)
	for i := range 2 * relativeMin {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0})
		s.note(bgp.Event{Kind: bgp.RoutesChanged, VPC: "e1", Updates: []bgp.RouteUpdate{{Route: bgp.Route{
			VPC: "e1", Prefix: netip.PrefixFrom(a, 24), NextHop: netip.MustParseAddr("192.0.2.1"), Neighbor: "192.0.2.1",
		}}}})
	}
	if started != 1 || ended != 0 {
		t.Fatalf("while the batch is held: started %d, ended %d; want 1, 0", started, ended)
	}
	s.flush()
	if started != 1 || ended != 1 {
		t.Fatalf("after the flush: started %d, ended %d; want 1, 1", started, ended)
	}
}
