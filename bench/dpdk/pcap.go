package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// writeVXLANPcap writes n VXLAN packets (VNI 100, 192.0.2.2 -> 192.0.2.1)
// whose inner frame is inner bytes long: Ethernet, IPv4 10.1.x.y ->
// 10.2.0.5, UDP with a source port per packet, so flows differ.
func writeVXLANPcap(path string, n, inner int) error {
	if inner < 14+20+8 {
		return fmt.Errorf("inner frame of %d bytes cannot hold Ethernet+IPv4+UDP", inner)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for i := 0; i < n; i++ {
		payload := make([]byte, inner-14-20-8)
		if len(payload) >= 4 {
			binary.BigEndian.PutUint32(payload, uint32(i))
		}
		ieth := &layers.Ethernet{SrcMAC: mac(0x10), DstMAC: mac(0x11), EthernetType: layers.EthernetTypeIPv4}
		iip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: []byte{10, 1, byte(i >> 8), byte(i)}, DstIP: []byte{10, 2, 0, 5}}
		iudp := &layers.UDP{SrcPort: layers.UDPPort(10000 + i), DstPort: 53}
		_ = iudp.SetNetworkLayerForChecksum(iip)
		innerBuf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(innerBuf, opts, ieth, iip, iudp, gopacket.Payload(payload)); err != nil {
			return err
		}
		eth := &layers.Ethernet{SrcMAC: mac(0x01), DstMAC: mac(0x02), EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Flags: layers.IPv4DontFragment,
			SrcIP: []byte{192, 0, 2, 2}, DstIP: []byte{192, 0, 2, 1}}
		udp := &layers.UDP{SrcPort: layers.UDPPort(49152 + i%16384), DstPort: 4789}
		_ = udp.SetNetworkLayerForChecksum(ip)
		vx := &layers.VXLAN{ValidIDFlag: true, VNI: 100}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, vx, gopacket.Payload(innerBuf.Bytes())); err != nil {
			return err
		}
		data := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			return err
		}
	}
	return nil
}

func mac(last byte) []byte { return []byte{0x02, 0, 0, 0, 0, last} }
