// Command controlplane is peergate's control plane daemon: it owns the
// desired configuration, validates and compiles it, persists every
// accepted configuration in its state directory, serves the orchestration
// API (gwctl) and pushes the compiled tables to every connected dataplane.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/peergate/peergate/controlplane/bgpsync"
	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/push"
	"github.com/peergate/peergate/controlplane/server"
	"github.com/peergate/peergate/controlplane/store"
	"github.com/peergate/peergate/internal/gcpause"
	"github.com/peergate/peergate/internal/metrics"
	"github.com/peergate/peergate/internal/tlsconfig"
)

const (
	defaultListen   = "unix:///run/peergate/controlplane.sock"
	defaultStateDir = "/var/lib/peergate"
	// shutdownGrace bounds a graceful stop: unary calls in flight finish,
	// then whatever remains is cut.
	shutdownGrace = 5 * time.Second
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

const usage = `controlplane - peergate control plane daemon

Usage:
  controlplane [--listen ADDR]... [--state-dir DIR] [--config PATH]... [--log-level LEVEL] [--log-format text|json]
               [--bgp-listen-port PORT] [--bgp-connect-retry DURATION]
               [--tls-cert FILE --tls-key FILE --tls-ca FILE | --insecure-tcp] [--metrics ADDR]
               [--pprof ADDR]

Owns the gateway's configuration: loads the configuration it persisted
last from --state-dir, applies the --config files and directories on top
(all or nothing: an invalid --config stops the start), serves the
orchestration API used by gwctl, and pushes compiled tables to every
dataplane that connects (dataplane --controlplane ADDR). Every accepted
change is written to the state directory before it goes live. One
controlplane owns a state directory at a time: a second one started on
the same directory exits at once.

ADDR is unix:///path/to.sock (the socket is created mode 0600; a stale
socket left by a crash is replaced) or host:port for TCP. --listen may be
given more than once, e.g. a unix socket for gwctl and a TCP address for
remote dataplanes. Both services are served on every address. Unix
sockets are guarded by their mode; TCP addresses use mutual TLS when
--tls-cert, --tls-key and --tls-ca are given (TLS 1.3; a client without a
certificate signed by --tls-ca is refused at the handshake). A TCP address
without them is refused at start unless --insecure-tcp is given (no
authentication at all; a lab only). --metrics ADDR serves Prometheus
metrics over HTTP; --pprof ADDR serves Go's runtime profiles (heap, CPU,
goroutines) for diagnosis, e.g. go tool pprof http://ADDR/debug/pprof/heap
(they show internal state: keep ADDR on loopback).

BGP: when the configuration has a Gateway with an ASN and an IPv4 router
ID, an embedded BGP speaker (gobgp) runs with that identity and opens a
session to every bgp.neighbors entry of each VPC with external: true;
sessions follow every apply. Routes the neighbours advertise are compiled
into the external VPCs' tables (filtered by each peering's ips/not, the
side's metric added to the MED); each external's neighbours are told what
its hosts reach through the gateway (its peers' exposed prefixes at their
NATed addresses, and transit routes learned from other externals). The
speaker connects out only: by default it does not listen
(--bgp-listen-port -1); give a port (179 needs root or
CAP_NET_BIND_SERVICE) to also accept sessions a neighbour opens.
gwctl get bgp shows the sessions.

SIGTERM or SIGINT stops it gracefully; dataplanes keep forwarding with
their last tables and reconnect when it is back.

Flags:
`

const example = `
Example:
  controlplane --listen unix:///run/peergate/controlplane.sock \
      --listen 127.0.0.1:7443 --state-dir /var/lib/peergate \
      --config /etc/peergate/manifests
`

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	var listens, configs listFlag
	fs.Var(&listens, "listen", "address to serve on: unix:///path or host:port (repeatable; default "+defaultListen+")")
	stateDir := fs.String("state-dir", defaultStateDir, "directory where the accepted configuration is persisted")
	fs.Var(&configs, "config", "manifest file or directory (*.yaml, *.yml) applied at start (repeatable)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	format := fs.String("log-format", "text", "log format: text or json")
	var bo bgpsync.Options
	bgpPort := fs.Int("bgp-listen-port", -1, "TCP port the BGP speaker accepts sessions on; -1 = do not listen (connect out only)")
	fs.DurationVar(&bo.ConnectRetry, "bgp-connect-retry", 5*time.Second, "pause between attempts to reach a BGP neighbour that is down")
	var sec security
	fs.StringVar(&sec.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. :9100; default: off)")
	fs.StringVar(&sec.pprof, "pprof", "", "serve Go's runtime profiles at http://ADDR/debug/pprof/ (e.g. 127.0.0.1:6060; default: off; they show internal state: keep them on loopback)")
	fs.StringVar(&sec.tls.Cert, "tls-cert", "", "PEM certificate of the API on TCP addresses (mutual TLS; with --tls-key and --tls-ca)")
	fs.StringVar(&sec.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&sec.tls.CA, "tls-ca", "", "PEM CA that signs the clients' certificates: a TCP client without one is refused")
	fs.BoolVar(&sec.insecureTCP, "insecure-tcp", false, "serve TCP addresses without TLS (anyone who reaches them may change the configuration; a lab only)")
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fmt.Fprint(w, example)
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(os.Stdout)
			return 0
		}
		fmt.Fprintf(os.Stderr, "controlplane: %v\n\n", err)
		printUsage(os.Stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "controlplane: unexpected arguments %q (see --help)\n", fs.Args())
		return 2
	}
	if len(listens) == 0 {
		listens = listFlag{defaultListen}
	}
	log, err := newLogger(*level, *format)
	if err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *bgpPort < -1 || *bgpPort > 65535 || *bgpPort == 0 {
		fmt.Fprintf(os.Stderr, "controlplane: --bgp-listen-port %d: want -1 or 1..65535\n", *bgpPort)
		return 2
	}
	bo.ListenPort, bo.Logger = int32(*bgpPort), log
	if err := serve(ctx, log, listens, *stateDir, configs, bo, sec); err != nil {
		log.Error("controlplane stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// security holds the flags of the API's transport and the metrics address.
type security struct {
	tls     tlsconfig.Files
	metrics string
	pprof   string
	// insecureTCP allows TCP addresses without mutual TLS; without it they
	// are refused at start, so an unauthenticated client gets nothing
	// unless the operator asked for it.
	insecureTCP bool
}

// checkTransport refuses a TCP address without mutual TLS unless
// --insecure-tcp says the operator means it.
func (sec security) checkTransport(listens []string) error {
	if sec.tls.Enabled() || sec.insecureTCP {
		return nil
	}
	for _, addr := range listens {
		if !strings.HasPrefix(addr, "unix:") {
			return fmt.Errorf("--listen %s: a TCP address needs mutual TLS (--tls-cert, --tls-key, --tls-ca); --insecure-tcp serves it without authentication", addr)
		}
	}
	return nil
}

func serve(ctx context.Context, log *slog.Logger, listens []string, stateDir string, configs []string, bo bgpsync.Options, sec security) error {
	if err := sec.checkTransport(listens); err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if sec.tls.Enabled() {
		var err error
		if tlsCfg, err = tlsconfig.Server(sec.tls); err != nil {
			return err
		}
	}
	st, err := store.Open(stateDir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	hub := push.New(log)
	var gc gcpause.Pauser
	srv, err := server.New(server.Options{Store: st, Hub: hub, Logger: log, AroundUpdate: gc.Around})
	if err != nil {
		return err
	}
	// Learned-route generations are saved in the background; a clean stop
	// lets the last one reach the disk (a crash loses only learned routes,
	// which the neighbours send again).
	defer srv.WaitSaved()
	if len(configs) > 0 {
		if err := applyConfig(log, srv, configs); err != nil {
			return err
		}
	}

	// The BGP glue follows the server's generations; it stops the speaker
	// (closing every session) when the daemon stops.
	bo.AroundFlush = gc.Around // the transfer's final changes too
	bo.DuringTransfer = gc.Transfer
	syncer := bgpsync.New(srv, bo)
	srv.SetBGP(syncer)
	bgpCtx, stopBGP := context.WithCancel(context.Background())
	bgpDone := make(chan struct{})
	go func() {
		defer close(bgpDone)
		_ = syncer.Run(bgpCtx)
	}()
	defer func() {
		stopBGP()
		<-bgpDone
	}()

	m := newCPMetrics(srv, hub, syncer)
	if sec.metrics != "" {
		reg, err := metrics.NewRegistry(m)
		if err != nil {
			return err
		}
		if _, err := metrics.Serve(ctx, sec.metrics, reg, log); err != nil {
			return err
		}
	}
	if sec.pprof != "" {
		if _, err := metrics.ServeProfiles(ctx, sec.pprof, log); err != nil {
			return err
		}
	}
	opts := append(srv.GRPCOptions(), grpc.ChainUnaryInterceptor(m.countApplies))
	// Unix sockets are guarded by their file mode; TCP addresses by mutual
	// TLS when configured (a second server, since credentials are per
	// server).
	g := grpc.NewServer(opts...)
	srv.Register(g)
	gs := []*grpc.Server{g}
	gTCP := g
	if tlsCfg != nil {
		gTCP = grpc.NewServer(append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))...)
		srv.Register(gTCP)
		gs = append(gs, gTCP)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, addr := range listens {
		ln, err := listen(addr)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		gl, mode := g, "unix socket mode 0600"
		if ln.Addr().Network() != "unix" {
			gl, mode = gTCP, "mutual TLS"
			if tlsCfg == nil {
				mode = "no authentication"
				log.Warn("--insecure-tcp: anyone who reaches this address may change the configuration", "address", listens[i])
			}
		}
		log.Info("serving", "address", listens[i], "security", mode, "state_dir", stateDir, "generation", srv.Generation())
		go func() { errc <- gl.Serve(ln) }()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		for _, g := range gs {
			g.Stop()
		}
		return fmt.Errorf("serve: %w", err)
	}
	srv.Shutdown()
	hub.Close()
	stopped := make(chan struct{})
	go func() {
		for _, g := range gs {
			g.GracefulStop()
		}
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		log.Warn("graceful stop timed out, closing remaining connections")
		for _, g := range gs {
			g.Stop()
		}
	}
	return nil
}

func applyConfig(log *slog.Logger, srv *server.Server, paths []string) error {
	objs, err := manifest.LoadPaths(paths...)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	res, err := srv.ApplyObjects(objs, false)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	for _, w := range res.Warnings {
		log.Warn("--config", "warning", w.GetText())
	}
	if !res.Accepted {
		for _, e := range res.Errors {
			log.Error("--config", "error", e.GetText())
		}
		return fmt.Errorf("--config %s: invalid configuration (%d errors), nothing applied", strings.Join(paths, " "), len(res.Errors))
	}
	log.Info("applied --config", "paths", paths, "objects", len(objs), "generation", res.Generation)
	return nil
}

// listen opens a unix socket (mode 0600) or a TCP listener.
func listen(addr string) (net.Listener, error) {
	path, isUnix := strings.CutPrefix(addr, "unix://")
	if !isUnix {
		path, isUnix = strings.CutPrefix(addr, "unix:")
	}
	if !isUnix {
		hostport := strings.TrimPrefix(addr, "tcp://")
		ln, err := net.Listen("tcp", hostport)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return ln, nil
	}
	if path == "" {
		return nil, fmt.Errorf("listen %s: empty socket path", addr)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	// The umask makes the socket 0600 from its creation: no window in which
	// another user could connect. Nothing else creates files at this point.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// removeStaleSocket deletes a socket nobody answers on (left by a crash);
// a live one or a file that is not a socket is an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("another process serves on %s", path)
	}
	return os.Remove(path)
}
