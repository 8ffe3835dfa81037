package server

import (
	"fmt"
	"runtime"
	"testing"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestSpareCopiesAreTakenOnlyForTheirOwnSlice(t *testing.T) {
	routes := make([]*tablesv1.Route, spareMin)
	for i := range routes {
		routes[i] = &tablesv1.Route{Prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}
	}
	other := cloneRoutes(routes, 0)
	cases := []struct {
		name  string
		rs    []*tablesv1.Route
		extra int
		want  bool
	}{
		{"the slice it was made of", routes, 1, true},
		{"room for every insertion it promised", routes, spareExtra, true},
		{"more insertions than its room", routes, spareExtra + 1, false},
		{"the same routes in another array", other, 1, false},
		{"a shorter slice of the same array", routes[:len(routes)-1], 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Server{}
			tb := &tablesv1.Tables{Vpcs: []*tablesv1.Vpc{{Id: 0, Routes: routes}}}
			s.prepareSpares(tb, &tablesv1.TableDelta{Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 0}}})
			k := spareKey{0, false}
			// takeSpare waits for the copy in the making.
			got := s.takeSpare(k, c.rs, c.extra)
			if (got != nil) != c.want {
				t.Fatalf("took a copy: %v, want %v", got != nil, c.want)
			}
			if got != nil && (len(got) != len(routes) || &got[0] == &routes[0] || got[len(got)-1] != routes[len(routes)-1]) {
				t.Error("the copy is not a fresh copy of the routes")
			}
			if again := s.takeSpare(k, c.rs, c.extra); again != nil {
				t.Error("a spare copy was taken twice")
			}
		})
	}
}

// TestSpareCopierFollowsTheNewestSlice: a slice that goes live while the
// copier is busy with an older one is copied next (not skipped), and an
// update finding its slice's copy not yet started copies on its own.
func TestSpareCopierFollowsTheNewestSlice(t *testing.T) {
	older := make([]*tablesv1.Route, spareMin)
	for i := range older {
		older[i] = &tablesv1.Route{Prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}
	}
	newer := cloneRoutes(older, 0)
	k := spareKey{0, false}
	s := &Server{}
	s.prepareSpare(k, older) // starts a copier, which may already be done
	s.sparesMu.Lock()
	first := s.spares[k]
	s.sparesMu.Unlock()
	// Wait for that copier to stop, then hold the table busy as if it
	// were still copying first.
	for {
		s.sparesMu.Lock()
		if !s.copying[k] {
			break
		}
		s.sparesMu.Unlock()
		runtime.Gosched()
	}
	s.copying[k] = true
	first.done = make(chan struct{})
	s.sparesMu.Unlock()
	s.prepareSpare(k, newer)
	if got := s.takeSpare(k, newer, 1); got != nil {
		t.Fatal("took a copy that was not started")
	}
	s.prepareSpare(k, newer)
	s.copySpares(k, first) // finishes first, then copies newer
	got := s.takeSpare(k, newer, 1)
	if got == nil || len(got) != len(newer) || &got[0] == &newer[0] || got[0] != newer[0] {
		t.Fatalf("no fresh copy of the newer slice: %v", got != nil)
	}
	s.sparesMu.Lock()
	busy := s.copying[k]
	s.sparesMu.Unlock()
	if busy {
		t.Error("the copier did not stop with nothing left to copy")
	}
}
