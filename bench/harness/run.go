package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Options select what Run runs.
type Options struct {
	Quick   bool
	Only    []string // scenario names; empty: all (quick: the InQuick ones)
	Results string   // directory of the JSON results
}

// Run runs the selected scenarios one after the other (never in parallel:
// they measure the same cores) and writes one result each. It returns the
// results and an error naming every scenario that failed; skipped scenarios
// are not failures.
func Run(ctx context.Context, e *Env, o Options) ([]Result, error) {
	tmp, err := os.MkdirTemp("", "pgharness")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	e.Tmp = tmp
	commit, dirty := Commit(e.Root)
	var out []Result
	var failed []string
	for _, s := range Scenarios() {
		switch {
		case len(o.Only) > 0 && !slices.Contains(o.Only, s.Name):
			continue
		case len(o.Only) == 0 && o.Quick && !s.InQuick:
			continue
		}
		r := Result{Scenario: s.Name, Title: s.Title, Issue: s.Issue, Quick: o.Quick, Started: time.Now().UTC(),
			Machine: ThisMachine(), Commit: commit, Dirty: dirty}
		e.Machine = r.Machine
		fmt.Fprintf(e.Log, "=== scenario %s: %s\n", s.Name, s.Title)
		err := s.Run(ctx, e, &r)
		r.Seconds = time.Since(r.Started).Round(time.Millisecond).Seconds()
		switch {
		case errors.Is(err, ErrSkip):
			r.Skipped = err.Error()
		case err != nil:
			r.Error = err.Error()
			failed = append(failed, s.Name+": "+err.Error())
		}
		p, werr := r.Write(o.Results)
		if werr != nil {
			return out, werr
		}
		fmt.Fprintf(e.Log, "=== scenario %s: %d figures in %.0f s -> %s %s%s\n", s.Name, len(r.Figures), r.Seconds, p, r.Skipped, r.Error)
		out = append(out, r)
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("scenarios failed: %v", failed)
	}
	return out, nil
}
