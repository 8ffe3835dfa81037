// Command gwctl is peergate's command line: it validates and compiles
// manifests offline, and applies, deletes and inspects the configuration
// of a running controlplane over its gRPC API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

const (
	defaultServer = "unix:///run/peergate/controlplane.sock"
	serverEnv     = "PEERGATE_SERVER"
	// maxResponse bounds what gwctl accepts from the server: complete tables
	// with a full Internet table of learned routes run to hundreds of MB.
	maxResponse = 1 << 30
)

const mainUsage = `gwctl - command line of the peergate VPC peering gateway

Usage:
  gwctl [--server ADDR] [--timeout DURATION] [--tls-cert FILE --tls-key FILE --tls-ca FILE] COMMAND [flags] [args]

Offline (no controlplane needed):
  validate -f PATH...                   check manifests; warnings and errors on stderr
  compile  -f PATH... [-o FMT] [--dump] print the dataplane tables the manifests compile to

Against a controlplane (--server):
  apply    -f PATH... [--dry-run] [-o text|json]
           apply manifests, all or nothing
  delete   -f PATH... | KIND NAME... [--dry-run] [-o text|json]
           delete objects
  get      vpcs|peerings|routes [VPC]|bgp [VPC]|objects [KIND]|tables|status|flows [-o FMT]
           show the configuration, routes, BGP, tables, dataplanes or NAT sessions
  stats    [--dataplane ID] [-o table|json|yaml]
           counters pushed by the dataplanes

  help [COMMAND]                        a command's help, its flags and examples

FMT is table (the default), json or yaml. --timeout limits the whole command
(default 30s).

PATH is a manifest file, a directory (its *.yaml and *.yml files) or - for
standard input. ADDR is unix:///path or host:port; default $PEERGATE_SERVER,
else ` + defaultServer + `.

A controlplane on host:port with mutual TLS (its --tls-cert/--tls-key/
--tls-ca) serves only clients with a certificate of its CA: give gwctl one
with --tls-cert and --tls-key, and the CA that signed the controlplane's
certificate with --tls-ca (or $PEERGATE_TLS_CERT, $PEERGATE_TLS_KEY,
$PEERGATE_TLS_CA); --tls-server-name NAME if that certificate does not name
the host of ADDR. A unix socket needs no TLS: its file mode (0600) admits
its owner and root.

Exit status: 0 success, 1 invalid configuration or failed request, 2 usage error.
`

// command is one gwctl subcommand.
type command struct {
	name    string
	summary string
	usage   string // after "gwctl NAME "
	help    string
	// flags registers the command's own flags on fs.
	flags func(fs *flag.FlagSet, o *opts)
	run   func(ctx context.Context, o *opts, args []string) error
	// remote commands dial the server.
	remote bool
}

// opts holds every flag; each command registers the ones it uses.
type opts struct {
	server  string
	tls     tlsOpts
	timeout time.Duration
	files   listFlag
	output  string
	dryRun  bool
	dpID    string
	// get bgp --advertised
	advertised bool
	// get flows --vpc, --limit (flows.go)
	flows flowsOpts

	stdout, stderr io.Writer
	stdin          io.Reader
	client         apiv1.GatewayClient
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// usageError makes gwctl exit with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// invalidError makes gwctl exit 1 without printing more: the command has
// already printed every diagnostic.
var errInvalid = errors.New("invalid")

func commands() []*command {
	return []*command{validateCmd(), compileCmd(), applyCmd(), deleteCmd(), getCmd(), statsCmd()}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := &opts{stdout: stdout, stderr: stderr, stdin: stdin, tls: tlsFromEnv()}
	global := flag.NewFlagSet("gwctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	globalFlags(global, o)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mainUsage)
			return 0
		}
		fmt.Fprintf(stderr, "gwctl: %v\n\n%s", err, mainUsage)
		return 2
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return 2
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return help(o, rest)
	}
	cmd := find(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "gwctl: unknown command %q\n\n%s", name, mainUsage)
		return 2
	}
	fs := flag.NewFlagSet("gwctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	globalFlags(fs, o)
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	args, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, cmd, fs)
			return 0
		}
		fmt.Fprintf(stderr, "gwctl %s: %v\n\n", cmd.name, err)
		printCommandHelp(stderr, cmd, fs)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if cmd.remote {
		creds, err := transportCredentials(o)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "gwctl %s: %v\n\n", cmd.name, err)
			printCommandHelp(stderr, cmd, fs)
			return 2
		}
		if err != nil {
			fmt.Fprintf(stderr, "gwctl %s: %v\n", cmd.name, err)
			return 1
		}
		cc, err := grpc.NewClient(o.server,
			grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponse)))
		if err != nil {
			fmt.Fprintf(stderr, "gwctl: server %q: %v\n", o.server, err)
			return 2
		}
		defer cc.Close()
		o.client = apiv1.NewGatewayClient(cc)
	}
	err = cmd.run(ctx, o, args)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gwctl %s: %v\n\n", cmd.name, err)
		printCommandHelp(stderr, cmd, fs)
		return 2
	case errors.Is(err, errInvalid):
		return 1
	default:
		fmt.Fprintf(stderr, "gwctl %s: %s\n", cmd.name, describe(err, o))
		return 1
	}
}

func globalFlags(fs *flag.FlagSet, o *opts) {
	// Registered on the main flag set and again on each command's, so they
	// may stand before or after the command; the second registration keeps
	// what the first parsed.
	if o.server == "" {
		o.server = defaultServer
		if v := os.Getenv(serverEnv); v != "" {
			o.server = v
		}
	}
	if o.timeout == 0 {
		o.timeout = 30 * time.Second
	}
	fs.StringVar(&o.server, "server", o.server, "`ADDR` of the controlplane: unix:///path or host:port (env "+serverEnv+")")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "time limit of the whole command")
	tlsFlags(fs, o)
}

// parseInterspersed parses flags anywhere among the arguments, as kubectl
// does ("gwctl get routes vpc-1 -o json").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func find(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func help(o *opts, args []string) int {
	if len(args) == 0 || args[0] == "help" {
		fmt.Fprint(o.stdout, mainUsage)
		return 0
	}
	cmd := find(args[0])
	if cmd == nil {
		fmt.Fprintf(o.stderr, "gwctl help: unknown command %q\n\n%s", args[0], mainUsage)
		return 2
	}
	fs := flag.NewFlagSet("gwctl "+cmd.name, flag.ContinueOnError)
	globalFlags(fs, o)
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	printCommandHelp(o.stdout, cmd, fs)
	return 0
}

func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "gwctl %s - %s\n\nUsage:\n  gwctl %s %s\n\n%s\nFlags:\n", cmd.name, cmd.summary, cmd.name, cmd.usage, cmd.help)
	printFlags(w, fs)
}

// printFlags lists flags the way they are documented, with two dashes.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name
		}
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// describe turns a gRPC error into a sentence an operator can act on.
func describe(err error, o *opts) string {
	server := o.server
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		if hint := tlsHint(st.Message(), o); hint != "" {
			return fmt.Sprintf("cannot talk to the controlplane at %s: %s", server, hint)
		}
		return fmt.Sprintf("cannot reach the controlplane at %s: %s (is it running? set --server or %s)", server, st.Message(), serverEnv)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("no answer from %s in time (--timeout): %s", server, st.Message())
	case codes.ResourceExhausted:
		return "request too large for the controlplane (16 MiB per request): " + st.Message()
	case codes.Unimplemented:
		return fmt.Sprintf("%s does not serve the peergate API: %s", server, st.Message())
	}
	return strings.ToLower(st.Code().String()[:1]) + st.Code().String()[1:] + ": " + st.Message()
}

func outputFlag(fs *flag.FlagSet, o *opts, formats ...string) {
	fs.StringVar(&o.output, "o", formats[0], "output `FORMAT`: "+strings.Join(formats, ", "))
}

func checkOutput(o *opts, formats ...string) error {
	if !slices.Contains(formats, o.output) {
		return usageError{fmt.Sprintf("-o %q: want one of %s", o.output, strings.Join(formats, ", "))}
	}
	return nil
}

func filesFlag(fs *flag.FlagSet, o *opts) {
	fs.Var(&o.files, "f", "manifest `PATH`: a file, a directory (its *.yaml, *.yml files) or - for stdin (repeatable)")
}
