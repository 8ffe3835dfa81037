package compile

import (
	"strconv"
	"testing"
)

func TestPathSetEdit(t *testing.T) {
	var cp Compiler
	a, b, c := path{nh: 1, an: 0}, path{nh: 2, an: 1}, path{nh: 3, an: 2}
	byNbr := func(n uint32) func(path) bool { return func(x path) bool { return x.nbr() == n } }
	all := func(s pathSet) []path {
		out := []path{s.first}
		if s.more != 0 {
			out = append(out, cp.more[s.more-1]...)
		}
		return out
	}
	s, added, none := cp.edit(pathSet{}, false, byNbr(0), &a)
	if added != 1 || none || s.more != 0 || s.first != a {
		t.Fatalf("first path: %v %d %v", all(s), added, none)
	}
	s, added, _ = cp.edit(s, true, byNbr(1), &b)
	s, added2, _ := cp.edit(s, true, byNbr(2), &c)
	if added != 1 || added2 != 1 || len(all(s)) != 3 {
		t.Fatalf("three neighbours: %v", all(s))
	}
	s, added, _ = cp.edit(s, true, byNbr(1), &path{nh: 9, an: 7<<16 | 1}) // implicit withdrawal
	if added != 0 || len(all(s)) != 3 || all(s)[2].nh != 9 || all(s)[2].asLen() != 7 {
		t.Fatalf("replaced: %v %d", all(s), added)
	}
	for _, n := range []uint32{0, 2} {
		s, _, none = cp.edit(s, true, byNbr(n), nil)
		if none {
			t.Fatalf("withdrawal of %d left none", n)
		}
	}
	if s.more != 0 || s.first.nh != 9 {
		t.Fatalf("one left: %v", all(s))
	}
	// Every set of others given up is free again: one slot was in use at
	// a time.
	if len(cp.more) != 1 || len(cp.free) != 1 || cp.more[0] != nil {
		t.Errorf("others: %d slots, %d free, slot 0 %v", len(cp.more), len(cp.free), cp.more[0])
	}
	if _, added, none = cp.edit(s, true, byNbr(1), nil); !none || added != -1 {
		t.Fatalf("last withdrawal: %d %v", added, none)
	}
	// The common case, one neighbour re-announcing, allocates nothing.
	one := pathSet{first: a}
	if n := testing.AllocsPerRun(100, func() { one, _, _ = cp.edit(one, true, byNbr(0), &a) }); n != 0 {
		t.Errorf("re-announcing a single path allocates %v times", n)
	}
}

func TestPathPacksAnASPathLengthAndANeighbour(t *testing.T) {
	var cp Compiler
	for _, r := range []LearnedRoute{
		{Neighbor: "192.0.2.1", ASPathLen: 3},
		{Neighbor: "192.0.2.2", ASPathLen: maxASPathLen},
		{Neighbor: "192.0.2.3", ASPathLen: 1 << 20}, // counts as the longest
	} {
		p, err := cp.path(r)
		if err != nil {
			t.Fatal(err)
		}
		back := cp.learnedRoute(r.Prefix, p)
		if back.Neighbor != r.Neighbor || back.ASPathLen != clampASPathLen(r.ASPathLen) {
			t.Errorf("%+v came back as %+v", r, back)
		}
	}
	for i := cp.neighbors.Len(); i < maxNeighbors; i++ {
		cp.neighbors.Index(strconv.Itoa(i))
	}
	if _, err := cp.path(LearnedRoute{Neighbor: "one too many"}); err == nil {
		t.Error("no error past the neighbours a path can number")
	}
}
