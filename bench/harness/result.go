// Package harness runs peergate's benchmark scenarios beside their
// references and records each scenario as one JSON result: what was
// measured, the reference measured in the same run, the ratio, the target of
// the issue that asked for the figure, the machine and the command that
// reproduces it. bench/report renders the results; nothing in the report is
// typed by hand.
package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Result is one scenario's run, written to bench/results/<scenario>.json.
type Result struct {
	Scenario string    `json:"scenario"`
	Title    string    `json:"title"`
	Issue    int       `json:"issue"` // the issue whose targets the figures are held to
	Quick    bool      `json:"quick"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Machine  Machine   `json:"machine"`
	Commit   string    `json:"commit"`
	Dirty    bool      `json:"dirty"` // uncommitted changes in the tree at run time
	Commands []string  `json:"commands"`
	Figures  []Figure  `json:"figures"`
	Notes    []string  `json:"notes,omitempty"`
	// Skipped says why the scenario could not run here (no root, no DPDK, ...).
	Skipped string `json:"skipped,omitempty"`
	// Error is set when the scenario ran and failed (bench-quick's loss check).
	Error string `json:"error,omitempty"`
}

// Figure is one measured value beside its reference.
type Figure struct {
	Group string  `json:"group,omitempty"` // chart the figure belongs to
	Name  string  `json:"name"`
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
	// LowerIsBetter orients Ratio: above 1 means peergate is better.
	LowerIsBetter bool `json:"lower_is_better"`
	// Reference is what Value is compared with, measured in the same run
	// unless RefNote says otherwise (a published figure converted to this
	// machine's clock, for instance).
	Reference string  `json:"reference,omitempty"`
	RefValue  float64 `json:"ref_value,omitempty"`
	RefNote   string  `json:"ref_note,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
	Target    *Target `json:"target,omitempty"`
	Met       *bool   `json:"met,omitempty"`
	Command   string  `json:"command"`
}

// Target is an issue's goal for a figure: Value (or Ratio, when OnRatio)
// compared with Bound by Op ("<=", ">=" or ">"; "> 0" on the value is how a
// figure the issue only asks to be reported is met).
type Target struct {
	Text    string  `json:"text"`
	Op      string  `json:"op"`
	Bound   float64 `json:"bound"`
	OnRatio bool    `json:"on_ratio,omitempty"`
}

// Finish fills Ratio and Met from the values, reference and target.
func (f *Figure) Finish() {
	if f.RefValue > 0 && f.Value > 0 {
		if f.LowerIsBetter {
			f.Ratio = f.RefValue / f.Value
		} else {
			f.Ratio = f.Value / f.RefValue
		}
		f.Ratio = math.Round(f.Ratio*1000) / 1000
	}
	f.Met = nil
	if f.Target == nil {
		return
	}
	v := f.Value
	if f.Target.OnRatio {
		if f.Ratio == 0 {
			return
		}
		v = f.Ratio
	}
	var met bool
	switch f.Target.Op {
	case "<=":
		met = v <= f.Target.Bound
	case ">=":
		met = v >= f.Target.Bound
	case ">":
		met = v > f.Target.Bound
	default:
		return
	}
	f.Met = &met
}

// Write stores r as dir/<scenario>.json (quick runs as <scenario>.quick.json,
// so a CI run never replaces the committed full run).
func (r *Result) Write(dir string) (string, error) {
	for i := range r.Figures {
		r.Figures[i].Finish()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results dir: %w", err)
	}
	name := r.Scenario + ".json"
	if r.Quick {
		name = r.Scenario + ".quick.json"
	}
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false) // commands hold "&&"
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return "", fmt.Errorf("result %s: %w", r.Scenario, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, raw.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("result %s: %w", r.Scenario, err)
	}
	return p, nil
}

// ReadResults loads every full-run result of dir (not the .quick.json ones
// unless quick), in scenario order.
func ReadResults(dir string, quick bool) ([]Result, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, p := range paths {
		isQuick := filepath.Ext(p[:len(p)-len(".json")]) == ".quick"
		if isQuick != quick {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return order(out[i].Scenario) < order(out[j].Scenario) })
	return out, nil
}

// order is the report's scenario order: the issue's numbering.
func order(s string) int {
	for i, n := range ScenarioNames {
		if n == s {
			return i
		}
	}
	return len(ScenarioNames)
}
