package bgp

import (
	"net/netip"
	"slices"
	"sync"
)

type subscriber struct {
	ch     chan Event
	gone   chan struct{}
	once   sync.Once
	closed bool // ch closed by the dispatcher; guarded by Speaker.mu
}

// Subscribe returns a channel of events from now on and a function that
// ends the subscription. The channel is unbuffered on purpose: while the
// subscriber works on one event, later route changes of the same VPC are
// merged into the next one. Events are shared between subscribers: do not
// modify Updates. The channel is closed by Stop. To start from the current
// state, subscribe first, then read Routes(); an update seen twice is
// harmless (updates replace).
//
// A subscriber that stops reading holds back every other subscriber; the
// controlplane's compiler is the one intended reader.
func (s *Speaker) Subscribe() (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event), gone: make(chan struct{})}
	s.mu.Lock()
	select {
	case <-s.done:
		close(sub.ch)
		sub.closed = true
	default:
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	cancel := func() {
		sub.once.Do(func() {
			close(sub.gone)
			s.mu.Lock()
			delete(s.subs, sub)
			s.mu.Unlock()
		})
	}
	return sub.ch, cancel
}

// mergeMax is the size up to which a queued route batch takes later
// updates of its VPC. A busy subscriber (the compiler, while a full table
// streams in) would otherwise leave one batch growing to hundreds of
// thousands of updates, copied at every doubling of its slice on the
// watch goroutine, which is the speaker's critical path during a
// transfer (it also converts every path in gobgp). Batches of this size
// are few enough for any subscriber.
const mergeMax = 8192

// pushUpdatesLocked queues route updates of vpc, merging them into the last
// queued event when it is a route batch of the same VPC that is not yet
// mergeMax long. Order is kept: a session event in between starts a new
// batch.
func (s *Speaker) pushUpdatesLocked(vpc string, ups []RouteUpdate) {
	if k := len(s.pending); k > 0 {
		last := &s.pending[k-1]
		if last.Kind == RoutesChanged && last.VPC == vpc && len(last.Updates) < mergeMax {
			last.Updates = append(last.Updates, ups...)
			return
		}
	}
	s.pending = append(s.pending, Event{Kind: RoutesChanged, VPC: vpc, Updates: ups})
}

func (s *Speaker) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch hands queued events to subscribers. It takes the whole queue at
// once, so whatever arrives while a subscriber is busy becomes one batch.
func (s *Speaker) dispatch() {
	defer s.dispWG.Done()
	defer func() {
		s.mu.Lock()
		for sub := range s.subs {
			if !sub.closed {
				sub.closed = true
				close(sub.ch)
			}
		}
		s.mu.Unlock()
	}()
	var subs []*subscriber
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		subs = subs[:0]
		for sub := range s.subs {
			subs = append(subs, sub)
		}
		s.mu.Unlock()
		for _, ev := range batch {
			for _, sub := range subs {
				select {
				case sub.ch <- ev:
				case <-sub.gone:
				case <-s.done:
					return
				}
			}
		}
	}
}

// Routes returns what the neighbours of vpc currently announce, one Route
// per neighbour and prefix, in no particular order.
func (s *Speaker) Routes(vpc string) []Route {
	return AppendRoutes(s, nil, vpc, func(r Route) Route { return r })
}

// AppendRoutes appends to dst what the neighbours of vpc currently
// announce, each route converted by conv, in no particular order. It
// spares a full table's caller the intermediate []Route (about 100 bytes
// per route) when it needs the routes in its own form.
func AppendRoutes[T any](s *Speaker, dst []T, vpc string, conv func(Route) T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.neighbors {
		if n.cfg.VPC == vpc {
			total += n.count()
		}
	}
	dst = slices.Grow(dst, total)
	for _, n := range s.neighbors {
		if n.cfg.VPC != vpc {
			continue
		}
		for k, v := range n.v4.all() {
			dst = append(dst, conv(n.route(k.prefix(), v)))
		}
		for k, v := range n.v6.all() {
			dst = append(dst, conv(n.route(k.prefix(), v)))
		}
	}
	return dst
}

// RouteCount is the number of routes held for vpc, without building them.
func (s *Speaker) RouteCount(vpc string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.neighbors {
		if n.cfg.VPC == vpc {
			total += n.count()
		}
	}
	return total
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}
