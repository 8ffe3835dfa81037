package server

import (
	"fmt"
	"testing"
	"time"

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
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				s.sparesMu.Lock()
				_, ok := s.spares[k]
				s.sparesMu.Unlock()
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no spare copy prepared")
				}
			}
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
