package nat_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/peergate/peergate/nat"
)

// The pipeline collects the stateful-NAT packets of a burst and translates
// them in one call; a sweep per burst keeps expiry incremental.
func ExampleStateful_Translate() {
	s, err := nat.NewStateful(nat.Config{
		Capacity:   1 << 16,
		Seed:       1, // fixed for the example; 0 draws a random one
		Generation: 1,
		Pools: []nat.Pool{ // the two peerings of the fourth use case share the /30
			{ID: 1, VPC: 1, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/30")}},
			{ID: 2, VPC: 1, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/30")}},
		},
	})
	if err != nil {
		panic(err)
	}
	// An ICMP echo request 10.1.1.5 -> 8.8.8.8, identifier 7 (checksums
	// omitted for brevity: they are updated incrementally either way).
	pkt := []byte{
		0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 1, 1, 5, 8, 8, 8, 8,
		8, 0, 0, 0, 0, 7, 0, 1,
	}
	now := int64(time.Second)
	reqs := []nat.Request{{Packet: pkt, SrcVPC: 1, DstVPC: 2, Pool: 1}}
	s.Translate(now, reqs)
	s.Sweep(now, 64)
	fmt.Println(reqs[0].Result, netip.AddrFrom4([4]byte(pkt[12:16])), s.Counters().Sessions)
	// Output: ok 192.168.1.2 1
}
