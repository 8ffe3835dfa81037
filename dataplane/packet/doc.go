// Package packet holds typed zero-copy views over wire-format headers
// (Ethernet, 802.1Q, ARP, IPv4, IPv6, UDP, TCP, ICMP, ICMPv6, VXLAN) in the
// style of gVisor's pkg/tcpip/header, and the Internet checksum with its
// incremental update (RFC 1624). A view is a byte slice starting at the
// header; callers check the length once (the *MinLen constants) before using
// accessors, which then never allocate. It knows nothing of routing.
package packet
