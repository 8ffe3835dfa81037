package compile

import "testing"

func TestPathSetEdit(t *testing.T) {
	a, b, c := path{nh: 1, nbr: 0}, path{nh: 2, nbr: 1}, path{nh: 3, nbr: 2}
	byNbr := func(n uint32) func(path) bool { return func(x path) bool { return x.nbr == n } }
	all := func(s pathSet) []path {
		out := []path{s.first}
		if s.more != nil {
			out = append(out, *s.more...)
		}
		return out
	}
	s, added, none := pathSet{}.edit(false, byNbr(0), &a)
	if added != 1 || none || s.more != nil || s.first != a {
		t.Fatalf("first path: %v %d %v", all(s), added, none)
	}
	s, added, _ = s.edit(true, byNbr(1), &b)
	s, added2, _ := s.edit(true, byNbr(2), &c)
	if added != 1 || added2 != 1 || len(all(s)) != 3 {
		t.Fatalf("three neighbours: %v", all(s))
	}
	s, added, _ = s.edit(true, byNbr(1), &path{nh: 9, nbr: 1}) // implicit withdrawal
	if added != 0 || len(all(s)) != 3 || all(s)[2].nh != 9 {
		t.Fatalf("replaced: %v %d", all(s), added)
	}
	for _, n := range []uint32{0, 2} {
		s, _, none = s.edit(true, byNbr(n), nil)
		if none {
			t.Fatalf("withdrawal of %d left none", n)
		}
	}
	if s.more != nil || s.first.nh != 9 {
		t.Fatalf("one left: %v", all(s))
	}
	if _, added, none = s.edit(true, byNbr(1), nil); !none || added != -1 {
		t.Fatalf("last withdrawal: %d %v", added, none)
	}
	// The common case, one neighbour re-announcing, allocates nothing.
	one := pathSet{first: a}
	if n := testing.AllocsPerRun(100, func() { one, _, _ = one.edit(true, byNbr(0), &a) }); n != 0 {
		t.Errorf("re-announcing a single path allocates %v times", n)
	}
}
