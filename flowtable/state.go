package flowtable

import (
	"fmt"
	"time"
)

// Protocol numbers the table ages differently.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// TCP header flag bits, as in byte 13 of the TCP header.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPAck = 0x10
)

// DNSPort is the remote port whose UDP replies close their session (one query,
// one answer: keeping it 300 s would only waste ports).
const DNSPort = 53

// Session state bits, kept in the low byte of session.state.
const (
	stLive   = 1 << 0
	stSynOut = 1 << 1 // SYN seen from the inside host
	stSynIn  = 1 << 2 // SYN seen from the remote end
	stFinOut = 1 << 3
	stFinIn  = 1 << 4
	stRst    = 1 << 5
	stClosed = 1 << 6 // expire now (DNS answered, killed by the owner)
	stKilled = 1 << 7 // closed by Kill (configuration gone), not by traffic

	stTCPClosing = stFinOut | stFinIn | stRst
	genShift     = 8
	genMask      = 1<<24 - 1
)

// State is a session's protocol state, for listings.
type State uint8

// String names the state the way conntrack tools do.
func (s State) String() string {
	switch {
	case s&stLive == 0:
		return "free"
	case s&stClosed != 0:
		return "closed"
	case s&stRst != 0:
		return "reset"
	case s&(stFinOut|stFinIn) == stFinOut|stFinIn:
		return "closing"
	case s&(stFinOut|stFinIn) != 0:
		return "half-closed"
	case s&(stSynOut|stSynIn) == stSynOut|stSynIn:
		return "established"
	case s&stSynOut != 0:
		return "syn-sent"
	case s&stSynIn != 0:
		return "syn-received"
	}
	return "active"
}

// Established reports whether a TCP session completed its handshake and is
// not closing.
func (s State) Established() bool {
	return s&(stSynOut|stSynIn) == stSynOut|stSynIn && s&(stTCPClosing|stClosed) == 0
}

// Timeouts are the idle times after which sessions expire, by state.
type Timeouts struct {
	// TCPEstablished applies to TCP sessions that saw a SYN each way and no
	// FIN or RST.
	TCPEstablished time.Duration
	// TCPTransitory applies to every other TCP session: opening (SYN sent),
	// closing (FIN, RST) and picked up mid-stream.
	TCPTransitory time.Duration
	UDP           time.Duration
	ICMP          time.Duration
	// Other protocols (GRE, ESP, ...) when the caller tracks them.
	Other time.Duration
	// KeepDNS keeps a UDP session open after a reply from remote port 53;
	// by default the reply closes it at once.
	KeepDNS bool
}

// DefaultTimeouts are VPP NAT44-ED's defaults.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		TCPEstablished: 7440 * time.Second,
		TCPTransitory:  240 * time.Second,
		UDP:            300 * time.Second,
		ICMP:           60 * time.Second,
		Other:          300 * time.Second,
	}
}

// secs holds the timeouts in whole seconds (rounded up), the table's unit.
type secs struct {
	tcpEst, tcpTrans, udp, icmp, other uint32
	keepDNS                            bool
}

func (t Timeouts) secs() (secs, error) {
	conv := func(name string, d time.Duration) (uint32, error) {
		if d < 0 || d > 365*24*time.Hour {
			return 0, fmt.Errorf("timeout %s %v: must be between 0 and one year", name, d)
		}
		return uint32((d + time.Second - 1) / time.Second), nil
	}
	var s secs
	var err error
	fields := []struct {
		name string
		d    time.Duration
		dst  *uint32
	}{
		{"tcp established", t.TCPEstablished, &s.tcpEst},
		{"tcp transitory", t.TCPTransitory, &s.tcpTrans},
		{"udp", t.UDP, &s.udp},
		{"icmp", t.ICMP, &s.icmp},
		{"other", t.Other, &s.other},
	}
	for _, f := range fields {
		if *f.dst, err = conv(f.name, f.d); err != nil {
			return s, err
		}
	}
	s.keepDNS = t.KeepDNS
	return s, nil
}

// nextState folds one packet into a session's state bits. out says the packet
// came from the inside host; remotePort is the session's remote port.
func (s *secs) nextState(st uint32, proto uint8, out bool, tcpFlags uint8, remotePort uint16) uint32 {
	switch proto {
	case ProtoTCP:
		if out {
			if tcpFlags&TCPSyn != 0 && tcpFlags&TCPAck == 0 && st&stTCPClosing != 0 {
				// A new connection reusing the tuple of a closed one.
				st &^= stTCPClosing | stSynIn
			}
			if tcpFlags&TCPSyn != 0 {
				st |= stSynOut
			}
			if tcpFlags&TCPFin != 0 {
				st |= stFinOut
			}
		} else {
			if tcpFlags&TCPSyn != 0 {
				st |= stSynIn
			}
			if tcpFlags&TCPFin != 0 {
				st |= stFinIn
			}
		}
		if tcpFlags&TCPRst != 0 {
			st |= stRst
		}
	case ProtoUDP:
		if !out && remotePort == DNSPort && !s.keepDNS {
			st |= stClosed
		}
	}
	return st
}

// timeout returns the idle time in seconds a session in state st gets.
func (s *secs) timeout(st uint32, proto uint8) uint32 {
	switch proto {
	case ProtoTCP:
		if State(st).Established() {
			return s.tcpEst
		}
		return s.tcpTrans
	case ProtoUDP:
		return s.udp
	case ProtoICMP:
		return s.icmp
	}
	return s.other
}

// expired reports whether a session with state st and deadline dl is dead at
// second now.
func expired(st, dl, now uint32) bool {
	return st&stClosed != 0 || int32(now-dl) >= 0
}

// seconds converts the callers' nanosecond clock to the table's unit.
func seconds(now int64) uint32 { return uint32(now / int64(time.Second)) }
