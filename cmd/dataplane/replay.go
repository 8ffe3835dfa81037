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

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var manifests, ins multiFlag
	fs.Var(&manifests, "f", "manifest file or directory (repeatable)")
	fs.Var(&ins, "in", "PORT=FILE.pcap: packets received on PORT (name or id; repeatable)")
	outDir := fs.String("out-dir", "", "directory for the <port>.pcap files the gateway sends")
	if err := fs.Parse(args); err != nil {
		return err
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
