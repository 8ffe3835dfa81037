package intern

import (
	"net/netip"
	"testing"
)

func TestTableNumbersEachValueOnce(t *testing.T) {
	var tb Table[netip.Addr]
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	if _, ok := tb.Lookup(a); ok {
		t.Fatal("an empty table knows a value")
	}
	for _, tc := range []struct {
		v    netip.Addr
		want uint32
	}{{a, 0}, {b, 1}, {a, 0}, {netip.Addr{}, 2}, {b, 1}} {
		if got := tb.Index(tc.v); got != tc.want || tb.At(got) != tc.v {
			t.Errorf("Index(%v) = %d (At %v), want %d", tc.v, got, tb.At(got), tc.want)
		}
	}
	if i, ok := tb.Lookup(b); !ok || i != 1 || tb.Len() != 3 {
		t.Errorf("Lookup(%v) = %d, %v; Len %d, want 1, true; 3", b, i, ok, tb.Len())
	}
}
