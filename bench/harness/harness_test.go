package harness

import (
	"strings"
	"testing"
)

func TestBenchmarkLinesAreParsedWithTheirCustomUnits(t *testing.T) {
	out := `goos: linux
BenchmarkLookup4/peergate-2 	12400900	       232.3 ns/op	        85.71 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkUpdate/bart-persist-2            	  161842	     41363 ns/op	   5638666 cpu-max-ns	 49243 p99-ns
BenchmarkPipelineVXLANNATSmallTable 1000 35.5 ns/op
PASS
`
	bs := ParseBench(strings.NewReader(out))
	tests := []struct {
		name, unit string
		want       float64
	}{
		{"Lookup4/peergate", "cpu-ns/op", 85.71},
		{"Lookup4/peergate", "allocs/op", 0},
		{"Update/bart-persist", "p99-ns", 49243},
		{"PipelineVXLANNATSmallTable", "ns/op", 35.5},
	}
	for _, tc := range tests {
		b, ok := bs[tc.name]
		if !ok {
			t.Fatalf("%s not parsed: %v", tc.name, bs)
		}
		if got := b.Metrics[tc.unit]; got != tc.want {
			t.Errorf("%s %s = %v, want %v", tc.name, tc.unit, got, tc.want)
		}
	}
}

func TestRatiosSayAboveOneWhenPeergateIsBetterAndTargetsAreJudged(t *testing.T) {
	tests := []struct {
		name      string
		f         Figure
		wantRatio float64
		wantMet   *bool
	}{
		{"faster lookup", Figure{Value: 50, RefValue: 100, LowerIsBetter: true, Target: &Target{Op: ">=", Bound: 2, OnRatio: true}}, 2, ptr(true)},
		{"slower lookup", Figure{Value: 100, RefValue: 50, LowerIsBetter: true, Target: &Target{Op: ">=", Bound: 2, OnRatio: true}}, 0.5, ptr(false)},
		{"more Mpps", Figure{Value: 6, RefValue: 12, Target: &Target{Op: ">=", Bound: 0.5, OnRatio: true}}, 0.5, ptr(true)},
		{"absolute bound", Figure{Value: 41, Target: &Target{Op: "<=", Bound: 40}}, 0, ptr(false)},
		{"no target", Figure{Value: 1, RefValue: 2}, 0.5, nil},
		{"reported figure", Figure{Value: 1.6, RefValue: 1.8, Target: &Target{Op: ">", Bound: 0}}, 0.889, ptr(true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Finish()
			if tc.f.Ratio != tc.wantRatio {
				t.Errorf("ratio %v, want %v", tc.f.Ratio, tc.wantRatio)
			}
			if (tc.f.Met == nil) != (tc.wantMet == nil) || tc.f.Met != nil && *tc.f.Met != *tc.wantMet {
				t.Errorf("met %v, want %v", tc.f.Met, tc.wantMet)
			}
		})
	}
}

func ptr(b bool) *bool { return &b }

func TestResultsRoundTripAndQuickRunsStayApart(t *testing.T) {
	dir := t.TempDir()
	for _, r := range []Result{
		{Scenario: "pipeline", Figures: []Figure{{Name: "x", Value: 1, RefValue: 2}}},
		{Scenario: "lpm"},
		{Scenario: "lpm", Quick: true},
	} {
		if _, err := r.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	full, err := ReadResults(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 2 || full[0].Scenario != "lpm" || full[1].Scenario != "pipeline" {
		t.Fatalf("full results %+v, want lpm then pipeline", full)
	}
	if full[1].Figures[0].Ratio != 0.5 {
		t.Errorf("ratio not filled on write: %+v", full[1].Figures[0])
	}
	quick, _ := ReadResults(dir, true)
	if len(quick) != 1 || !quick[0].Quick {
		t.Fatalf("quick results %+v", quick)
	}
}

func TestTheLPMSummaryGivesPeergatesColumn(t *testing.T) {
	out := "PASS\n\nsummary (lower is better; ratio = best bart / peergate)\nbenchmark              unit         peergate    bart-fast         bart\nLookup4Batch           ns/addr         204.0            -            -        -\nLookup4Batch           cpu-ns/addr         84.5            -            -        -\n"
	if got := lpmSummary([]byte(out))["Lookup4Batch cpu-ns/addr"]; got != 84.5 {
		t.Fatalf("Lookup4Batch cpu-ns/addr = %v, want 84.5", got)
	}
}

func TestBGPLatencyLinesAreFound(t *testing.T) {
	log := `    gobgp_test.go:338: BGP update -> route live in the dataplane agent (3 complete tables, 109 deltas received in all), 100 updates (announce+withdraw): p50 9.03ms, p90 13.8ms, p99 17.59ms, max 17.59ms
    fulltable_test.go:199: session enabled -> generation 15 with all 1062046 prefixes live in the dataplane agent: 39.702s (15 generations received in all)
    fulltable_test.go:222: session up 1.269s after enabling it; session up -> full table live: 13.063s; controlplane CPU time from enable to live: 20.65s (load average 1.18 1.21 1.20)
    fulltable_test.go:203: controlplane RSS: 21 MiB before, 2322 MiB with the full table (peak 2580 MiB): 2272 bytes per route beyond the empty process
    fulltable_test.go:307: gobgp alone live heap: 1 MiB before, 384 MiB with the full table: 378 bytes per route; held by the controlplane beyond gobgp's RIB: 270 bytes per route
    fulltable_test.go:300: with the full table held, one update -> live in the dataplane agent (30 deltas, 0 complete tables): p50 4.2ms, p90 31ms, p99 1m4.9s, max 1m4.9s over 30 updates`
	if m := reUpdate.FindStringSubmatch(log); m == nil || ms(m[3]) != 17.59 {
		t.Errorf("single update p99: %q", m)
	}
	if m := reFullLive.FindStringSubmatch(log); m == nil || ms(m[1]) != 39702 {
		t.Errorf("full table live: %q", m)
	}
	if m := reUpToLive.FindStringSubmatch(log); m == nil || ms(m[1]) != 13063 {
		t.Errorf("session up to full table live: %q", m)
	}
	if m := reBytesRoute.FindStringSubmatch(log); m == nil || m[1] != "2272" {
		t.Errorf("bytes per route: %q", m)
	}
	if m := reHeldRoute.FindStringSubmatch(log); m == nil || m[1] != "270" {
		t.Errorf("live heap beyond gobgp per route: %q", m)
	}
	if m := reFullUpdate.FindStringSubmatch(log); m == nil || ms(m[1]) != 4.2 || ms(m[3]) != 64900 {
		t.Errorf("full-table update p50, p99: %q", m)
	}
}

func TestDPDKScalingFiguresAreReportedBesideTestpmdsAndSayWhenTheyAreLowerBounds(t *testing.T) {
	runs := []dpdkRun{
		{Name: "testpmd io", Mpps: 10, Workers: 1, Cores: []int{1}},
		{Name: "peergate forward (io)", Mpps: 8, Workers: 1, Cores: []int{1}},
		{Name: "testpmd io (2 cores)", Mpps: 16, Workers: 2, Cores: []int{1, 0}, OneCore: "testpmd io", Scaling: 1.6, BestScaling: 1.7, SharesMainCPU: true},
		{Name: "peergate forward (io, 2 workers)", Mpps: 14, Workers: 2, Cores: []int{1, 0}, OneCore: "peergate forward (io)", Scaling: 1.75, BestScaling: 1.8, SharesMainCPU: true, CPUs: 0.95, OneCoreCPUs: 0.5},
	}
	r := Result{Machine: Machine{Cores: 2}}
	dpdkScaling(&r, runs, "cmd")
	var scaling *Figure
	for i, f := range r.Figures {
		if f.Name == "peergate forward (io, 2 workers) scaling" {
			scaling = &r.Figures[i]
		}
	}
	if len(r.Figures) != 2 || scaling == nil {
		t.Fatalf("figures %+v, want the 2-worker Mpps and its scaling ratio", r.Figures)
	}
	scaling.Finish()
	if scaling.Value != 1.75 || scaling.RefValue != 1.6 || scaling.Met == nil || !*scaling.Met {
		t.Errorf("scaling figure %+v, want 1.75 beside testpmd's 1.6, target met", *scaling)
	}
	notes := strings.Join(r.Notes, " ")
	for _, want := range []string{"lower bounds", "testpmd io (2 cores) 1.70", "peergate forward (io, 2 workers) 0.50 → 0.95"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes do not say %q: %q", want, notes)
		}
	}

	r = Result{}
	dpdkScaling(&r, runs[:2], "cmd")
	if len(r.Figures) != 0 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "not measured") {
		t.Errorf("one-core runs only: figures %+v notes %q", r.Figures, r.Notes)
	}
}
