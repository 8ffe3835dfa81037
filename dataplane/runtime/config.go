package runtime

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/pipeline"
)

// Processor handles bursts for one worker. pipeline.Worker implements it.
// It is called once per burst, never per packet.
type Processor interface {
	// ProcessBurst sets the verdict of every buffer of in and appends
	// generated or released buffers to out.Extra.
	ProcessBurst(now int64, in []*pipeline.Buf, out *pipeline.Output)
	// Tick runs timers (neighbour and hold-queue ageing) about every
	// millisecond and once at shutdown with now = math.MaxInt64, when the
	// processor must release every buffer it holds.
	Tick(now int64, out *pipeline.Output)
}

// NewProcessor returns worker id's processor; alloc serves its slow path.
// It is called once per worker, sequentially, before the workers start.
type NewProcessor func(worker int, alloc pipeline.Allocator) Processor

// PortConfig is one data port.
type PortConfig struct {
	// ID is the pipeline's number for the port (tables.Port.id): Buf.InPort
	// and Buf.OutPort.
	ID uint16
	// Name is for logs and statistics.
	Name string
	// Device is the DPDK device string: a vdev with its arguments
	// ("net_af_packet0,iface=gw0", "net_pcap0,rx_pcap=f.pcap") or a PCI
	// address with optional arguments ("0000:00:08.0").
	Device string
	// MAC, when set, replaces the device's own address.
	MAC net.HardwareAddr
	// MTU, when non-zero, is set on the port (best effort: some virtual
	// drivers have no MTU) and on its punt interface.
	MTU int
	// Punt creates the port's kernel punt interface (net_tap), which gets
	// the port's MAC and PuntAddrs. Packets with VerdictPunt from this port
	// go to it; packets the kernel sends on it leave through this port.
	Punt bool
	// PuntIface is the kernel name of the punt interface (at most 15
	// bytes); default "pg-" + Name.
	PuntIface string
	// PuntAddrs are the port's own addresses, given to the punt interface.
	PuntAddrs []netip.Prefix
}

// Config is the runtime's configuration. Zero values get defaults.
type Config struct {
	// EALArgs start the EAL when it is not running yet (the runtime then
	// owns it and cleans it up on Close). Default: DefaultEALArgs().
	EALArgs []string
	Ports   []PortConfig
	// Workers is the number of worker goroutines (default 1).
	Workers int
	// Cores are the CPUs of the workers, one each (default: the last
	// Workers CPUs this process may use, leaving the first to the main
	// thread and Go's runtime when there is more than one).
	Cores []int
	// Burst is the RX burst and TX batch size (default 32).
	Burst int
	// RxDesc and TxDesc are descriptors per queue (default 1024, clamped to
	// what the driver accepts).
	RxDesc, TxDesc int
	// Mbufs is the pool size (default: enough for every ring and worker).
	Mbufs int
	// IdleSleep: a worker that found nothing in 256 polls in a row sleeps
	// this long before polling again. 0 means DefaultIdleSleep; negative
	// means pure busy polling (lowest latency, one core always at 100%).
	IdleSleep time.Duration
	Logger    *slog.Logger
}

// DefaultIdleSleep is short enough to add no more than tens of
// microseconds of latency to the first packet after a quiet spell.
const DefaultIdleSleep = 20 * time.Microsecond

// DefaultEALArgs returns --in-memory when hugepages are free, and the
// no-hugepage, vdev-only arguments otherwise. Either way the EAL has one
// lcore (the main thread): workers are registered threads, not EAL lcores.
func DefaultEALArgs() []string {
	args := []string{"-l", "0", "--no-telemetry"}
	if hugepagesFree() {
		return append(args, "--in-memory")
	}
	return append(args, dpdk.NoHugeArgs(fmt.Sprintf("peergate%d", os.Getpid()), 512)...)
}

func hugepagesFree() bool {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "HugePages_Free:" {
			return f[1] != "0"
		}
	}
	return false
}

func (c *Config) withDefaults() (Config, error) {
	d := *c
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Workers <= 0 {
		d.Workers = 1
	}
	if d.Burst <= 0 {
		d.Burst = 32
	}
	if d.RxDesc <= 0 {
		d.RxDesc = 1024
	}
	if d.TxDesc <= 0 {
		d.TxDesc = 1024
	}
	if d.IdleSleep == 0 {
		d.IdleSleep = DefaultIdleSleep
	}
	if len(d.Ports) == 0 {
		return d, fmt.Errorf("runtime: no ports")
	}
	if len(d.Cores) == 0 {
		cores, err := defaultCores(d.Workers)
		if err != nil {
			return d, err
		}
		d.Cores = cores
	}
	if len(d.Cores) != d.Workers {
		return d, fmt.Errorf("runtime: %d cores %v for %d workers", len(d.Cores), d.Cores, d.Workers)
	}
	seen := map[uint16]bool{}
	names := map[string]bool{}
	d.Ports = append([]PortConfig(nil), d.Ports...)
	for i := range d.Ports {
		p := &d.Ports[i]
		if p.Name == "" {
			p.Name = fmt.Sprintf("port%d", p.ID)
		}
		if seen[p.ID] || names[p.Name] {
			return d, fmt.Errorf("runtime: port %q (id %d) given twice", p.Name, p.ID)
		}
		seen[p.ID], names[p.Name] = true, true
		if p.Device == "" {
			return d, fmt.Errorf("runtime: port %q: no device", p.Name)
		}
		if p.Punt && p.PuntIface == "" {
			p.PuntIface = "pg-" + p.Name
		}
		if len(p.PuntIface) > 15 {
			return d, fmt.Errorf("runtime: port %q: punt interface name %q longer than 15 bytes", p.Name, p.PuntIface)
		}
	}
	return d, nil
}
