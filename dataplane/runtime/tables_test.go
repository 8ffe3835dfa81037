package runtime

import (
	"testing"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestPortsFromTablesGivePuntInterfacesToPortsWithAddresses(t *testing.T) {
	tables := &tablesv1.Tables{Ports: []*tablesv1.Port{
		{Id: 0, Name: "fabric", Device: "net_af_packet0,iface=gw0", Ips: []string{"192.0.2.1/24"}, Mtu: 1500},
		{Id: 1, Name: "vpc2", Device: "net_af_packet1,iface=gw1", Mac: "02:00:00:00:00:02"},
		{Id: 2, Name: "a-very-long-port-name", Device: "0000:00:08.0", Ips: []string{"2001:db8::1/64"}},
	}}
	got, err := PortsFromTables(tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d ports", len(got))
	}
	if p := got[0]; !p.Punt || p.PuntIface != "pg-fabric" || len(p.PuntAddrs) != 1 || p.PuntAddrs[0].String() != "192.0.2.1/24" || p.MTU != 1500 {
		t.Fatalf("fabric: %+v", p)
	}
	if p := got[1]; p.Punt || p.MAC.String() != "02:00:00:00:00:02" || p.ID != 1 {
		t.Fatalf("vpc2: %+v", p)
	}
	if p := got[2]; p.PuntIface != "pg2" || p.Device != "0000:00:08.0" {
		t.Fatalf("long name: %+v", p)
	}
}

func TestPortsFromTablesRejectBadInput(t *testing.T) {
	cases := []struct {
		name string
		port *tablesv1.Port
	}{
		{"a MAC that does not parse", &tablesv1.Port{Name: "p", Mac: "zz"}},
		{"an address that does not parse", &tablesv1.Port{Name: "p", Ips: []string{"192.0.2.1"}}},
		{"an id beyond 16 bits", &tablesv1.Port{Name: "p", Id: 70000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := PortsFromTables(&tablesv1.Tables{Ports: []*tablesv1.Port{c.port}}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
