package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// document is the content of one file named on the command line.
type document struct {
	file string
	data []byte
}

// readPaths reads the -f files in order; directories give their *.yaml
// and *.yml files in name order (not recursive), "-" standard input.
func readPaths(o *opts, args []string) ([]document, error) {
	paths := append(slices.Clone(o.files), args...)
	if len(paths) == 0 {
		return nil, usageError{"no manifests given: use -f FILE|DIR|-"}
	}
	var docs []document
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(o.stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			docs = append(docs, document{"<stdin>", data})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read manifests: %w", err)
		}
		files := []string{p}
		if fi.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("read manifests: %w", err)
			}
			files = files[:0]
			for _, e := range ents {
				if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
					files = append(files, filepath.Join(p, n))
				}
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("read manifests: directory %s holds no *.yaml or *.yml file", p)
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read manifests: %w", err)
			}
			docs = append(docs, document{f, data})
		}
	}
	return docs, nil
}

// parseAll parses every document, printing every parse error.
func parseAll(o *opts, docs []document) ([]manifest.Object, error) {
	var objs []manifest.Object
	failed := false
	for _, d := range docs {
		got, err := manifest.Parse(d.file, d.data)
		if err != nil {
			printJoined(o.stderr, "error: ", err)
			failed = true
			continue
		}
		objs = append(objs, got...)
	}
	if failed {
		return nil, errInvalid
	}
	return objs, nil
}

func printJoined(w io.Writer, prefix string, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			printJoined(w, prefix, e)
		}
		return
	}
	fmt.Fprintf(w, "%s%s\n", prefix, err)
}

// check loads, validates and compiles the manifests offline, printing
// warnings and errors on stderr.
func check(o *opts, args []string) (*tablesv1.Tables, int, error) {
	docs, err := readPaths(o, args)
	if err != nil {
		return nil, 0, err
	}
	objs, err := parseAll(o, docs)
	if err != nil {
		return nil, 0, err
	}
	cfg := manifest.NewConfig(objs)
	warns, errs := validate.Validate(cfg)
	for _, w := range warns {
		fmt.Fprintf(o.stderr, "warning: %s\n", w)
	}
	for _, e := range errs {
		fmt.Fprintf(o.stderr, "error: %s\n", e)
	}
	if len(errs) > 0 {
		fmt.Fprintf(o.stderr, "invalid: %s, %s\n", plural(len(errs), "error"), plural(len(warns), "warning"))
		return nil, len(warns), errInvalid
	}
	t, _, err := compile.Compile(cfg, nil)
	if err != nil {
		printJoined(o.stderr, "error: ", err)
		return nil, len(warns), errInvalid
	}
	return t, len(warns), nil
}

func validateCmd() *command {
	return &command{
		name:    "validate",
		summary: "check manifests offline",
		usage:   "-f PATH... [PATH...]",
		help: `Parses, validates and compiles the manifests as the controlplane would,
without contacting it. Every warning and error is printed on stderr, each
naming file, document index, object, field and reason. Exit status 0 when
the manifests are valid (warnings allowed), 1 when any error was found.

The files are checked on their own: use "gwctl apply --dry-run" to check
them merged with a controlplane's running configuration.

Example:
  gwctl validate -f testdata/manifests/kube-ovn-vpc-peering/
`,
		flags: func(fs *flag.FlagSet, o *opts) { filesFlag(fs, o) },
		run: func(_ context.Context, o *opts, args []string) error {
			t, nwarn, err := check(o, args)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "valid: %s, %s\n", plural(len(t.GetVpcs()), "VPC"), plural(nwarn, "warning"))
			return nil
		},
	}
}

func compileCmd() *command {
	return &command{
		name:    "compile",
		summary: "print the tables manifests compile to, offline",
		usage:   "-f PATH... [-o table|json|yaml]",
		help: `Validates and compiles the manifests without contacting a controlplane and
prints the dataplane tables: per VPC its attachment, routes (with their
actions: forward, deliver, drop, local; NAT, filters, ECMP groups) and local
routes, then the NAT tables, NAT pools and filters they refer to. JSON and
YAML print the Tables message of proto/tables/v1 as the dataplane gets it.
Warnings and errors go to stderr; exit status 1 when invalid.

Example:
  gwctl compile -f testdata/manifests/peering-api-1-static-nat/ -o yaml
`,
		flags: func(fs *flag.FlagSet, o *opts) {
			filesFlag(fs, o)
			outputFlag(fs, o, "table", "json", "yaml")
			// "compile --dump" is the DESIGN.md spelling; it is the default.
			fs.Bool("dump", true, "print the tables (the default; kept for DESIGN.md's \"compile --dump\")")
		},
		run: func(_ context.Context, o *opts, args []string) error {
			if err := checkOutput(o, "table", "json", "yaml"); err != nil {
				return err
			}
			t, _, err := check(o, args)
			if err != nil {
				return err
			}
			return printTables(o, t)
		},
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
