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

// writeScenarioStream writes n copies of packet idx (0-based) of a replay
// scenario's pcap, a VXLAN packet, with the inner TCP destination port and
// source address varied per packet so that flows differ (checksums are not
// recomputed except the inner IPv4 header's, which the pipeline checks).
func writeScenarioStream(path, from string, idx, n int, clientMACs bool) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	var tmpl []byte
	for i := 0; i <= idx; i++ {
		if tmpl, _, err = r.ReadPacketData(); err != nil {
			return fmt.Errorf("%s: packet %d: %w", from, i+1, err)
		}
	}
	// Outer Ethernet+IPv4+UDP+VXLAN = 50, inner Ethernet 14: inner IPv4 at 64.
	const innerIP = 50 + 14
	if len(tmpl) < innerIP+24 || tmpl[innerIP]>>4 != 4 {
		return fmt.Errorf("%s: packet %d is not VXLAN over IPv4 with inner IPv4", from, idx+1)
	}
	ihl := int(tmpl[innerIP]&0x0f) * 4
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		p := append([]byte(nil), tmpl...)
		p[innerIP+15] = byte(2 + i%200) // inner source 10.1.1.x
		if clientMACs {
			p[50+11] = byte(2 + i%200) // and its own inner source MAC
		}
		binary.BigEndian.PutUint16(p[innerIP+ihl+2:], uint16(40000+i)) // inner TCP destination port
		binary.BigEndian.PutUint16(p[34:], uint16(49152+i%16384))      // outer UDP source port
		setIPv4Checksum(p[innerIP : innerIP+ihl])
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(p), Length: len(p)}
		if err := w.WritePacket(ci, p); err != nil {
			return err
		}
	}
	return nil
}

func setIPv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
}
