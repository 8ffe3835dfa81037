// Package fib builds the dataplane's immutable lookup snapshot from one
// compiled *tablesv1.Tables (lpm tables per VPC, classification table, NAT
// and filter tables in flat arrays) and publishes it through a Holder.
// Snapshot.ApplyDelta derives the next snapshot from a route delta (a BGP
// update) by changing only the routes it names, copy-on-write, so a full
// Internet table is not rebuilt per update. Building happens off the hot
// path; workers load the snapshot pointer once per burst so a swap never
// shows half a configuration. It must not import the controlplane.
package fib

import "sync/atomic"

// Holder publishes the current Snapshot. The zero value holds nil.
type Holder struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the current snapshot (nil before the first Store).
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Store swaps s in; workers see it from their next burst.
func (h *Holder) Store(s *Snapshot) { h.p.Store(s) }
