package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/dataplane/replay"
)

const replayHelp = `usage: dataplane replay -f MANIFEST... --in PORT=FILE.pcap [--in PORT=FILE.pcap ...] --out-dir DIR

Compiles the manifests (files or directories, as gwctl compile does) and
feeds the packets of the pcap files through the same pipeline the DPDK
workers run, as received on those ports (by name or id), interleaved in
timestamp order. Everything the gateway sends (forwarded packets, ARP and
ND answers and requests, ICMP errors) is written to DIR/<port>.pcap, and
one JSON object with the counters per port and per drop reason is printed
on stdout. Needs no DPDK and no privileges.

Exit status: 0 success, 1 bad flags, bad manifests or unreadable files.

Flags:
`

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller prints parse errors; --help goes to stdout
	var manifests, ins multiFlag
	fs.Var(&manifests, "f", "manifest file or directory (repeatable)")
	fs.Var(&ins, "in", "PORT=FILE.pcap: packets received on PORT (name or id; repeatable)")
	outDir := fs.String("out-dir", "", "directory for the <port>.pcap files the gateway sends")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, replayHelp, fs)
			return nil
		}
		return fmt.Errorf("%w (dataplane replay --help lists the flags)", err)
	}
	if len(manifests) == 0 {
		return errors.New("no manifests: give -f MANIFEST")
	}
	if len(ins) == 0 {
		return errors.New("no input: give --in PORT=FILE.pcap")
	}
	if *outDir == "" {
		return errors.New("no output directory: give --out-dir DIR")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	tables, diags, err := compile.Files(manifests...)
	for _, d := range diags {
		fmt.Fprintln(stderr, d.String())
	}
	if err != nil {
		return fmt.Errorf("compile manifests: %w", err)
	}
	var inputs []replay.Input
	for _, s := range ins {
		in, err := replay.ParseInput(s)
		if err != nil {
			return err
		}
		inputs = append(inputs, in)
	}
	packets, err := replay.ReadInputs(tables, inputs)
	if err != nil {
		return err
	}
	sent, report, err := replay.Run(tables, packets, replay.Options{})
	if err != nil {
		return fmt.Errorf("build tables: %w", err)
	}
	if err := replay.WriteOutputs(tables, sent, *outDir); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}
