// Package validate judges a manifest.Config as a whole: syntax of addresses
// and prefixes, references between objects (VPCs, subnets, ports), and the
// rules that make a configuration compilable without ambiguity (peering
// pairs, NAT sizes and pools, attachments). It reports every problem at
// once and changes nothing; package compile refuses a Config with errors.
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
