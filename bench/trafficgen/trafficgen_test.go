package trafficgen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestEveryCatalogPcapIsDeterministicAndDecodes(t *testing.T) {
	dir := t.TempDir()
	for _, s := range Catalog() {
		t.Run(s.Name, func(t *testing.T) {
			s.Packets = 200
			a, b := filepath.Join(dir, s.Name+".a"), filepath.Join(dir, s.Name+".b")
			if err := Write(a, s); err != nil {
				t.Fatal(err)
			}
			if err := Write(b, s); err != nil {
				t.Fatal(err)
			}
			ra, _ := os.ReadFile(a)
			rb, _ := os.ReadFile(b)
			if !bytes.Equal(ra, rb) {
				t.Fatal("two writes of the same spec differ")
			}
			r, err := pcapgo.NewReader(bytes.NewReader(ra))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				data, _, err := r.ReadPacketData()
				if err != nil {
					break
				}
				n++
				p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
				if el := p.ErrorLayer(); el != nil {
					t.Fatalf("packet %d does not decode: %v", n, el.Error())
				}
				if s.Encap == VXLAN && p.Layer(layers.LayerTypeVXLAN) == nil {
					t.Fatalf("packet %d has no VXLAN header", n)
				}
				if s.Encap == VLAN && p.Layer(layers.LayerTypeDot1Q) == nil {
					t.Fatalf("packet %d has no 802.1Q tag", n)
				}
			}
			if n != s.Packets {
				t.Fatalf("%d packets, want %d", n, s.Packets)
			}
		})
	}
}
