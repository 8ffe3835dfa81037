package bgp

import (
	"cmp"
	"iter"
	"slices"
)

// storeKey is a prefix as the store keys it (key4, key6).
type storeKey[K any] interface {
	comparable
	compare(K) int
}

// prefixMap holds one neighbour's routes of one family. A full table is
// a million of them, held as long as the session lasts, so most of them
// sit in a sorted base of two flat arrays (20 bytes an IPv4 route, 36 an
// IPv6 one, no pointers), and only the changes since the base was last
// rebuilt in a Go map (~40 bytes an IPv4 route with its load factor).
// compact folds the changes into the base; the speaker calls it when a
// neighbour's stream pauses with many changes pending (see
// Speaker.compactLater), so a table transfer fills the map at map speed
// and then settles into the base.
type prefixMap[K storeKey[K]] struct {
	keys []K // sorted
	vals []held
	// recent are the changes since the base was built: an entry replaces
	// the base's of the same key, one with gone set removes it.
	recent map[K]held
	n      int // routes held
}

func (m *prefixMap[K]) find(k K) (int, bool) {
	return slices.BinarySearchFunc(m.keys, k, K.compare)
}

func (m *prefixMap[K]) get(k K) (held, bool) {
	if h, ok := m.recent[k]; ok {
		if h.gone {
			return held{}, false
		}
		return h, true
	}
	if i, ok := m.find(k); ok {
		return m.vals[i], true
	}
	return held{}, false
}

// put holds h for k and reports whether that changed anything (a
// neighbour re-announcing a route as it was changes nothing).
func (m *prefixMap[K]) put(k K, h held) bool {
	old, had := m.get(k)
	if had && old == h {
		return false
	}
	if !had {
		m.n++
	}
	if m.recent == nil {
		m.recent = make(map[K]held)
	}
	m.recent[k] = h
	return true
}

// del removes k and returns what it held.
func (m *prefixMap[K]) del(k K) (held, bool) {
	old, had := m.get(k)
	if !had {
		return held{}, false
	}
	m.n--
	if _, inBase := m.find(k); inBase {
		if m.recent == nil {
			m.recent = make(map[K]held)
		}
		m.recent[k] = held{gone: true}
	} else {
		delete(m.recent, k)
	}
	return old, true
}

func (m *prefixMap[K]) len() int { return m.n }

// pending is the number of changes compact would fold into the base.
func (m *prefixMap[K]) pending() int { return len(m.recent) }

// all yields every route held, in no particular order.
func (m *prefixMap[K]) all() iter.Seq2[K, held] {
	return func(yield func(K, held) bool) {
		for i, k := range m.keys {
			if _, changed := m.recent[k]; changed {
				continue
			}
			if !yield(k, m.vals[i]) {
				return
			}
		}
		for k, h := range m.recent {
			if !h.gone && !yield(k, h) {
				return
			}
		}
	}
}

// compact folds the recent changes into a new base, exactly sized.
func (m *prefixMap[K]) compact() {
	if len(m.recent) == 0 {
		return
	}
	ch := make([]K, 0, len(m.recent))
	for k := range m.recent {
		ch = append(ch, k)
	}
	slices.SortFunc(ch, K.compare)
	keys, vals := make([]K, 0, m.n), make([]held, 0, m.n)
	i := 0
	for _, k := range ch {
		for ; i < len(m.keys) && m.keys[i].compare(k) < 0; i++ {
			keys, vals = append(keys, m.keys[i]), append(vals, m.vals[i])
		}
		if i < len(m.keys) && m.keys[i] == k {
			i++ // replaced or removed
		}
		if h := m.recent[k]; !h.gone {
			keys, vals = append(keys, k), append(vals, h)
		}
	}
	keys, vals = append(keys, m.keys[i:]...), append(vals, m.vals[i:]...)
	m.keys, m.vals, m.recent = keys, vals, nil
}

func (k key4) compare(o key4) int { return cmp.Compare(k, o) }

func (k key6) compare(o key6) int {
	return cmp.Or(cmp.Compare(k.hi, o.hi), cmp.Compare(k.lo, o.lo), cmp.Compare(k.bits, o.bits))
}
