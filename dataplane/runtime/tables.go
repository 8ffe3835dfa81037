package runtime

import (
	"fmt"
	"net"
	"net/netip"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// PortsFromTables turns the compiled tables' ports into port
// configurations: the pipeline id, name, device string, MAC and MTU as
// given, and a punt interface carrying the port's own addresses on every
// port that has some (so BGP and other host services reach the kernel).
// The punt interface is "pg-NAME", or "pgID" when that would be longer
// than Linux allows.
func PortsFromTables(t *tablesv1.Tables) ([]PortConfig, error) {
	var out []PortConfig
	for _, p := range t.GetPorts() {
		if p.GetId() > 0xffff {
			return nil, fmt.Errorf("port %q: id %d does not fit the pipeline's 16 bits", p.GetName(), p.GetId())
		}
		pc := PortConfig{ID: uint16(p.GetId()), Name: p.GetName(), Device: p.GetDevice(), MTU: int(p.GetMtu())}
		if m := p.GetMac(); m != "" {
			mac, err := net.ParseMAC(m)
			if err != nil || len(mac) != 6 {
				return nil, fmt.Errorf("port %q: mac %q: not a 48-bit MAC", p.GetName(), m)
			}
			pc.MAC = mac
		}
		for _, s := range p.GetIps() {
			a, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("port %q: address %q: %w", p.GetName(), s, err)
			}
			pc.PuntAddrs = append(pc.PuntAddrs, a)
		}
		if len(pc.PuntAddrs) > 0 {
			pc.Punt = true
			pc.PuntIface = "pg-" + pc.Name
			if len(pc.PuntIface) > 15 {
				pc.PuntIface = fmt.Sprintf("pg%d", pc.ID)
			}
		}
		out = append(out, pc)
	}
	return out, nil
}
