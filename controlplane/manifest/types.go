package manifest

// API versions and kinds accepted by Parse.
const (
	KubeOVNAPIVersion  = "kubeovn.io/v1"
	PeeringAPIVersion  = "gateway.githedgehog.com/v1alpha1"
	PeergateAPIVersion = "peergate.io/v1alpha1"

	KindKubeOVNVpc = "Vpc"
	KindSubnet     = "Subnet"
	KindPeering    = "Peering"
	KindGateway    = "Gateway"
	KindVPC        = "VPC"
)

// Key is the identity of an object: a later document with the same key
// replaces an earlier one.
type Key struct{ APIVersion, Kind, Name string }

// String renders the key as "Kind/name" (the API version only disambiguates
// Vpc from VPC, which the kind already does).
func (k Key) String() string { return k.Kind + "/" + k.Name }

// Less orders keys by API version, kind, then name.
func (k Key) Less(o Key) bool {
	if k.APIVersion != o.APIVersion {
		return k.APIVersion < o.APIVersion
	}
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	return k.Name < o.Name
}

// Source says where a document came from: its file and its 0-based index
// among the file's documents.
type Source struct {
	File  string
	Index int
}

// Object is one parsed manifest document. Exactly one of the typed spec
// pointers is set, according to Key.Kind.
type Object struct {
	Key    Key
	Source Source
	// Raw is the document's YAML as read. When set, Marshal writes it as
	// is, so it must be the text the typed fields were parsed from; code
	// that builds or edits an Object leaves it empty.
	Raw      []byte
	Metadata Metadata

	KubeOVNVpc *KubeOVNVpcSpec // kubeovn.io/v1 Vpc
	Subnet     *SubnetSpec     // kubeovn.io/v1 Subnet
	Peering    *PeeringSpec    // gateway.githedgehog.com/v1alpha1 Peering
	Gateway    *GatewaySpec    // peergate.io/v1alpha1 Gateway
	VPC        *VPCSpec        // peergate.io/v1alpha1 VPC
}

// Metadata is the subset of Kubernetes object metadata a manifest may carry.
type Metadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// KubeOVNVpcSpec is the spec of a Kube-OVN Vpc.
type KubeOVNVpcSpec struct {
	VpcPeerings  []VpcPeering  `yaml:"vpcPeerings,omitempty"`
	StaticRoutes []StaticRoute `yaml:"staticRoutes,omitempty"`
}

// VpcPeering is one end of a Kube-OVN peering link.
type VpcPeering struct {
	RemoteVpc      string `yaml:"remoteVpc"`
	LocalConnectIP string `yaml:"localConnectIP"` // address with prefix length, "169.254.0.1/30"
}

// StaticRoute is a Kube-OVN static route.
type StaticRoute struct {
	CIDR      string `yaml:"cidr"`
	NextHopIP string `yaml:"nextHopIP"`
	Policy    string `yaml:"policy,omitempty"` // policyDst (default) | policySrc
}

// Static route policies.
const (
	PolicyDst = "policyDst"
	PolicySrc = "policySrc"
)

// SubnetSpec is the spec of a Kube-OVN Subnet.
type SubnetSpec struct {
	Vpc       string `yaml:"vpc"`
	CIDRBlock string `yaml:"cidrBlock"`
	Gateway   string `yaml:"gateway,omitempty"` // default: first host address
}

// PeeringSpec maps the two VPC names of a Peering to their sides, in
// document order.
type PeeringSpec struct {
	Sides []PeeringSide
}

// PeeringSide is what one VPC of a Peering exposes to the other.
type PeeringSide struct {
	VPC     string        `yaml:"-"`
	IPs     []PeeringIP   `yaml:"ips,omitempty"`
	As      []string      `yaml:"as,omitempty"`
	NatType string        `yaml:"natType,omitempty"` // stateless (default) | stateful
	Metric  uint32        `yaml:"metric,omitempty"`
	Ingress []IngressRule `yaml:"ingress,omitempty"`
}

// NAT types.
const (
	NatStateless = "stateless"
	NatStateful  = "stateful"
)

// PeeringIP is one entry of a side's ips: exactly one field is set.
type PeeringIP struct {
	CIDR          string `yaml:"cidr,omitempty"`
	Not           string `yaml:"not,omitempty"`
	FromVPCSubnet string `yaml:"fromVPCSubnet,omitempty"`
}

// IngressRule is one entry of a side's ingress list.
type IngressRule struct {
	Allow *Allow `yaml:"allow"`
}

// Allow lets matching packets enter the side.
type Allow struct {
	Stateless *bool      `yaml:"stateless,omitempty"`
	TCP       *PortMatch `yaml:"tcp,omitempty"`
	UDP       *PortMatch `yaml:"udp,omitempty"`
}

// PortMatch matches transport ports; 0 (absent) means any.
type PortMatch struct {
	SrcPort int `yaml:"srcPort,omitempty"`
	DstPort int `yaml:"dstPort,omitempty"`
}

// GatewaySpec is the spec of a peergate Gateway.
type GatewaySpec struct {
	ASN      uint32 `yaml:"asn,omitempty"`
	RouterID string `yaml:"routerID,omitempty"`
	VTEPIP   string `yaml:"vtepIP,omitempty"`
	Ports    []Port `yaml:"ports,omitempty"`
}

// Port is one NIC port of the gateway.
type Port struct {
	Name   string   `yaml:"name"`
	Device string   `yaml:"device"`
	MAC    string   `yaml:"mac,omitempty"`
	IPs    []string `yaml:"ips,omitempty"`
	MTU    int      `yaml:"mtu,omitempty"`
}

// VPCSpec is the spec of a peergate VPC: how the VPC is attached.
type VPCSpec struct {
	Subnets   []string   `yaml:"subnets,omitempty"`
	VXLAN     *VXLAN     `yaml:"vxlan,omitempty"`
	VLAN      *VLAN      `yaml:"vlan,omitempty"`
	Untagged  *Untagged  `yaml:"untagged,omitempty"`
	RouterIPs []string   `yaml:"routerIPs,omitempty"`
	Routes    []VPCRoute `yaml:"routes,omitempty"`
	External  bool       `yaml:"external,omitempty"`
	BGP       *BGP       `yaml:"bgp,omitempty"`
}

// VXLAN attaches a VPC by VNI on a port.
type VXLAN struct {
	Port  string   `yaml:"port"`
	VNI   uint32   `yaml:"vni"`
	VTEPs []string `yaml:"vteps,omitempty"`
}

// VLAN attaches a VPC by 802.1Q id on a port.
type VLAN struct {
	Port string `yaml:"port"`
	ID   int    `yaml:"id"`
}

// Untagged attaches a VPC to the untagged frames of a port.
type Untagged struct {
	Port string `yaml:"port"`
}

// VPCRoute is a static route inside a VPC.
type VPCRoute struct {
	CIDR    string `yaml:"cidr"`
	NextHop string `yaml:"nextHop"`
}

// BGP lists the BGP neighbours of an external VPC.
type BGP struct {
	Neighbors []Neighbor `yaml:"neighbors,omitempty"`
}

// Neighbor is one BGP neighbour.
type Neighbor struct {
	Address string `yaml:"address"`
	Port    int    `yaml:"port,omitempty"`
	ASN     uint32 `yaml:"asn"`
}
