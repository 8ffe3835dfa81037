package replay

import (
	"path/filepath"
	"testing"
	"time"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestParseInputNeedsPortAndFile(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		port string
	}{
		{"fabric=a.pcap", true, "fabric"},
		{"0=/tmp/x=y.pcap", true, "0"},
		{"a.pcap", false, ""},
		{"=a.pcap", false, ""},
		{"fabric=", false, ""},
	}
	for _, c := range cases {
		in, err := ParseInput(c.in)
		if (err == nil) != c.ok || in.Port != c.port {
			t.Errorf("%q: %+v %v", c.in, in, err)
		}
	}
}

func TestPcapFilesRoundTrip(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.pcap")
	at := time.Date(2026, 1, 1, 0, 0, 1, 500, time.UTC)
	in := []Packet{{Time: at, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}}}
	if err := WriteFile(f, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadFile(f, 3)
	if err != nil || len(out) != 1 || !out[0].Time.Equal(at) || out[0].Port != 3 || string(out[0].Data) != string(in[0].Data) {
		t.Fatalf("read back %+v %v", out, err)
	}
}

func TestRunAccountsForEveryPacket(t *testing.T) {
	tables := &tablesv1.Tables{
		Ports: []*tablesv1.Port{{Id: 0, Name: "p0"}},
		Vpcs: []*tablesv1.Vpc{{Name: "v", RouterIps: []string{"10.0.0.1"},
			Attachment: &tablesv1.Attachment{Kind: tablesv1.Attachment_KIND_UNTAGGED}}},
	}
	// An ARP request for the router and a runt.
	arp := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06,
		0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0, 0, 1, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1}
	t0 := time.Unix(100, 0)
	sent, r, err := Run(tables, []Packet{{Time: t0, Data: arp}, {Time: t0.Add(time.Second), Data: []byte{1}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || r.PacketsIn != 2 || r.PacketsOut != 1 || r.Drops["malformed"] != 1 || r.Events["arp_replied"] != 1 {
		t.Errorf("sent %d, report %+v", len(sent), r)
	}
	if r.Ports["p0"].RxPackets != 2 || r.Ports["p0"].TxPackets != 1 {
		t.Errorf("port counters %+v", r.Ports)
	}
	if _, _, err := Run(&tablesv1.Tables{Vpcs: []*tablesv1.Vpc{{Id: 3}}}, nil, Options{}); err == nil {
		t.Error("inconsistent tables accepted")
	}
}
