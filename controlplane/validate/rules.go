package validate

import (
	"cmp"
	"slices"

	"github.com/peergate/peergate/controlplane/manifest"
)

type validator struct {
	c     *manifest.Config
	warns []Diagnostic
	errs  []Diagnostic
}

func newValidator(c *manifest.Config) *validator { return &validator{c: c} }

func (v *validator) run() {}

func (v *validator) sorted() ([]Diagnostic, []Diagnostic) {
	sortD(v.warns)
	sortD(v.errs)
	return v.warns, v.errs
}

func sortD(ds []Diagnostic) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Source.File, b.Source.File), cmp.Compare(a.Source.Index, b.Source.Index),
			cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
}
