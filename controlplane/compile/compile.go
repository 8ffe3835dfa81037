// Package compile turns a validated manifest.Config, plus routes learned
// from BGP for external VPCs, into the dataplane's tables
// (proto/tables/v1.Tables). It owns the meaning of the configuration; it
// does no I/O beyond reading manifest files in Files, and knows nothing of
// gRPC or the dataplane's lookup structures.
package compile

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// LearnedRoute is one route an external VPC's BGP neighbour advertised.
type LearnedRoute struct {
	Prefix    netip.Prefix
	NextHop   netip.Addr
	MED       uint32
	Neighbor  string // neighbour address
	ASPathLen int
}

// Learned maps an external VPC's name to the routes its BGP neighbours
// advertised.
type Learned map[string][]LearnedRoute

// Compile validates c and compiles it with the learned routes. When
// validation finds errors, it returns them as diagnostics and an error that
// wraps them all; warnings are returned either way.
func Compile(c *manifest.Config, learned Learned) (*tablesv1.Tables, []validate.Diagnostic, error) {
	m, warns, errs := validate.Check(c)
	if len(errs) > 0 {
		return nil, append(warns, errs...), diagnosticsError(errs)
	}
	t, err := build(m, learned)
	if err != nil {
		return nil, warns, err
	}
	return t, warns, nil
}

// Files loads the manifests at paths (files or directories) and compiles
// them without learned routes.
func Files(paths ...string) (*tablesv1.Tables, []validate.Diagnostic, error) {
	objs, err := manifest.LoadPaths(paths...)
	if err != nil {
		return nil, nil, err
	}
	return Compile(manifest.NewConfig(objs), nil)
}

func diagnosticsError(ds []validate.Diagnostic) error {
	errs := make([]error, len(ds))
	for i, d := range ds {
		errs[i] = errors.New(d.String())
	}
	return fmt.Errorf("invalid configuration (%d errors): %w", len(ds), errors.Join(errs...))
}
