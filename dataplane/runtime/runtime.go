package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peergate/peergate/dataplane/dpdk"
)

// Runtime is a running set of DPDK ports and workers.
type Runtime struct {
	cfg     Config
	log     *slog.Logger
	ownEAL  bool
	pool    *dpdk.Mempool
	ports   []*port // data ports in Config order, then punt interfaces
	nData   int
	byID    []int16 // pipeline port id -> index in ports, -1 when unknown
	workers []*worker
	stop    atomic.Bool
	wg      sync.WaitGroup
	started bool
	epoch   time.Time
}

type port struct {
	cfg      PortConfig
	id       dpdk.PortID
	info     dpdk.PortInfo
	mac      net.HardwareAddr
	nrxq     int
	ntxq     int
	rss      uint64
	txLocks  []sync.Mutex // per TX queue, taken only when workers share one
	sharedTx bool
	punt     int // index of the punt interface in Runtime.ports, -1 without
	data     int // for a punt interface: index of its data port; -1 otherwise
	ifname   string
	started  bool
	fenced   string // af_packet interface fenced off the kernel
}

func (p *port) isPunt() bool { return p.data >= 0 }

// New starts the EAL if needed, attaches and starts every port (and punt
// interface), creates the pool and one processor per worker. Workers start
// with Start. On error everything done so far is undone.
func New(cfg Config, newProc NewProcessor) (rt *Runtime, err error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Runtime{cfg: c, log: c.Logger, epoch: time.Now()}
	defer func() {
		if err != nil {
			if cerr := r.Close(); cerr != nil {
				r.log.Warn("undo failed setup", "err", cerr)
			}
			rt = nil
		}
	}()
	if !dpdk.Initialized() {
		args := c.EALArgs
		if args == nil {
			args = DefaultEALArgs()
		}
		if err := dpdk.Init(args); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		r.ownEAL = true
	}
	if err := r.attach(); err != nil {
		return nil, err
	}
	n := c.Mbufs
	if n <= 0 {
		n = r.poolSize()
	}
	cache := 256
	if n < 1024 {
		cache = 0
	}
	if r.pool, err = dpdk.NewPktmbufPool(fmt.Sprintf("pg_mbufs_%d", r.ports[0].id), n, cache, dpdk.DefaultDataRoom, -1); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	for _, p := range r.ports {
		if err := r.startPort(p); err != nil {
			return nil, err
		}
	}
	for _, p := range r.ports {
		if !p.isPunt() {
			continue
		}
		d := r.ports[p.data]
		if err := configureKernelIface(p.ifname, d.cfg); err != nil {
			return nil, fmt.Errorf("runtime: port %q: punt interface: %w", d.cfg.Name, err)
		}
		if iface := afPacketIface(d.cfg.Device); iface != "" {
			if err := fenceKernel(iface); err != nil {
				return nil, fmt.Errorf("runtime: port %q: %w", d.cfg.Name, err)
			}
			d.fenced = iface
		}
	}
	for i := 0; i < c.Workers; i++ {
		w, err := newWorker(r, i)
		if err != nil {
			return nil, err
		}
		r.workers = append(r.workers, w)
		w.proc = newProc(i, w)
	}
	return r, nil
}

// attach probes every data port and its punt interface and decides queue
// counts; nothing is started yet.
func (r *Runtime) attach() error {
	maxID := 0
	for _, pc := range r.cfg.Ports {
		maxID = max(maxID, int(pc.ID))
	}
	r.byID = make([]int16, maxID+1)
	for i := range r.byID {
		r.byID[i] = -1
	}
	for _, pc := range r.cfg.Ports {
		dev := pc.Device
		// af_packet spreads over queues by kernel fanout; ask for one
		// queue pair per worker unless the operator chose.
		if strings.HasPrefix(dev, "net_af_packet") && !strings.Contains(dev, "qpairs=") && r.cfg.Workers > 1 {
			dev += fmt.Sprintf(",qpairs=%d", r.cfg.Workers)
		}
		id, err := dpdk.Probe(dev)
		if err != nil {
			return fmt.Errorf("runtime: port %q: %w", pc.Name, err)
		}
		p := &port{cfg: pc, id: id, punt: -1, data: -1}
		r.ports = append(r.ports, p)
		if p.info, err = id.Info(); err != nil {
			return fmt.Errorf("runtime: port %q: %w", pc.Name, err)
		}
		if pc.MAC != nil {
			if err := id.SetMAC(pc.MAC); err != nil {
				return fmt.Errorf("runtime: port %q: %w", pc.Name, err)
			}
		}
		if p.mac, err = id.MAC(); err != nil {
			return fmt.Errorf("runtime: port %q: %w", pc.Name, err)
		}
		p.nrxq = max(1, min(r.cfg.Workers, p.info.MaxRxQueues))
		p.ntxq = max(1, min(r.cfg.Workers, p.info.MaxTxQueues))
		p.rss = p.info.RSSOffloads & (dpdk.RSSIP | dpdk.RSSL4)
		r.byID[pc.ID] = int16(len(r.ports) - 1)
	}
	r.nData = len(r.ports)
	for i := 0; i < r.nData; i++ {
		d := r.ports[i]
		if !d.cfg.Punt {
			continue
		}
		dev := fmt.Sprintf("net_tap_pg%d,iface=%s,mac=%s", d.id, d.cfg.PuntIface, d.mac)
		id, err := dpdk.Probe(dev)
		if err != nil {
			return fmt.Errorf("runtime: port %q: punt interface: %w", d.cfg.Name, err)
		}
		p := &port{cfg: PortConfig{Name: d.cfg.Name + "-punt", Device: dev, MTU: d.cfg.MTU}, id: id, punt: -1, data: i, ifname: d.cfg.PuntIface, mac: d.mac}
		r.ports = append(r.ports, p)
		if p.info, err = id.Info(); err != nil {
			return fmt.Errorf("runtime: port %q: punt interface: %w", d.cfg.Name, err)
		}
		p.nrxq = 1 // read by one worker: punted traffic is light
		p.ntxq = max(1, min(r.cfg.Workers, p.info.MaxTxQueues))
		d.punt = len(r.ports) - 1
	}
	return nil
}

func (r *Runtime) poolSize() int {
	n := 4096 // pcap preloads, punt bursts, slow-path packets
	for _, p := range r.ports {
		n += p.nrxq*r.cfg.RxDesc + p.ntxq*r.cfg.TxDesc
	}
	n += r.cfg.Workers * (r.cfg.Burst*(len(r.ports)+2) + 512)
	size := 1
	for size-1 < n {
		size <<= 1
	}
	return size - 1
}

func (r *Runtime) startPort(p *port) error {
	name := p.cfg.Name
	if err := p.id.Configure(p.nrxq, p.ntxq, p.rss, 0); err != nil {
		return fmt.Errorf("runtime: port %q: %w", name, err)
	}
	nrx, ntx, err := p.id.AdjustDesc(r.cfg.RxDesc, r.cfg.TxDesc)
	if err != nil {
		return fmt.Errorf("runtime: port %q: %w", name, err)
	}
	if p.cfg.MTU > 0 {
		if err := p.id.SetMTU(p.cfg.MTU); err != nil {
			r.log.Warn("port MTU not set", "port", name, "err", err)
		}
	}
	for q := 0; q < p.nrxq; q++ {
		if err := p.id.SetupRxQueue(q, nrx, p.info.Socket, r.pool); err != nil {
			return fmt.Errorf("runtime: port %q: %w", name, err)
		}
	}
	for q := 0; q < p.ntxq; q++ {
		if err := p.id.SetupTxQueue(q, ntx, p.info.Socket); err != nil {
			return fmt.Errorf("runtime: port %q: %w", name, err)
		}
	}
	p.sharedTx = p.ntxq < r.cfg.Workers
	p.txLocks = make([]sync.Mutex, p.ntxq)
	if err := p.id.Start(); err != nil {
		return fmt.Errorf("runtime: port %q: %w", name, err)
	}
	p.started = true
	if !p.isPunt() {
		if err := p.id.SetPromiscuous(true); err != nil {
			r.log.Debug("promiscuous mode not available", "port", name, "err", err)
		}
	}
	r.log.Info("port up", "port", name, "device", p.cfg.Device, "dpdk_port", p.id, "driver", p.info.Driver,
		"mac", p.mac.String(), "rxq", p.nrxq, "txq", p.ntxq, "rss", p.rss != 0 && p.nrxq > 1, "shared_tx", p.sharedTx)
	return nil
}

// Start launches the workers; each is pinned and registered before Start
// returns.
func (r *Runtime) Start() error {
	if r.started {
		return errors.New("runtime: already started")
	}
	r.started = true
	errs := make(chan error, len(r.workers))
	for _, w := range r.workers {
		r.wg.Add(1)
		go w.run(errs)
	}
	var err error
	for range r.workers {
		err = errors.Join(err, <-errs)
	}
	if err != nil {
		r.Stop()
		return err
	}
	return nil
}

// Stop makes the workers stop polling, release what they hold, flush their
// TX batches and exit; it returns when all have.
func (r *Runtime) Stop() {
	r.stop.Store(true)
	r.wg.Wait()
}

// Run starts the workers and stops them when ctx ends (SIGTERM in the
// dataplane binary), then closes everything.
func (r *Runtime) Run(ctx context.Context) error {
	if err := r.Start(); err != nil {
		return errors.Join(err, r.Close())
	}
	<-ctx.Done()
	r.log.Info("stopping dataplane workers")
	r.Stop()
	return r.Close()
}

// Close stops the workers if running, stops and detaches every port, frees
// the pool and, when the runtime started the EAL, cleans it up.
func (r *Runtime) Close() error {
	r.Stop()
	var err error
	for _, w := range r.workers {
		w.close()
	}
	r.workers = nil
	for i := len(r.ports) - 1; i >= 0; i-- {
		p := r.ports[i]
		if p.started {
			if e := p.id.Stop(); e != nil {
				err = errors.Join(err, fmt.Errorf("runtime: port %q: %w", p.cfg.Name, e))
			}
		}
		if e := p.id.Remove(); e != nil {
			err = errors.Join(err, fmt.Errorf("runtime: port %q: %w", p.cfg.Name, e))
		}
		if p.fenced != "" {
			if e := unfenceKernel(p.fenced); e != nil {
				err = errors.Join(err, fmt.Errorf("runtime: port %q: %w", p.cfg.Name, e))
			}
		}
	}
	r.ports = nil
	if r.pool != nil {
		if n := r.pool.InUse(); n != 0 {
			r.log.Warn("mbufs still in use at shutdown", "count", n)
		}
		r.pool.Close()
		r.pool = nil
	}
	if r.ownEAL {
		r.ownEAL = false
		if e := dpdk.Cleanup(); e != nil {
			err = errors.Join(err, fmt.Errorf("runtime: %w", e))
		}
	}
	return err
}

// MbufsInUse is the number of mbufs out of the pool: in rings, in workers'
// batches, held by processors, or leaked.
func (r *Runtime) MbufsInUse() int { return r.pool.InUse() }

// WorkerThreads returns the Linux thread id of each running worker (0 for
// one not running): benchmarks read their CPU time from /proc.
func (r *Runtime) WorkerThreads() []int {
	out := make([]int, len(r.workers))
	for i, w := range r.workers {
		out[i] = int(w.tid.Load())
	}
	return out
}

// PortMAC returns the MAC of the data port with pipeline id id (zero when
// there is none): pass it as fib.Options.PortMAC so the pipeline answers and
// sends with the addresses the ports really have.
func (r *Runtime) PortMAC(id uint32) [6]byte {
	var mac [6]byte
	if int(id) < len(r.byID) && r.byID[id] >= 0 {
		copy(mac[:], r.ports[r.byID[id]].mac)
	}
	return mac
}

// PortInfo describes one attached port.
type PortInfo struct {
	Name       string
	DPDKPort   dpdk.PortID
	Driver     string
	MAC        net.HardwareAddr
	RxQueues   int
	TxQueues   int
	RSS        bool
	PuntIface  string // kernel interface of its punt path; "" without
	PuntOfPort string // for a punt interface: its data port
}

// Ports describes the data ports, then the punt interfaces.
func (r *Runtime) Ports() []PortInfo {
	var out []PortInfo
	for _, p := range r.ports {
		pi := PortInfo{Name: p.cfg.Name, DPDKPort: p.id, Driver: p.info.Driver, MAC: p.mac,
			RxQueues: p.nrxq, TxQueues: p.ntxq, RSS: p.rss != 0 && p.nrxq > 1}
		if p.punt >= 0 {
			pi.PuntIface = r.ports[p.punt].ifname
		}
		if p.isPunt() {
			pi.PuntIface = p.ifname
			pi.PuntOfPort = r.ports[p.data].cfg.Name
		}
		out = append(out, pi)
	}
	return out
}

// PortStats is one port's DPDK counters.
type PortStats struct {
	Name string
	dpdk.PortStats
	Link dpdk.Link
}

// Stats is a snapshot of the counters.
type Stats struct {
	Ports   []PortStats
	Workers []WorkerStats
	Total   WorkerStats
}

// Stats reads every port's counters and sums the workers'.
func (r *Runtime) Stats() (Stats, error) {
	var s Stats
	var err error
	for _, p := range r.ports {
		ps, e := p.id.Stats(p.nrxq)
		if e != nil {
			err = errors.Join(err, e)
			continue
		}
		l, _ := p.id.Link()
		s.Ports = append(s.Ports, PortStats{Name: p.cfg.Name, PortStats: ps, Link: l})
	}
	for _, w := range r.workers {
		ws := w.stats.read()
		s.Workers = append(s.Workers, ws)
		s.Total.add(&ws)
	}
	return s, err
}
