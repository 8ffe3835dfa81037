package bgpsync

import (
	"testing"
	"time"

	"github.com/peergate/peergate/controlplane/bgp"
)

func TestDelayBeforeCompiling(t *testing.T) {
	const quiet, maxDelay = 5 * time.Millisecond, 200 * time.Millisecond
	now := time.Now()
	cases := []struct {
		name       string
		firstDirty time.Time
		lastEnd    time.Time
		lastTook   time.Duration
		large      bool
		lead       bool // the changes began after a quiet spell
		npending   int
		min, max   time.Duration
	}{
		{"a lone update after a quiet spell compiles at once", now, time.Time{}, 0, false, true, 1, 0, 0},
		{"a few changes after a quiet spell compile at once", now, time.Time{}, 0, false, true, leadMax, 0, 0},
		{"more changes after a quiet spell wait the quiet window", now, time.Time{}, 0, false, true, leadMax + 1, quiet - time.Millisecond, quiet},
		{"a large batch after a quiet spell waits its pacing, at most a transfer's pause", now, now, 3 * time.Second, true, true, 0, transferQuiet - time.Millisecond, transferQuiet},
		{"an update right after another waits the quiet window", now, time.Time{}, 0, false, false, 1, quiet - time.Millisecond, quiet},
		{"a stream of updates is compiled by the maximum delay", now.Add(-maxDelay + 2*time.Millisecond), time.Time{}, 0, false, false, 1, 0, 2 * time.Millisecond},
		{"past the maximum delay it compiles at once", now.Add(-time.Second), time.Time{}, 0, false, false, 1, 0, 0},
		{"a quick last compilation changes nothing", now, now.Add(-time.Millisecond), 2 * time.Millisecond, true, false, 0, quiet - time.Millisecond, quiet},
		{"a long last compilation paces a large batch until the stream pauses", now.Add(-time.Second), now.Add(-time.Second), 3 * time.Second, true, false, 0, transferQuiet - time.Millisecond, transferQuiet},
		{"a pace of twice the last compilation", now.Add(-time.Second), now.Add(-100 * time.Millisecond), 100 * time.Millisecond, true, false, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{"a long last compilation does not hold back a small batch", now, now.Add(-time.Second), 3 * time.Second, false, false, 1, quiet - time.Millisecond, quiet},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(nil, Options{Quiet: quiet, MaxDelay: maxDelay})
			s.firstDirty, s.lastEnd, s.lastTook, s.large = c.firstDirty, c.lastEnd, c.lastTook, c.large
			s.lead, s.npending = c.lead, c.npending
			if d := s.delay(); d < c.min || d > c.max {
				t.Errorf("delay %v, want between %v and %v", d, c.min, c.max)
			}
		})
	}
}

// A table transfer's batch that is large against its VPC's table waits
// for the stream to pause (transferQuiet, set again at every event), not
// for the pace: compile resolves such a batch's table whole, and the
// batch that ends the transfer does so anyway. Up to wholeMaxHold.
func TestDelayHoldsAWholeTableBatchUntilTheStreamPauses(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name       string
		firstDirty time.Time
		lastEnd    time.Time
		lastTook   time.Duration
		whole      bool
		min, max   time.Duration
	}{
		{"paced out but whole: waits for the pause", now.Add(-2 * time.Second), now.Add(-time.Minute), time.Millisecond, true, transferQuiet, transferQuiet},
		{"paced out and not whole: compiles", now.Add(-2 * time.Second), now.Add(-time.Minute), time.Millisecond, false, 0, 0},
		{"whole, held for wholeMaxHold: compiles", now.Add(-wholeMaxHold - time.Second), now.Add(-time.Minute), time.Millisecond, true, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(nil, Options{})
			s.firstDirty, s.lastEnd, s.lastTook = c.firstDirty, c.lastEnd, c.lastTook
			s.large, s.whole, s.npending = true, c.whole, 100000
			if d := s.delay(); d < c.min || d > c.max {
				t.Errorf("delay %v, want between %v and %v", d, c.min, c.max)
			}
		})
	}
}

// A transfer held for the stream to pause compiles at once when its
// neighbour says its table is complete (End-of-RIB for both families);
// the marker of a VPC with nothing held changes nothing.
func TestInitialTableDoneEndsTheHold(t *testing.T) {
	s := New(nil, Options{})
	s.firstDirty, s.lastEnd = time.Now(), time.Now().Add(-time.Minute)
	s.large, s.whole, s.npending = true, true, 100000
	s.dirty["e1"] = true
	if d := s.delay(); d != transferQuiet {
		t.Fatalf("held: delay %v, want %v", d, transferQuiet)
	}
	if s.note(bgp.Event{Kind: bgp.InitialTableDone, VPC: "e2", Neighbor: "192.0.2.2"}) {
		t.Error("another VPC's end of table ends the hold")
	}
	if !s.note(bgp.Event{Kind: bgp.InitialTableDone, VPC: "e1", Neighbor: "192.0.2.1"}) {
		t.Fatal("the held VPC's end of table is not noted")
	}
	if d := s.delay(); d != 0 {
		t.Errorf("after the end of the table: delay %v, want 0", d)
	}
}
