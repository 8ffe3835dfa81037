package compile

import (
	"net/netip"
	"testing"
)

// parseRoutePrefix must agree with netip.ParsePrefix on every input:
// canonical prefixes of both families, and malformed ones of every kind
// the fast IPv4 path could mistake.
func TestParseRoutePrefixAgreesWithNetip(t *testing.T) {
	inputs := []string{
		"0.0.0.0/0", "10.0.0.0/8", "1.2.3.4/32", "255.255.255.255/32", "192.168.1.0/24", "10.1.2.3/8",
		"2001:db8::/32", "::/0", "::ffff:1.2.3.4/128", "::ffff:1.2.3.0/120",
		"", "/", "1.2.3.4", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/032", "1.2.3.4/08", "01.2.3.4/8", "1.2.3.256/24",
		"1.2.3/24", "1.2.3.4.5/24", "1..3.4/24", "1.2.3.4/24 ", " 1.2.3.4/24", "1.2.3.4/2a", "1.2.3.1000/24",
		"1.2.3.4/100", "a.b.c.d/8", "1.2.3.4//8", "1.2.3.4/-1", "1.2.3.4/+8", "nope",
	}
	for _, s := range inputs {
		want, werr := netip.ParsePrefix(s)
		got, gerr := parseRoutePrefix(s)
		if got != want || (werr == nil) != (gerr == nil) {
			t.Errorf("parseRoutePrefix(%q) = %v, %v; netip.ParsePrefix: %v, %v", s, got, gerr, want, werr)
		}
	}
}

func FuzzParseRoutePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "1.2.3.4/32", "2001:db8::/32", "01.2.3.4/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := netip.ParsePrefix(s)
		got, gerr := parseRoutePrefix(s)
		if got != want || (werr == nil) != (gerr == nil) {
			t.Errorf("parseRoutePrefix(%q) = %v, %v; netip.ParsePrefix: %v, %v", s, got, gerr, want, werr)
		}
	})
}
