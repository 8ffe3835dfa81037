package push

import (
	"testing"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestDeltasNoStreamNeedsAreDropped(t *testing.T) {
	chain := func() []*tablesv1.TableDelta {
		var ds []*tablesv1.TableDelta
		for base := uint64(1); base <= 4; base++ {
			ds = append(ds, &tablesv1.TableDelta{BaseGeneration: base, Generation: base + 1})
		}
		return ds
	}
	for _, tc := range []struct {
		name string
		dps  []DataplaneInfo
		// the base generation of the oldest delta kept, 0 for none
		oldest uint64
	}{
		{"no dataplane: new streams start with complete tables", nil, 0},
		{"every dataplane was sent the newest generation", []DataplaneInfo{{Connected: true, SentGeneration: 5}, {Connected: true, SentGeneration: 5}}, 0},
		{"the slowest stream keeps what it needs", []DataplaneInfo{{Connected: true, SentGeneration: 5}, {Connected: true, SentGeneration: 2}}, 2},
		{"a disconnected dataplane keeps nothing", []DataplaneInfo{{Connected: false, SentGeneration: 1}, {Connected: true, SentGeneration: 4}}, 4},
		{"a stream not sent anything yet keeps everything", []DataplaneInfo{{Connected: true}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(nil)
			for i, info := range tc.dps {
				h.dps[string(rune('a'+i))] = &dataplane{info: info}
			}
			h.deltas = chain()
			h.trimDeltasLocked()
			if tc.oldest == 0 {
				if len(h.deltas) != 0 {
					t.Fatalf("kept %d deltas, want none", len(h.deltas))
				}
				return
			}
			if len(h.deltas) == 0 || h.deltas[0].GetBaseGeneration() != tc.oldest || h.deltas[len(h.deltas)-1].GetGeneration() != 5 {
				t.Fatalf("kept %v, want the chain from %d to 5", h.deltas, tc.oldest)
			}
		})
	}
}
