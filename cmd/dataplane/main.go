// Command dataplane is peergate's packet-processing process. Subcommands:
//
//	dataplane run --controlplane ADDR [--eal "ARGS"] [--workers N] [--tls-cert ...] [--keep-caps LIST]
//	dataplane replay -f MANIFEST... --in PORT=FILE.pcap [--in ...] --out-dir DIR
//
// run forwards on DPDK ports with the tables the controlplane pushes; it
// first drops every capability DPDK does not need (caps.go) by
// re-executing itself, so only the process entry point may do it.
//
// replay compiles the manifests, feeds the pcaps through the same pipeline
// the DPDK workers run, writes what the gateway sends to DIR/<port>.pcap and
// prints a JSON report (counters per port and per drop reason).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. Add new modes (e.g. `run` over DPDK) to
// commands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"replay": {name: "replay", summary: "run the pipeline over pcap files", run: runReplay},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			// "dataplane help run" is "dataplane run --help".
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "dataplane help: unknown command %q\n", args[1])
				usage(stderr)
				return 2
			}
			if err := c.run(ctx, []string{"--help"}, stdout, stderr); err != nil {
				return 1
			}
			return 0
		}
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "dataplane: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "dataplane %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `dataplane - packet-processing process of the peergate VPC peering gateway

Usage:
  dataplane run --controlplane ADDR [--eal "ARGS"] [--workers N] [flags]
  dataplane replay -f MANIFEST... --in PORT=FILE.pcap [--in ...] --out-dir DIR
  dataplane help COMMAND    (or dataplane COMMAND --help): a command's help and flags

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
}

// printHelp writes a command's help text and its flags to w.
func printHelp(w io.Writer, text string, fs *flag.FlagSet) {
	fmt.Fprint(w, text)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
