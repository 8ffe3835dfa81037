package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/peergate/peergate/dataplane/agent"
	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/fib"
	dpmetrics "github.com/peergate/peergate/dataplane/metrics"
	"github.com/peergate/peergate/dataplane/pipeline"
	"github.com/peergate/peergate/dataplane/runtime"
	"github.com/peergate/peergate/internal/metrics"
	"github.com/peergate/peergate/internal/tlsconfig"
	"github.com/peergate/peergate/nat"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func init() {
	commands["run"] = command{name: "run", summary: "forward traffic on DPDK ports with tables from the controlplane",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runDataplane(ctx, args, stdout, stderr, true)
		}}
}

const runHelp = `usage: dataplane run --controlplane ADDR [--eal "ARGS"] [--workers N] [--cores LIST] [--id NAME] [--log-level LEVEL] [--metrics ADDR] [--pprof ADDR]
                    [--tls-cert FILE --tls-key FILE --tls-ca FILE [--tls-server-name NAME]] [--keep-caps LIST]
                    [--nat-sessions N] [--drop-log-interval DURATION]

Starts the DPDK EAL, connects to the controlplane's table push service,
waits for the first tables that name the Gateway's ports, starts those
ports (their "device" strings) and the poll-mode workers, and then follows
every new generation: lookup structures are built off the hot path and swapped in
atomically, and each generation is acknowledged. Counters (ports, drop
reasons, pipeline events, NAT sessions) are pushed every second ("gwctl
stats"). Stateful NAT sessions live in a table of --nat-sessions entries.
The workers never log per packet: the growth of the drop counters is
logged by reason at most once per --drop-log-interval.

If the controlplane goes away the dataplane keeps forwarding with its last
tables and reconnects with backoff; on reconnect it gets the current
generation. SIGTERM or SIGINT stops the workers, drains and frees every
buffer and cleans the EAL up.

Port changes: the set of ports (name, device, MAC, MTU, addresses) is fixed
when the runtime starts. A later generation whose ports differ is refused
with an acknowledgement error (gwctl get status shows it) and the dataplane
keeps running its previous generation: restart the dataplane to take the new
ports (it then starts with the current generation). Restarting ports in
place would stop forwarding on every port; doing it on purpose is safer.

Capabilities: before EAL starts, the dataplane drops every capability but
the ones DPDK needs (cap_net_raw, cap_net_admin, cap_ipc_lock; plus
cap_sys_rawio, cap_sys_admin, cap_dac_read_search when vfio runs in
no-IOMMU mode) from all its sets, the bounding set included, sets
no_new_privs and re-executes itself so that every thread holds only those
(capabilities are per thread). A dataplane started without more than these
(the systemd unit's user) has nothing to drop. --keep-caps all keeps
everything; --keep-caps LIST keeps LIST instead, +LIST adds LIST.

Flags:
`

// runRun runs the dataplane in this process and leaves its capabilities
// alone: tests call it, and a test binary must not re-execute itself.
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runDataplane(ctx, args, stdout, stderr, false)
}

// runDataplane is `dataplane run`; dropCaps makes it drop capabilities by
// re-executing the program, which only the command itself may do.
func runDataplane(ctx context.Context, args []string, stdout, stderr io.Writer, dropCaps bool) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller prints parse errors; --help goes to stdout
	addr := fs.String("controlplane", "", "controlplane `address`: unix:///path/to.sock or host:port")
	eal := fs.String("eal", "", "DPDK EAL `arguments`, space separated (default: --in-memory with free hugepages, else --no-huge -m 512 --no-pci --no-shconf)")
	workers := fs.Int("workers", 1, "worker goroutines (one pinned core each)")
	cores := fs.String("cores", "", "worker CPUs, one per worker: `LIST` like 1,2 or 2-3 (default: the last CPUs this process may use)")
	hostname, _ := os.Hostname()
	id := fs.String("id", hostname, "dataplane `name` in the controlplane's status")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. :9101; default: off)")
	pprofAddr := fs.String("pprof", "", "serve Go's runtime profiles at http://`ADDR`/debug/pprof/ (e.g. 127.0.0.1:6061; default: off; they show internal state: keep them on loopback; a CPU profile interrupts the workers ~100 times a second while it runs)")
	var tlsFiles tlsconfig.Files
	fs.StringVar(&tlsFiles.Cert, "tls-cert", "", "PEM `file`: this dataplane's client certificate for a controlplane on TCP with mutual TLS (with --tls-key and --tls-ca)")
	fs.StringVar(&tlsFiles.Key, "tls-key", "", "PEM `file`: the private key of --tls-cert")
	fs.StringVar(&tlsFiles.CA, "tls-ca", "", "PEM `file`: the CA that signed the controlplane's certificate")
	tlsName := fs.String("tls-server-name", "", "`name` expected in the controlplane's certificate (default: the host of --controlplane)")
	keepCaps := fs.String("keep-caps", "", "capabilities kept after start: `LIST` like net_raw,ipc_lock replaces the default, +LIST adds to it, all drops nothing (default: what DPDK needs, see above)")
	dropLog := fs.Duration("drop-log-interval", 10*time.Second, "log the growth of the drop counters by reason at most once per `interval` (0: never)")
	sessions := fs.Int("nat-sessions", 1<<18, "stateful NAT session table `capacity` (about 57 bytes each, allocated at start)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, runHelp, fs)
			return nil
		}
		return fmt.Errorf("%w (dataplane run --help lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *addr == "" {
		return errors.New("no controlplane: give --controlplane ADDR")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *level, err)
	}
	coreList, err := parseCores(*cores)
	if err != nil {
		return err
	}
	workersSet := false
	fs.Visit(func(f *flag.Flag) { workersSet = workersSet || f.Name == "workers" })
	if len(coreList) > 0 && len(coreList) != *workers {
		if !workersSet {
			*workers = len(coreList)
		} else {
			return fmt.Errorf("--cores %s names %d CPUs for %d workers", *cores, len(coreList), *workers)
		}
	}
	if *workers < 1 {
		return fmt.Errorf("--workers %d: need at least one", *workers)
	}
	if !dpdk.Available() {
		return fmt.Errorf("run needs DPDK: %w", dpdk.ErrNotBuilt)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	if _, _, err := keptCaps(*keepCaps, false); err != nil {
		return err
	}
	if dropCaps {
		// First, while no C thread exists and nothing is open that would
		// not survive the re-execution.
		if err := restrictCaps(log, *keepCaps); err != nil {
			return fmt.Errorf("drop capabilities: %w", err)
		}
	}

	// The certificate files are read after the drop: a root dataplane
	// reads them without cap_dac_override, as the files' modes say.
	var tlsCfg *tls.Config
	if tlsFiles.Enabled() {
		if tlsCfg, err = tlsconfig.Client(tlsFiles, *tlsName); err != nil {
			return err
		}
	}
	if *sessions < 1 {
		return fmt.Errorf("--nat-sessions %d: need at least one", *sessions)
	}

	ealArgs := strings.Fields(*eal)
	if len(ealArgs) == 0 {
		ealArgs = runtime.DefaultEALArgs()
	}
	// The EAL is ours, not the runtime's: it must outlive a runtime that
	// failed to start, and is cleaned up once at exit.
	if err := dpdk.Init(ealArgs); err != nil {
		return fmt.Errorf("start DPDK EAL with %q: %w", ealArgs, err)
	}
	defer func() {
		if err := dpdk.Cleanup(); err != nil {
			log.Warn("EAL cleanup", "err", err)
		}
	}()

	d := &dataplane{log: log, workers: *workers, cores: coreList}
	// The pipeline owns the stateful NAT: it builds the session table at the
	// first generation with pools, reconfigures it per generation and sweeps
	// it from the workers.
	d.pipe = pipeline.New(&d.fib, pipeline.Config{NATSessions: *sessions})
	defer d.close()
	if *metricsAddr != "" {
		reg, err := metrics.NewRegistry(dpmetrics.New(d.stats, func() dpmetrics.Extra {
			if nc, ok := d.pipe.NATCounters(); ok {
				return dpmetrics.Extra{NATCapacity: nc.Capacity}
			}
			return dpmetrics.Extra{}
		}))
		if err != nil {
			return err
		}
		if _, err := metrics.Serve(ctx, *metricsAddr, reg, log); err != nil {
			return err
		}
	}
	if *pprofAddr != "" {
		if _, err := metrics.ServeProfiles(ctx, *pprofAddr, log); err != nil {
			return err
		}
	}

	if *dropLog > 0 {
		go logDrops(ctx, log, *dropLog, d.stats)
	}

	log.Info("connecting to controlplane", "address", *addr, "id", *id)
	err = agent.Run(ctx, agent.Config{
		Address:     *addr,
		DataplaneID: *id,
		Apply:       d.apply,
		ApplyDelta:  d.applyDelta,
		Stats:       d.stats,
		Flows:       d.flows,
		TLS:         tlsCfg,
		Logger:      log,
	})
	log.Info("shutting down")
	return err
}

// dataplane owns the running runtime and the tables it forwards with. apply
// and applyDelta are called by the agent one at a time; stats from the
// agent's stats goroutine, hence the mutex.
type dataplane struct {
	log     *slog.Logger
	workers int
	cores   []int

	fib  fib.Holder
	pipe *pipeline.Pipeline

	mu     sync.Mutex
	rt     *runtime.Runtime
	ports  []runtime.PortConfig // what rt runs
	tables *tablesv1.Tables     // the generation being forwarded with
}

func (d *dataplane) apply(t *tablesv1.Tables) error {
	ports, err := runtime.PortsFromTables(t)
	if err != nil {
		return fmt.Errorf("generation %d: %w", t.GetGeneration(), err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rt == nil {
		if len(ports) == 0 {
			// Nothing to forward on yet (no Gateway applied): remember the
			// tables and wait for a generation with ports.
			d.log.Warn("tables have no ports: waiting for a Gateway", "generation", t.GetGeneration())
			d.tables = withoutRoutes(t)
			return nil
		}
		return d.start(t, ports)
	}
	if !reflect.DeepEqual(ports, d.ports) {
		return fmt.Errorf("the gateway's ports changed (%s): this dataplane keeps generation %d; restart it to take the new ports",
			portsDiff(d.ports, ports), d.tables.GetGeneration())
	}
	snap, err := fib.Build(t, fib.Options{PortMAC: d.rt.PortMAC})
	if err != nil {
		return fmt.Errorf("generation %d: %w", t.GetGeneration(), err)
	}
	d.fib.Store(snap)
	d.tables = withoutRoutes(t)
	return d.natError(t)
}

// start brings the ports and workers up with the first tables that have
// ports. The snapshot is built with the ports' real MACs before the workers
// poll, so no packet is ever seen without tables.
func (d *dataplane) start(t *tablesv1.Tables, ports []runtime.PortConfig) error {
	begin := time.Now()
	rt, err := runtime.New(runtime.Config{
		Ports:   ports,
		Workers: d.workers,
		Cores:   d.cores,
		Logger:  d.log,
	}, func(id int, a pipeline.Allocator) runtime.Processor { return d.pipe.NewWorker(id, a) })
	if err != nil {
		return fmt.Errorf("generation %d: start ports: %w", t.GetGeneration(), err)
	}
	snap, err := fib.Build(t, fib.Options{PortMAC: rt.PortMAC})
	if err != nil {
		if cerr := rt.Close(); cerr != nil {
			d.log.Warn("close runtime", "err", cerr)
		}
		return fmt.Errorf("generation %d: %w", t.GetGeneration(), err)
	}
	d.fib.Store(snap)
	if err := rt.Start(); err != nil {
		if cerr := rt.Close(); cerr != nil {
			d.log.Warn("close runtime", "err", cerr)
		}
		return fmt.Errorf("generation %d: start workers: %w", t.GetGeneration(), err)
	}
	d.rt, d.ports, d.tables = rt, ports, withoutRoutes(t)
	d.log.Info("forwarding", "generation", t.GetGeneration(), "ports", len(ports), "workers", d.workers, "took", time.Since(begin))
	return nil
}

// natError checks the generation's NAT pools the way the pipeline will
// configure them (at the first burst that sees the snapshot), so a bad pool
// is refused in the acknowledgement instead of only being logged.
func (d *dataplane) natError(t *tablesv1.Tables) error {
	if _, err := nat.PoolsFromTables(t.GetNatPools()); err != nil {
		return fmt.Errorf("generation %d: stateful NAT: %w", t.GetGeneration(), err)
	}
	return nil
}

// applyDelta applies a BGP delta to the running snapshot in place of a
// rebuild: with a full Internet table, cloning the tables and building every
// lookup structure again took seconds per update (fib.ApplyDelta changes
// only the routes the delta names, copy-on-write). A delta the snapshot
// cannot take (fib.ErrRebuild) is refused, and the controlplane answers a
// refused delta with complete tables.
func (d *dataplane) applyDelta(delta *tablesv1.TableDelta) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tables == nil {
		return errors.New("no tables to apply a delta to")
	}
	if delta.GetBaseGeneration() != d.tables.GetGeneration() {
		return fmt.Errorf("delta over generation %d, but generation %d is running", delta.GetBaseGeneration(), d.tables.GetGeneration())
	}
	begin := time.Now()
	if cur := d.fib.Load(); d.rt != nil && cur != nil {
		snap, err := cur.ApplyDelta(delta)
		if err != nil {
			return err
		}
		d.fib.Store(snap)
	}
	// Without ports (no Gateway yet) there is no snapshot to change: the
	// generation moves on, and the routes come whole with the complete
	// tables that bring the ports (a manifest change, never a delta).
	t := proto.Clone(d.tables).(*tablesv1.Tables) // route-less: cheap
	t.Generation = delta.GetGeneration()
	d.tables = t
	d.log.Debug("delta applied", "generation", t.GetGeneration(), "took", time.Since(begin))
	return nil
}

// withoutRoutes drops t's route lists once its snapshot is built: the
// snapshot holds the routes (and deltas change them there), the dataplane
// keeps the rest of t for its ports, NAT pools and VPC names. The agent
// hands t over, so it is modified in place: with a full table the lists are
// a million messages the dataplane would otherwise hold for nothing.
func withoutRoutes(t *tablesv1.Tables) *tablesv1.Tables {
	for _, v := range t.GetVpcs() {
		v.Routes, v.LocalRoutes, v.RouteBlock, v.LocalRouteBlock = nil, nil, nil, nil
	}
	return t
}

// stats is the snapshot pushed to the controlplane every second.
func (d *dataplane) stats() *tablesv1.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rt == nil {
		return nil
	}
	s := &tablesv1.Stats{Generation: d.tables.GetGeneration(), Drops: map[string]uint64{}, Counters: map[string]uint64{}}
	rs, err := d.rt.Stats()
	if err != nil {
		d.log.Debug("read port counters", "err", err)
	}
	for _, p := range rs.Ports {
		s.Ports = append(s.Ports, &tablesv1.PortStats{
			Name:      p.Name,
			RxPackets: p.IPackets, RxBytes: p.IBytes,
			TxPackets: p.OPackets, TxBytes: p.OBytes,
			RxDropped: p.IMissed + p.IErrors + p.RxNoMbuf,
			TxDropped: p.OErrors,
		})
	}
	c := d.pipe.Counters()
	for k, v := range c.DropsByName() {
		s.Drops[k] = v
	}
	for k, v := range c.EventsByName() {
		s.Counters[k] = v
	}
	s.Vpcs, s.Peerings = d.pipe.Traffic()
	// NAT drops are counted by the workers already (DropsByName); the NAT's
	// own counters add sessions and their lifecycle.
	if nc, ok := d.pipe.NATCounters(); ok {
		s.Sessions = nc.Sessions
		for k, v := range map[string]uint64{"nat_sessions_created": nc.Created, "nat_sessions_expired": nc.Expired, "nat_sessions_killed": nc.Killed} {
			if v != 0 {
				s.Counters[k] = v
			}
		}
	}
	if _, err := d.pipe.NAT(); err != nil {
		d.log.Warn("stateful NAT", "err", err)
	}
	w := rs.Total
	for k, v := range map[string]uint64{
		"tx_queue_full": w.TxFull, "bad_out_port": w.BadOutPort, "multi_segment": w.MultiSeg,
		"punt_no_iface": w.PuntNoIface, "alloc_failed": w.AllocFailed,
	} {
		if v != 0 {
			s.Drops[k] += v
		}
	}
	for k, v := range map[string]uint64{
		"punted": w.Punted, "from_kernel": w.FromKernel, "generated": w.Generated,
		"held": w.Held, "bursts": w.Bursts, "polls": w.Polls,
	} {
		if v != 0 {
			s.Counters[k] = v
		}
	}
	return s
}

func (d *dataplane) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rt == nil {
		return
	}
	d.log.Info("stopping workers and ports")
	if err := d.rt.Close(); err != nil {
		d.log.Warn("close runtime", "err", err)
	}
	d.rt = nil
}

// portsDiff names what changed between two port sets, for the refusal.
func portsDiff(old, new []runtime.PortConfig) string {
	if len(old) != len(new) {
		return fmt.Sprintf("%d ports instead of %d", len(new), len(old))
	}
	var diffs []string
	for i := range old {
		if !reflect.DeepEqual(old[i], new[i]) {
			diffs = append(diffs, fmt.Sprintf("port %q", new[i].Name))
		}
	}
	return strings.Join(diffs, ", ") + " changed"
}

// parseCores parses "1,2" or "2-3,5" into CPU numbers.
func parseCores(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil || a < 0 {
			return nil, fmt.Errorf("--cores %q: %q is not a CPU number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil || b < a {
				return nil, fmt.Errorf("--cores %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// maxFlows caps a flows listing when the request gives no limit: the answer
// travels in one message.
const maxFlows = 10000

// flows answers the controlplane's FlowsRequest from the pipeline's
// stateful NAT sessions (gwctl get flows).
func (d *dataplane) flows(req *tablesv1.FlowsRequest) *tablesv1.Flows {
	d.mu.Lock()
	t := d.tables
	d.mu.Unlock()
	f := nat.Filter{AllVPCs: req.GetVpc() == "", Limit: maxFlows}
	if l := int(req.GetLimit()); l > 0 && l < maxFlows {
		f.Limit = l
	}
	names := map[uint32]string{}
	for i, v := range t.GetVpcs() {
		names[uint32(i)] = v.GetName()
		if !f.AllVPCs && v.GetName() == req.GetVpc() {
			f.VPC = uint32(i)
		}
	}
	if _, ok := names[f.VPC]; !f.AllVPCs && (!ok || names[f.VPC] != req.GetVpc()) {
		return &tablesv1.Flows{Error: fmt.Sprintf("no VPC %q in generation %d", req.GetVpc(), t.GetGeneration())}
	}
	out := &tablesv1.Flows{Counters: map[string]uint64{}}
	if nc, ok := d.pipe.NATCounters(); ok {
		out.Counters["sessions"] = nc.Sessions
		out.Counters["created"] = nc.Created
		out.Counters["expired"] = nc.Expired
		out.Counters["killed"] = nc.Killed
		for k, v := range nc.Drops {
			out.Counters[k] = v
		}
	}
	for _, s := range d.pipe.Sessions(f) {
		out.Flows = append(out.Flows, &tablesv1.Flow{
			Vpc: names[s.VPC], Protocol: protoName(s.Proto),
			InnerAddr: s.Inner.Addr().String(), InnerPort: uint32(s.Inner.Port()),
			PublicAddr: s.Public.Addr().String(), PublicPort: uint32(s.Public.Port()),
			RemoteAddr: s.Remote.Addr().String(), RemotePort: uint32(s.Remote.Port()),
			State: s.State, ExpiresInSeconds: uint64(max(s.ExpiresIn, 0) / time.Second),
			Generation: uint64(s.Generation),
		})
	}
	return out
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}
