// Package lpm is a longest-prefix-match table for IPv4 and IPv6 prefixes
// with uint32 values.
//
// PLACEHOLDER: a naive map-per-length implementation that fixes the public
// API; the real structure replaces it.
package lpm

import (
	"fmt"
	"net/netip"
	"sync"
)

// Table maps prefixes to uint32 values.
type Table struct {
	mu sync.RWMutex
	m  map[netip.Prefix]uint32
}

// New returns an empty table.
func New() *Table { return &Table{m: map[netip.Prefix]uint32{}} }

// Insert adds or replaces p.
func (t *Table) Insert(p netip.Prefix, v uint32) error {
	if !p.IsValid() {
		return fmt.Errorf("lpm: invalid prefix %v", p)
	}
	t.mu.Lock()
	t.m[p.Masked()] = v
	t.mu.Unlock()
	return nil
}

// Delete removes p and reports whether it was present.
func (t *Table) Delete(p netip.Prefix) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[p.Masked()]
	delete(t.m, p.Masked())
	return ok
}

// Lookup returns the value of the longest prefix containing a.
func (t *Table) Lookup(a netip.Addr) (uint32, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for l := a.BitLen(); l >= 0; l-- {
		p, _ := a.Prefix(l)
		if v, ok := t.m[p]; ok {
			return v, true
		}
	}
	return 0, false
}

// Lookup4 looks up an IPv4 address given in host byte order.
func (t *Table) Lookup4(a uint32) (uint32, bool) {
	return t.Lookup(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}))
}
