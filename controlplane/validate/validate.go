// Package validate judges a manifest.Config as a whole: syntax of addresses
// and prefixes, references between objects (VPCs, subnets, ports), and the
// rules that make a configuration compilable without ambiguity (peering
// pairs, NAT sizes and pools, attachments). It reports every problem at
// once and changes nothing; package compile refuses a Config with errors.
//
// Check also returns the resolved Model (one record per VPC merging a
// Kube-OVN Vpc, its Subnets and a peergate VPC of the same name; peerings
// with parsed prefixes and their NAT segments) that compile consumes.
//
// Decisions beyond the list of rules:
//   - A VPC without a peergate VPC (no attachment) is a warning: the seed
//     Kube-OVN files validate alone; the gateway cannot reach such a VPC.
//   - Core `v1` `Pod` documents (the Kube-OVN document's workloads) are
//     warned about and ignored.
//   - What a peer exposes toward a non-external VPC may not lie inside one
//     of its subnets (error: ambiguous, use `as`); an exposed prefix larger
//     than a subnet only loses that subnet's part to the subnet route
//     (warning). Externals' subnets are link networks and are not checked.
//   - Stateful pools may overlap only when they are the same pool of the
//     same VPC (one allocator, shared by its peerings, the fourth use case).
//   - An `as` on an external side whose size differs from its ips gets the
//     explanation of the Peering document's third use case.
//   - VXLAN attachments need the Gateway's vtepIP and at least one remote
//     VTEP; a side without cidr/fromVPCSubnet, a `not` outside every cidr
//     and a router IP outside the subnets are warnings.
package validate

import (
	"fmt"

	"github.com/peergate/peergate/controlplane/manifest"
)

// Diagnostic is one warning or error about one object.
type Diagnostic struct {
	Source  manifest.Source
	Key     manifest.Key
	Field   string // field path, "spec.vpc-1.as[0]"; "" for the whole object
	Message string
}

// String renders "file:doc N: Kind/name: field: reason".
func (d Diagnostic) String() string {
	s := fmt.Sprintf("%s:doc %d: %s", d.Source.File, d.Source.Index, d.Key)
	if d.Field != "" {
		s += ": " + d.Field
	}
	return s + ": " + d.Message
}

// Validate checks c and returns all warnings and errors, sorted by source.
func Validate(c *manifest.Config) (warnings []Diagnostic, errs []Diagnostic) {
	_, warnings, errs = Check(c)
	return warnings, errs
}
