package main

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestDropGrowthNamesOnlyTheReasonsThatGrew(t *testing.T) {
	cases := []struct {
		name        string
		before, now map[string]uint64
		want        []any
	}{
		{"nothing before", nil, map[string]uint64{"no_route": 3}, []any{"no_route", uint64(3)}},
		{"no growth", map[string]uint64{"no_route": 3}, map[string]uint64{"no_route": 3}, []any{}},
		{"two reasons grew, sorted", map[string]uint64{"unknown_vni": 1, "no_route": 3, "filtered": 9},
			map[string]uint64{"unknown_vni": 5, "no_route": 4, "filtered": 9}, []any{"no_route", uint64(1), "unknown_vni", uint64(4)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := dropGrowth(c.before, c.now); !reflect.DeepEqual(got, c.want) {
				t.Errorf("dropGrowth = %v, want %v", got, c.want)
			}
		})
	}
}

func TestAFloodOfDropsLogsOneLinePerInterval(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	var mu sync.Mutex
	drops := uint64(0)
	snap := func() *tablesv1.Stats {
		mu.Lock()
		defer mu.Unlock()
		drops += 1000 // a flood: a thousand drops between two looks
		return &tablesv1.Stats{Drops: map[string]uint64{"malformed": drops}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		logDrops(ctx, log, 10*time.Millisecond, snap)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "packets dropped") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	lines := strings.Count(out.String(), "\n")
	looks := int(drops / 1000)
	if got := strings.Count(out.String(), "packets dropped"); got < 3 {
		t.Fatalf("%d lines about drops, want at least 3:\n%s", got, out.String())
	}
	// The first look only sets the baseline; every later one logs once.
	if lines > looks-1 {
		t.Errorf("%d log lines for %d looks at the counters, want at most one per interval:\n%s", lines, looks, out.String())
	}
	if !strings.Contains(out.String(), "malformed=1000") {
		t.Errorf("log does not give the growth by reason:\n%s", out.String())
	}
}
