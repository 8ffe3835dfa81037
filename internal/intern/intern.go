// Package intern numbers the distinct values of a kind (neighbour names,
// next hops) so that records held by the million (learned paths) store a
// uint32 instead of the value: smaller, and without the pointers a string
// or a netip.Addr carries, so the garbage collector does not scan them.
package intern

// Table numbers values in the order they are first seen. The zero value
// is an empty table. Numbers are never reused and values never dropped: a
// table grows with the distinct values it was given, which is why its
// owners make a new one when what refers to it goes (a session dropping,
// a complete compilation). Not safe for concurrent use.
type Table[T comparable] struct {
	vals []T
	idx  map[T]uint32
}

// Index returns v's number, numbering it if it is new.
func (t *Table[T]) Index(v T) uint32 {
	if i, ok := t.idx[v]; ok {
		return i
	}
	if t.idx == nil {
		t.idx = make(map[T]uint32)
	}
	i := uint32(len(t.vals))
	t.vals = append(t.vals, v)
	t.idx[v] = i
	return i
}

// Lookup returns v's number if v was numbered.
func (t *Table[T]) Lookup(v T) (uint32, bool) {
	i, ok := t.idx[v]
	return i, ok
}

// At returns the value numbered i.
func (t *Table[T]) At(i uint32) T { return t.vals[i] }

// Len is the number of values numbered.
func (t *Table[T]) Len() int { return len(t.vals) }
