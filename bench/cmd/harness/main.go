// Command harness runs peergate's benchmark scenarios beside their
// references, writes one JSON result per scenario to bench/results and
// renders bench/README.md from the results.
//
//	go run ./bench/cmd/harness            # make bench: every scenario, then the report
//	go run ./bench/cmd/harness -quick     # make bench-quick: CI-sized, fails on unexplained loss
//	go run ./bench/cmd/harness -only lpm,pipeline
//	go run ./bench/cmd/harness -report    # only re-render the report from the JSON
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/peergate/peergate/bench/harness"
	"github.com/peergate/peergate/bench/report"
)

func main() {
	quick := flag.Bool("quick", false, "CI size (under 5 minutes): the pipeline and the af_packet replay, which fails on any unexplained loss; results go to *.quick.json and the report is not rewritten")
	only := flag.String("only", "", "comma-separated scenarios: "+strings.Join(harness.ScenarioNames, ","))
	results := flag.String("results", "bench/results", "directory of the JSON results")
	readme := flag.String("readme", "bench/README.md", "report to render from the full-run results")
	reportOnly := flag.Bool("report", false, "render the report from the existing results and exit")
	logPath := flag.String("log", "", "also write every command's output to this file")
	verbose := flag.Bool("v", false, "print every command's output")
	flag.Parse()

	root, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		fail(fmt.Errorf("run from the repository root (no go.mod in %s)", root))
	}
	if *reportOnly {
		render(*results, *readme)
		return
	}
	var log io.Writer = io.Discard
	if *verbose {
		log = os.Stderr
	}
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		log = io.MultiWriter(log, f)
	}
	// Progress lines always reach stderr.
	log = progress{w: log}

	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &harness.Env{Runner: harness.Runner{Root: root, Log: log}, Quick: *quick}
	res, runErr := harness.Run(ctx, e, harness.Options{Quick: *quick, Only: names, Results: *results})
	for _, r := range res {
		status := "ok"
		switch {
		case r.Skipped != "":
			status = r.Skipped
		case r.Error != "":
			status = "FAILED: " + r.Error
		}
		fmt.Printf("%-13s %3d figures %6.0f s  %s\n", r.Scenario, len(r.Figures), r.Seconds, status)
		for _, f := range r.Figures {
			met := ""
			if f.Met != nil {
				met = map[bool]string{true: "met", false: "NOT met"}[*f.Met]
			}
			ref := ""
			if f.Reference != "" {
				ref = fmt.Sprintf("  vs %s %.4g (ratio %.3g)", f.Reference, f.RefValue, f.Ratio)
			}
			fmt.Printf("    %-62s %10.4g %-18s%s %s\n", f.Name, f.Value, f.Unit, ref, met)
		}
	}
	if !*quick {
		render(*results, *readme)
	}
	if runErr != nil {
		fail(runErr)
	}
}

func render(results, readme string) {
	if err := report.Render(results, readme); err != nil {
		fail(err)
	}
	fmt.Println("report:", readme)
}

// progress copies the harness's "===" lines to stderr whatever the log is.
type progress struct{ w io.Writer }

func (p progress) Write(b []byte) (int, error) {
	if strings.HasPrefix(string(b), "=== scenario") {
		os.Stderr.Write(b)
	}
	return p.w.Write(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "harness:", err)
	os.Exit(1)
}
