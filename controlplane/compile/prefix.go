package compile

import (
	"net/netip"
)

// parseRoutePrefix parses a compiled route's prefix as netip.ParsePrefix
// does. Applying a delta and reading the routes of a region before an
// update compare a route list's prefixes by the thousand (the Tables keep
// them as strings): canonical IPv4 ("a.b.c.d/n", most of a full table)
// is parsed here several times faster; anything else goes to
// netip.ParsePrefix, so the results and errors are the same.
func parseRoutePrefix(s string) (netip.Prefix, error) {
	if p, ok := parsePrefix4(s); ok {
		return p, nil
	}
	return netip.ParsePrefix(s)
}

// parsePrefix4 accepts only canonical IPv4 prefixes: four decimal octets
// without leading zeros, each at most 255, and a length of at most 32
// without leading zeros.
func parsePrefix4(s string) (netip.Prefix, bool) {
	var a [4]byte
	i := 0
	for k := range 4 {
		v, n := 0, 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 3 {
			v = v*10 + int(s[i]-'0')
			i++
			n++
		}
		if n == 0 || n > 1 && s[i-n] == '0' || v > 255 {
			return netip.Prefix{}, false
		}
		a[k] = byte(v)
		sep := byte('.')
		if k == 3 {
			sep = '/'
		}
		if i >= len(s) || s[i] != sep {
			return netip.Prefix{}, false
		}
		i++
	}
	bits, n := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 2 {
		bits = bits*10 + int(s[i]-'0')
		i++
		n++
	}
	if n == 0 || i != len(s) || n > 1 && s[i-n] == '0' || bits > 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), bits), true
}

// mustRoutePrefix parses the prefix of a route this package compiled.
func mustRoutePrefix(s string) netip.Prefix {
	p, err := parseRoutePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}
