package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peergate/peergate/bench/harness"
)

func TestReportShowsEveryFigureWithItsCommandTargetAndChart(t *testing.T) {
	dir := t.TempDir()
	r := harness.Result{Scenario: "pipeline", Title: "Pipeline", Issue: 4, Commands: []string{"go test -bench . ./dataplane/pipeline/"},
		Machine: harness.Machine{Hostname: "box", CPUModel: "AMD EPYC", Cores: 2, TSCMHz: 2596},
		Figures: []harness.Figure{{Group: "ns", Name: "small table", Unit: "cpu-ns/pkt", Value: 35, RefValue: 10, Reference: "macswap", LowerIsBetter: true,
			Target: &harness.Target{Text: "under 40 ns", Op: "<=", Bound: 40}}}}
	if _, err := r.Write(filepath.Join(dir, "results")); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, "README.md")
	if err := Render(filepath.Join(dir, "results"), readme); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(readme)
	for _, want := range []string{"AMD EPYC", "go test -bench . ./dataplane/pipeline/", "| small table | 35.0 cpu-ns/pkt | macswap: 10.0 | 0.29x | under 40 ns | yes |", "charts/pipeline-ns-cpu-ns-pkt.svg"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("report lacks %q:\n%s", want, raw)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "charts", "pipeline-ns-cpu-ns-pkt.svg")); err != nil {
		t.Error(err)
	}
}
