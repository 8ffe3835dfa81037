package bgp

import (
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
)

// Wire decoding of the few gobgp API messages the speaker reads from the
// watch. proto.Unmarshal goes through protobuf's reflection tables and
// allocates every string and repeated field; the watch delivers one path
// per prefix (about 1 M for a full table), each with four or five
// attributes, so decoding the handful of fields directly is several times
// cheaper. Unknown fields are skipped, as proto.Unmarshal would; a
// malformed message reports false.

// eachField calls fn for every field of the message b: v is the value of a
// varint field, data that of a length-delimited one.
func eachField(b []byte, fn func(num protowire.Number, v uint64, data []byte)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			fn(num, v, nil)
			b = b[n:]
		case protowire.BytesType:
			data, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			fn(num, 0, data)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
		}
	}
	return true
}

// wirePrefix decodes api.IPAddressPrefix {prefix_len = 1; prefix = 2}.
func wirePrefix(b []byte) (netip.Prefix, bool) {
	var bits uint64
	var addr []byte
	if !eachField(b, func(num protowire.Number, v uint64, data []byte) {
		switch num {
		case 1:
			bits = v
		case 2:
			addr = data
		}
	}) {
		return netip.Prefix{}, false
	}
	a, err := netip.ParseAddr(string(addr))
	if err != nil || bits > 128 {
		return netip.Prefix{}, false
	}
	p, err := a.Unmap().Prefix(int(bits))
	return p, err == nil
}

// wireNextHop decodes api.NextHopAttribute {next_hop = 1} and, with field
// 2, the first of api.MpReachNLRIAttribute's next_hops = 2.
func wireNextHop(b []byte, field protowire.Number) netip.Addr {
	var nh []byte
	found := false
	eachField(b, func(num protowire.Number, _ uint64, data []byte) {
		if num == field && !found {
			nh, found = data, true
		}
	})
	a, _ := netip.ParseAddr(string(nh))
	return a
}

// wireMED decodes api.MultiExitDiscAttribute {med = 1}.
func wireMED(b []byte) uint32 {
	var med uint64
	eachField(b, func(num protowire.Number, v uint64, _ []byte) {
		if num == 1 {
			med = v
		}
	})
	return uint32(med)
}

// wireASPath decodes api.AsPathAttribute {repeated AsSegment segments = 1}
// with AsSegment {type = 1; repeated uint32 numbers = 2 (packed or not)}:
// the path length as best-path selection counts it (an AS_SET or
// AS_CONFED_SET counts as one, RFC 4271 9.1.2.2) and whether asn occurs.
func wireASPath(b []byte, asn uint32) (length int, loop bool) {
	eachField(b, func(num protowire.Number, _ uint64, seg []byte) {
		if num != 1 {
			return
		}
		var typ uint64
		count := 0
		eachField(seg, func(num protowire.Number, v uint64, data []byte) {
			switch {
			case num == 1:
				typ = v
			case num == 2 && data == nil: // one unpacked number
				count++
				loop = loop || uint32(v) == asn
			case num == 2: // packed numbers
				for len(data) > 0 {
					x, n := protowire.ConsumeVarint(data)
					if n < 0 {
						return
					}
					count++
					loop = loop || uint32(x) == asn
					data = data[n:]
				}
			}
		})
		// api.AsSegment_AS_SET = 1, AS_CONFED_SET = 4.
		if typ == 1 || typ == 4 {
			length++
		} else {
			length += count
		}
	})
	return length, loop
}
