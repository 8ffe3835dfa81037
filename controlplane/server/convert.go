package server

import (
	"bytes"
	"fmt"

	"github.com/peergate/peergate/controlplane/manifest"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

// This file maps the API's typed objects to manifest objects and back. The
// mapping is field for field; judging values is package validate's job.

func keyToProto(k manifest.Key) *apiv1.ObjectKey {
	return &apiv1.ObjectKey{ApiVersion: k.APIVersion, Kind: k.Kind, Name: k.Name}
}

func keyFromProto(k *apiv1.ObjectKey) manifest.Key {
	return manifest.Key{APIVersion: k.GetApiVersion(), Kind: k.GetKind(), Name: k.GetName()}
}

func objectToProto(o manifest.Object) *apiv1.Object {
	raw := o.Raw
	if len(raw) == 0 {
		raw = manifest.Encode(o)
	}
	p := &apiv1.Object{
		Key:      keyToProto(o.Key),
		Metadata: &apiv1.Metadata{Name: o.Metadata.Name, Namespace: o.Metadata.Namespace, Labels: o.Metadata.Labels, Annotations: o.Metadata.Annotations},
		File:     o.Source.File,
		Document: int32(o.Source.Index),
		Yaml:     string(raw),
	}
	switch {
	case o.KubeOVNVpc != nil:
		s := &apiv1.KubeOvnVpcSpec{}
		for _, v := range o.KubeOVNVpc.VpcPeerings {
			s.VpcPeerings = append(s.VpcPeerings, &apiv1.VpcPeering{RemoteVpc: v.RemoteVpc, LocalConnectIp: v.LocalConnectIP})
		}
		for _, r := range o.KubeOVNVpc.StaticRoutes {
			s.StaticRoutes = append(s.StaticRoutes, &apiv1.StaticRoute{Cidr: r.CIDR, NextHopIp: r.NextHopIP, Policy: r.Policy})
		}
		p.Spec = &apiv1.Object_KubeovnVpc{KubeovnVpc: s}
	case o.Subnet != nil:
		p.Spec = &apiv1.Object_Subnet{Subnet: &apiv1.SubnetSpec{Vpc: o.Subnet.Vpc, CidrBlock: o.Subnet.CIDRBlock, Gateway: o.Subnet.Gateway}}
	case o.Peering != nil:
		s := &apiv1.PeeringSpec{}
		for _, side := range o.Peering.Sides {
			s.Sides = append(s.Sides, sideToProto(side))
		}
		p.Spec = &apiv1.Object_Peering{Peering: s}
	case o.Gateway != nil:
		g := o.Gateway
		s := &apiv1.GatewaySpec{Asn: g.ASN, RouterId: g.RouterID, VtepIp: g.VTEPIP}
		for _, port := range g.Ports {
			s.Ports = append(s.Ports, &apiv1.GatewayPort{Name: port.Name, Device: port.Device, Mac: port.MAC, Ips: port.IPs, Mtu: int32(port.MTU)})
		}
		p.Spec = &apiv1.Object_Gateway{Gateway: s}
	case o.VPC != nil:
		p.Spec = &apiv1.Object_Vpc{Vpc: vpcToProto(o.VPC)}
	}
	return p
}

func sideToProto(side manifest.PeeringSide) *apiv1.PeeringSide {
	s := &apiv1.PeeringSide{Vpc: side.VPC, As: side.As, NatType: side.NatType, Metric: side.Metric}
	for _, ip := range side.IPs {
		var m apiv1.PeeringIP
		switch {
		case ip.CIDR != "":
			m.Match = &apiv1.PeeringIP_Cidr{Cidr: ip.CIDR}
		case ip.Not != "":
			m.Match = &apiv1.PeeringIP_Not{Not: ip.Not}
		case ip.FromVPCSubnet != "":
			m.Match = &apiv1.PeeringIP_FromVpcSubnet{FromVpcSubnet: ip.FromVPCSubnet}
		}
		s.Ips = append(s.Ips, &m)
	}
	for _, r := range side.Ingress {
		rule := &apiv1.IngressRule{}
		if a := r.Allow; a != nil {
			rule.Allow = &apiv1.Allow{Stateless: a.Stateless, Tcp: portsToProto(a.TCP), Udp: portsToProto(a.UDP)}
		}
		s.Ingress = append(s.Ingress, rule)
	}
	return s
}

func portsToProto(p *manifest.PortMatch) *apiv1.PortMatch {
	if p == nil {
		return nil
	}
	return &apiv1.PortMatch{SrcPort: int32(p.SrcPort), DstPort: int32(p.DstPort)}
}

func vpcToProto(v *manifest.VPCSpec) *apiv1.VpcSpec {
	s := &apiv1.VpcSpec{Subnets: v.Subnets, RouterIps: v.RouterIPs, External: v.External}
	if v.VXLAN != nil {
		s.Vxlan = &apiv1.VxlanAttachment{Port: v.VXLAN.Port, Vni: v.VXLAN.VNI, Vteps: v.VXLAN.VTEPs}
	}
	if v.VLAN != nil {
		s.Vlan = &apiv1.VlanAttachment{Port: v.VLAN.Port, Id: int32(v.VLAN.ID)}
	}
	if v.Untagged != nil {
		s.Untagged = &apiv1.UntaggedAttachment{Port: v.Untagged.Port}
	}
	for _, r := range v.Routes {
		s.Routes = append(s.Routes, &apiv1.VpcRoute{Cidr: r.CIDR, NextHop: r.NextHop})
	}
	if v.BGP != nil {
		s.Bgp = &apiv1.Bgp{}
		for _, n := range v.BGP.Neighbors {
			s.Bgp.Neighbors = append(s.Bgp.Neighbors, &apiv1.BgpNeighbor{Address: n.Address, Port: int32(n.Port), Asn: n.ASN})
		}
	}
	return s
}

// objectFromProto builds the manifest object of a typed API object, with
// no Raw text: the caller encodes and re-parses it so typed objects pass
// the same strict parser as documents.
func objectFromProto(p *apiv1.Object) (manifest.Object, error) {
	md := p.GetMetadata()
	o := manifest.Object{Metadata: manifest.Metadata{
		Name: md.GetName(), Namespace: md.GetNamespace(), Labels: md.GetLabels(), Annotations: md.GetAnnotations(),
	}}
	if o.Metadata.Name == "" {
		o.Metadata.Name = p.GetKey().GetName()
	}
	switch s := p.Spec.(type) {
	case *apiv1.Object_KubeovnVpc:
		o.Key = manifest.Key{APIVersion: manifest.KubeOVNAPIVersion, Kind: manifest.KindKubeOVNVpc}
		spec := &manifest.KubeOVNVpcSpec{}
		for _, v := range s.KubeovnVpc.GetVpcPeerings() {
			spec.VpcPeerings = append(spec.VpcPeerings, manifest.VpcPeering{RemoteVpc: v.GetRemoteVpc(), LocalConnectIP: v.GetLocalConnectIp()})
		}
		for _, r := range s.KubeovnVpc.GetStaticRoutes() {
			spec.StaticRoutes = append(spec.StaticRoutes, manifest.StaticRoute{CIDR: r.GetCidr(), NextHopIP: r.GetNextHopIp(), Policy: r.GetPolicy()})
		}
		o.KubeOVNVpc = spec
	case *apiv1.Object_Subnet:
		o.Key = manifest.Key{APIVersion: manifest.KubeOVNAPIVersion, Kind: manifest.KindSubnet}
		o.Subnet = &manifest.SubnetSpec{Vpc: s.Subnet.GetVpc(), CIDRBlock: s.Subnet.GetCidrBlock(), Gateway: s.Subnet.GetGateway()}
	case *apiv1.Object_Peering:
		o.Key = manifest.Key{APIVersion: manifest.PeeringAPIVersion, Kind: manifest.KindPeering}
		spec := &manifest.PeeringSpec{}
		for _, side := range s.Peering.GetSides() {
			spec.Sides = append(spec.Sides, sideFromProto(side))
		}
		o.Peering = spec
	case *apiv1.Object_Gateway:
		o.Key = manifest.Key{APIVersion: manifest.PeergateAPIVersion, Kind: manifest.KindGateway}
		g := s.Gateway
		spec := &manifest.GatewaySpec{ASN: g.GetAsn(), RouterID: g.GetRouterId(), VTEPIP: g.GetVtepIp()}
		for _, port := range g.GetPorts() {
			spec.Ports = append(spec.Ports, manifest.Port{Name: port.GetName(), Device: port.GetDevice(), MAC: port.GetMac(), IPs: port.GetIps(), MTU: int(port.GetMtu())})
		}
		o.Gateway = spec
	case *apiv1.Object_Vpc:
		o.Key = manifest.Key{APIVersion: manifest.PeergateAPIVersion, Kind: manifest.KindVPC}
		o.VPC = vpcFromProto(s.Vpc)
	default:
		return o, fmt.Errorf("object %q: no spec set (one of kubeovn_vpc, subnet, peering, gateway, vpc)", o.Metadata.Name)
	}
	if k := p.GetKey(); k != nil && (k.GetKind() != "" && k.GetKind() != o.Key.Kind || k.GetApiVersion() != "" && k.GetApiVersion() != o.Key.APIVersion) {
		return o, fmt.Errorf("object %q: key says %s %s but the spec is a %s %s", o.Metadata.Name, k.GetApiVersion(), k.GetKind(), o.Key.APIVersion, o.Key.Kind)
	}
	o.Key.Name = o.Metadata.Name
	return o, nil
}

func sideFromProto(p *apiv1.PeeringSide) manifest.PeeringSide {
	s := manifest.PeeringSide{VPC: p.GetVpc(), As: p.GetAs(), NatType: p.GetNatType(), Metric: p.GetMetric()}
	for _, ip := range p.GetIps() {
		s.IPs = append(s.IPs, manifest.PeeringIP{CIDR: ip.GetCidr(), Not: ip.GetNot(), FromVPCSubnet: ip.GetFromVpcSubnet()})
	}
	for _, r := range p.GetIngress() {
		var rule manifest.IngressRule
		if a := r.GetAllow(); a != nil {
			rule.Allow = &manifest.Allow{Stateless: a.Stateless, TCP: portsFromProto(a.GetTcp()), UDP: portsFromProto(a.GetUdp())}
		}
		s.Ingress = append(s.Ingress, rule)
	}
	return s
}

func portsFromProto(p *apiv1.PortMatch) *manifest.PortMatch {
	if p == nil {
		return nil
	}
	return &manifest.PortMatch{SrcPort: int(p.GetSrcPort()), DstPort: int(p.GetDstPort())}
}

func vpcFromProto(p *apiv1.VpcSpec) *manifest.VPCSpec {
	s := &manifest.VPCSpec{Subnets: p.GetSubnets(), RouterIPs: p.GetRouterIps(), External: p.GetExternal()}
	if v := p.GetVxlan(); v != nil {
		s.VXLAN = &manifest.VXLAN{Port: v.GetPort(), VNI: v.GetVni(), VTEPs: v.GetVteps()}
	}
	if v := p.GetVlan(); v != nil {
		s.VLAN = &manifest.VLAN{Port: v.GetPort(), ID: int(v.GetId())}
	}
	if v := p.GetUntagged(); v != nil {
		s.Untagged = &manifest.Untagged{Port: v.GetPort()}
	}
	for _, r := range p.GetRoutes() {
		s.Routes = append(s.Routes, manifest.VPCRoute{CIDR: r.GetCidr(), NextHop: r.GetNextHop()})
	}
	if b := p.GetBgp(); b != nil {
		s.BGP = &manifest.BGP{}
		for _, n := range b.GetNeighbors() {
			s.BGP.Neighbors = append(s.BGP.Neighbors, manifest.Neighbor{Address: n.GetAddress(), Port: int(n.GetPort()), ASN: n.GetAsn()})
		}
	}
	return s
}

// typedDocument encodes typed API objects as one multi-document YAML text,
// so that they are parsed (strictly, with document indexes) like a file.
func typedDocument(objs []*apiv1.Object) ([]byte, error) {
	var b bytes.Buffer
	for i, p := range objs {
		o, err := objectFromProto(p)
		if err != nil {
			return nil, fmt.Errorf("objects[%d]: %w", i, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(manifest.Encode(o))
	}
	return b.Bytes(), nil
}
