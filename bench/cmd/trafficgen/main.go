// Command trafficgen writes the benchmark scenarios' pcaps (bench/trafficgen's
// catalog) into a directory, with an index of what each holds.
//
//	go run ./bench/cmd/trafficgen -out bench/pcap [-only NAME,...]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peergate/peergate/bench/trafficgen"
)

func main() {
	out := flag.String("out", "bench/pcap", "directory for the pcaps")
	only := flag.String("only", "", "comma-separated names (default: all)")
	list := flag.Bool("list", false, "list the catalog and exit")
	flag.Parse()
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	var index strings.Builder
	for _, s := range trafficgen.Catalog() {
		if len(names) > 0 && !slices.Contains(names, s.Name) {
			continue
		}
		fmt.Fprintf(&index, "%s.pcap\t%d packets, seed %d: %s\n", s.Name, s.Packets, s.Seed, s.Comment)
		if *list {
			continue
		}
		if err := trafficgen.Write(filepath.Join(*out, s.Name+".pcap"), s); err != nil {
			fail(err)
		}
	}
	fmt.Print(index.String())
	if !*list {
		if err := os.WriteFile(filepath.Join(*out, "INDEX.txt"), []byte(index.String()), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "trafficgen:", err)
	os.Exit(1)
}
