package main

import (
	"context"
	"log/slog"
	"sort"
	"time"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// logDrops is the data path's log: the workers never log per packet (they
// count), and this reports how the drop counters grew, by reason, at most
// once per interval, so a flood of bad packets costs one line per interval
// instead of one per packet. Quiet intervals log nothing.
func logDrops(ctx context.Context, log *slog.Logger, every time.Duration, snap func() *tablesv1.Stats) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last map[string]uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := snap()
		if s == nil {
			continue
		}
		if attrs := dropGrowth(last, s.GetDrops()); len(attrs) > 0 && last != nil {
			log.Warn("packets dropped", append([]any{"interval", every}, attrs...)...)
		}
		last = s.GetDrops()
	}
}

// dropGrowth returns reason=increase pairs of the reasons that grew from
// before to now, sorted by reason.
func dropGrowth(before, now map[string]uint64) []any {
	reasons := make([]string, 0, len(now))
	for r, n := range now {
		if n > before[r] {
			reasons = append(reasons, r)
		}
	}
	sort.Strings(reasons)
	attrs := make([]any, 0, 2*len(reasons))
	for _, r := range reasons {
		attrs = append(attrs, r, now[r]-before[r])
	}
	return attrs
}
