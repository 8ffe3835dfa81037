package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// soakDefault is the soak's length in CI; PEERGATE_SOAK_DURATION (a Go
// duration) lengthens it.
const soakDefault = 2 * time.Minute

// soakExternal is an external VPC on VLAN 300 of the vpc2 port with the
// test's gobgp peer as BGP neighbour, peered with vpc-2: the routes the
// peer announces and withdraws during the soak land in vpc-2's tables
// (198.18.0.0/15, away from the stream's 10.0.0.0/16).
const soakExternal = `apiVersion: peergate.io/v1alpha1
kind: VPC
metadata:
  name: vpc-ext
spec:
  subnets: [203.0.113.0/29]
  vlan: {port: vpc2, id: 300}
  routerIPs: [203.0.113.2]
  external: true
  bgp:
    neighbors: [{address: %s, port: %d, asn: 65101}]
---
apiVersion: gateway.githedgehog.com/v1alpha1
kind: Peering
metadata:
  name: vpc-2--vpc-ext
spec:
  vpc-2:
    ips:
      - cidr: 172.31.0.0/16
  vpc-ext:
    ips:
      - cidr: 198.18.0.0/15
`

// soakChurn is the VPC and peering the soak applies, changes and deletes
// every second: unrelated to the stream, each apply a new generation.
const soakChurn = `apiVersion: peergate.io/v1alpha1
kind: VPC
metadata:
  name: vpc-churn
spec:
  subnets: [100.64.0.0/24]
  vlan: {port: vpc2, id: 301}
  routerIPs: [100.64.0.1]
  routes: [{cidr: 100.65.%d.0/24, nextHop: 100.64.0.9}]
---
apiVersion: gateway.githedgehog.com/v1alpha1
kind: Peering
metadata:
  name: vpc-churn--vpc-ext
spec:
  vpc-churn:
    ips:
      - cidr: 100.64.0.0/24
  vpc-ext:
    ips:
      - cidr: 198.18.0.0/15
`

func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("PEERGATE_SOAK_DURATION")
	if s == "" {
		return soakDefault
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 30*time.Second {
		t.Fatalf("PEERGATE_SOAK_DURATION=%q: want a Go duration of at least 30s", s)
	}
	return d
}

// TestSoak pushes a paced, numbered UDP stream from the vpc-1 host to the
// vpc-2 host through the af_packet ports while the configuration churns
// (a VPC and peering applied, changed and deleted every second) and a
// gobgp peer announces and withdraws routes. Every datagram must arrive or
// be covered by the growth of the dataplane's drop counters; both daemons'
// RSS and goroutines must stay flat after warm-up.
func TestSoak(t *testing.T) {
	requireEnv(t)
	dur := soakDuration(t)
	g := setup(t, "--bgp-connect-retry", "1s")

	peerHost := "127.0.0.2"
	peer := startSoakPeer(t, peerHost)
	ext := filepath.Join(g.dir, "soak-external.yaml")
	if err := os.WriteFile(ext, []byte(fmt.Sprintf(soakExternal, peerHost, peer.port)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.gwctl("apply", "-f", ext)
	g.waitSync(10 * time.Second)
	waitMetric(t, "the BGP session with the soak's peer", 30*time.Second, func() (bool, string) {
		s, err := scrape("", g.cpMetricsAddr)
		if err != nil {
			return false, err.Error()
		}
		k := fmt.Sprintf(`peergate_controlplane_bgp_session_up{neighbor=%q,vpc="vpc-ext"}`, peerHost)
		return s[k] == 1, s.names("peergate_controlplane_bgp")
	})

	dp0, cp0 := g.dpMetrics(t), g.cpMetrics(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stream := startStream(t, g, g.h1, "10.0.0.2", g.h2, "172.31.0.2", 1000)
	var wg sync.WaitGroup
	var applies, bgpOps atomic.Int64
	var churnErr, bgpErr atomic.Value
	wg.Add(2)
	go func() {
		defer wg.Done()
		churn := filepath.Join(g.dir, "soak-churn.yaml")
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var err error
			switch i % 3 {
			case 0, 1: // add, then change the static route
				if err = os.WriteFile(churn, []byte(fmt.Sprintf(soakChurn, i%250)), 0o644); err == nil {
					_, err = runGwctl(g, "apply", "-f", churn)
				}
			case 2:
				_, err = runGwctl(g, "delete", "-f", churn)
			}
			if err != nil {
				churnErr.Store(fmt.Errorf("churn step %d: %w", i, err))
				return
			}
			applies.Add(1)
		}
	}()
	// The peer keeps a window of up to 32 prefixes: each step announces
	// one and, once full, withdraws the oldest.
	var announced []string
	var annMu sync.Mutex
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p := fmt.Sprintf("198.%d.%d.0/24", 18+i/256%2, i%256)
			annMu.Lock()
			err := peer.announce(p)
			if err == nil {
				announced = append(announced, p)
				if len(announced) > 32 {
					err = peer.withdraw(announced[0])
					announced = announced[1:]
				}
			}
			annMu.Unlock()
			if err != nil {
				bgpErr.Store(err)
				return
			}
			bgpOps.Add(1)
		}
	}()

	// Resource samples: every 5 s; the one after warm-up (a quarter of the
	// run, at least 20 s) is the reference.
	type res struct {
		at                   time.Duration
		cpRSS, dpRSS         uint64
		cpGorout, dpGoroutin float64
	}
	var samples []res
	warm := max(dur/4, 20*time.Second)
	begin := time.Now()
	sampleNow := func() res {
		r := res{at: time.Since(begin).Round(time.Second)}
		var err error
		if r.cpRSS, err = vmRSS(g.cp.cmd.Process.Pid); err != nil {
			t.Fatalf("controlplane RSS: %v", err)
		}
		if r.dpRSS, err = vmRSS(g.dp.cmd.Process.Pid); err != nil {
			t.Fatalf("dataplane RSS: %v", err)
		}
		r.cpGorout = goroutines(t, "controlplane", g.cpMetrics(t))
		r.dpGoroutin = goroutines(t, "dataplane", g.dpMetrics(t))
		return r
	}
	for time.Since(begin) < dur {
		time.Sleep(5 * time.Second)
		if e := churnErr.Load(); e != nil {
			t.Fatal(e)
		}
		if e := bgpErr.Load(); e != nil {
			t.Fatal(e)
		}
		select {
		case <-g.dp.done:
			t.Fatalf("the dataplane exited during the soak: %v", g.dp.err)
		case <-g.cp.done:
			t.Fatalf("the controlplane exited during the soak: %v", g.cp.err)
		default:
		}
		samples = append(samples, sampleNow())
	}
	cancel()
	wg.Wait()
	sent, lost := stream.stop(t)
	dp1, cp1 := g.dpMetrics(t), g.cpMetrics(t)

	var drops float64
	var byReason []string
	for k, v := range dp1 {
		if strings.HasPrefix(k, "peergate_dataplane_drops_total{") ||
			strings.HasPrefix(k, "peergate_dataplane_port_rx_dropped_total{") || strings.HasPrefix(k, "peergate_dataplane_port_tx_dropped_total{") {
			if d := v - dp0[k]; d > 0 {
				drops += d
				byReason = append(byReason, fmt.Sprintf("%s +%v", k, d))
			}
		}
	}
	gen0, gen1 := cp0["peergate_controlplane_config_generation"], cp1["peergate_controlplane_config_generation"]
	t.Logf("soak %v: %d datagrams sent at 1000/s, %d lost; drops counted meanwhile: %v %v; %d config applies/deletes, %d BGP updates, generations %v -> %v",
		dur, sent, lost, drops, byReason, applies.Load(), bgpOps.Load(), gen0, gen1)
	if float64(lost) > drops {
		t.Errorf("%d datagrams of %d lost, only %v drops counted with a reason", lost, sent, drops)
	}
	if gen1-gen0 < float64(applies.Load())/2 {
		t.Errorf("the configuration churned %d times but the generation moved %v -> %v", applies.Load(), gen0, gen1)
	}

	// Memory flat, goroutines not growing.
	var ref res
	for _, s := range samples {
		if s.at >= warm {
			ref = s
			break
		}
	}
	last := samples[len(samples)-1]
	for _, s := range samples {
		t.Logf("t=%-5v controlplane RSS %6.1f MiB goroutines %3v | dataplane RSS %6.1f MiB goroutines %3v",
			s.at, float64(s.cpRSS)/(1<<20), s.cpGorout, float64(s.dpRSS)/(1<<20), s.dpGoroutin)
	}
	flat := func(what string, f func(res) uint64) {
		r, l := f(ref), f(last)
		if limit := max(r+r/5, r+8<<20); l > limit {
			t.Errorf("%s RSS grew from %.1f MiB (t=%v) to %.1f MiB (t=%v): beyond +20%% and +8 MiB",
				what, float64(r)/(1<<20), ref.at, float64(l)/(1<<20), last.at)
		}
	}
	flat("controlplane", func(r res) uint64 { return r.cpRSS })
	flat("dataplane", func(r res) uint64 { return r.dpRSS })
	// Goroutines come and go with API calls and scrapes: the least of the
	// last three samples against the reference.
	minLast := func(f func(res) float64) float64 {
		m := f(last)
		for _, s := range samples[max(0, len(samples)-3):] {
			m = min(m, f(s))
		}
		return m
	}
	if m := minLast(func(r res) float64 { return r.cpGorout }); m > ref.cpGorout+10 {
		t.Errorf("controlplane goroutines grew from %v after warm-up to at least %v at the end", ref.cpGorout, m)
	}
	if m := minLast(func(r res) float64 { return r.dpGoroutin }); m > ref.dpGoroutin+10 {
		t.Errorf("dataplane goroutines grew from %v after warm-up to at least %v at the end", ref.dpGoroutin, m)
	}

	// The final state: the BGP routes the peer still announces are learned,
	// the dataplane runs the last generation.
	annMu.Lock()
	want := float64(len(announced))
	annMu.Unlock()
	waitMetric(t, fmt.Sprintf("%v routes learned from the soak's peer", want), 30*time.Second, func() (bool, string) {
		s, err := scrape("", g.cpMetricsAddr)
		if err != nil {
			return false, err.Error()
		}
		return s[`peergate_controlplane_bgp_routes_learned{vpc="vpc-ext"}`] == want, s.names("peergate_controlplane_bgp")
	})
	g.waitSync(10 * time.Second)
}

// waitMetric polls cond until it holds; limit is a hang guard.
func waitMetric(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s; last seen:\n%s", limit, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func goroutines(t *testing.T, what string, s sample) float64 {
	t.Helper()
	v, ok := s.get("go_goroutines")
	if !ok {
		t.Fatalf("%s metrics: no go_goroutines", what)
	}
	return v
}

// vmRSS reads VmRSS of a process in bytes.
func vmRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// stream is a paced UDP stream of numbered datagrams between two
// namespaces.
type stream struct {
	cancel func()
	done   chan struct{}
	sent   atomic.Uint64
	mu     sync.Mutex
	seen   map[uint64]bool
	srv    *net.UDPConn
	cli    *net.UDPConn
	err    error
}

// startStream sends pps datagrams a second (in groups every 10 ms) from
// clientNS to dst:port in serverNS until stop.
func startStream(t *testing.T, g *gateway, serverNS, dst, clientNS, src string, pps int) *stream {
	t.Helper()
	s := &stream{done: make(chan struct{}), seen: map[uint64]bool{}}
	if err := inNetns(serverNS, func() (err error) {
		s.srv, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(dst)})
		return
	}); err != nil {
		t.Fatalf("listen udp in %s: %v", serverNS, err)
	}
	_ = s.srv.SetReadBuffer(8 << 20)
	if err := inNetns(clientNS, func() (err error) {
		s.cli, err = net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, s.srv.LocalAddr().(*net.UDPAddr))
		return
	}); err != nil {
		s.srv.Close()
		t.Fatalf("dial udp from %s: %v", clientNS, err)
	}
	t.Cleanup(func() { s.srv.Close(); s.cli.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := s.srv.Read(buf)
			if err != nil {
				close(s.done)
				return
			}
			if n == 200 {
				s.mu.Lock()
				s.seen[binary.BigEndian.Uint64(buf)] = true
				s.mu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	sender := make(chan struct{})
	s.cancel = func() { cancel(); <-sender }
	go func() {
		defer close(sender)
		pkt := make([]byte, 200)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(pps/100, 1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for range per {
				binary.BigEndian.PutUint64(pkt, s.sent.Load())
				if _, err := s.cli.Write(pkt); err != nil {
					s.err = err
					return
				}
				s.sent.Add(1)
			}
		}
	}()
	return s
}

// stop ends the stream, waits for stragglers and returns how many
// datagrams were sent and how many never arrived.
func (s *stream) stop(t *testing.T) (sent, lost uint64) {
	t.Helper()
	s.cancel()
	if s.err != nil {
		t.Errorf("UDP stream send: %v", s.err)
	}
	sent = s.sent.Load()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.mu.Lock()
		n := uint64(len(s.seen))
		s.mu.Unlock()
		if n >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.srv.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []uint64
	for i := uint64(0); i < sent; i++ {
		if !s.seen[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		t.Logf("UDP stream: missing sequence numbers (first 20): %v", missing[:min(20, len(missing))])
	}
	return sent, uint64(len(missing))
}

// soakPeer is an in-process gobgp router playing the external's upstream:
// it listens on host and waits for the gateway (passive).
type soakPeer struct {
	srv  *server.BgpServer
	host string
	port int
}

func startSoakPeer(t *testing.T, host string) *soakPeer {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", host, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := server.NewBgpServer(server.LoggerOption(quietBGP{}))
	go srv.Serve()
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65101, RouterId: host, ListenPort: int32(port), ListenAddresses: []string{host},
	}}); err != nil {
		t.Fatalf("start gobgp peer %s:%d: %v", host, port, err)
	}
	t.Cleanup(func() { _ = srv.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65000},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}}); err != nil {
		t.Fatalf("gobgp peer %s: add the gateway as neighbour: %v", host, err)
	}
	return &soakPeer{srv: srv, host: host, port: port}
}

func (p *soakPeer) path(prefix string) *api.Path {
	pfx := netip.MustParsePrefix(prefix)
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: pfx.Addr().String(), PrefixLen: uint32(pfx.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := anypb.New(&api.NextHopAttribute{NextHop: "203.0.113.1"})
	return &api.Path{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}
}

func (p *soakPeer) announce(prefix string) error {
	if _, err := p.srv.AddPath(context.Background(), &api.AddPathRequest{Path: p.path(prefix)}); err != nil {
		return fmt.Errorf("gobgp peer: announce %s: %w", prefix, err)
	}
	return nil
}

func (p *soakPeer) withdraw(prefix string) error {
	pa := p.path(prefix)
	if err := p.srv.DeletePath(context.Background(), &api.DeletePathRequest{Family: pa.Family, Path: pa}); err != nil {
		return fmt.Errorf("gobgp peer: withdraw %s: %w", prefix, err)
	}
	return nil
}

// quietBGP keeps the peer's gobgp logging out of the test output.
type quietBGP struct{}

func (quietBGP) Panic(msg string, _ gobgplog.Fields) { panic(msg) }
func (quietBGP) Fatal(string, gobgplog.Fields)       {}
func (quietBGP) Error(string, gobgplog.Fields)       {}
func (quietBGP) Warn(string, gobgplog.Fields)        {}
func (quietBGP) Info(string, gobgplog.Fields)        {}
func (quietBGP) Debug(string, gobgplog.Fields)       {}
func (quietBGP) SetLevel(gobgplog.LogLevel)          {}
func (quietBGP) GetLevel() gobgplog.LogLevel         { return gobgplog.PanicLevel }
