package bgp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/dataplane/agent"
	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/proto/tables/routeblock"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// peer is an in-process gobgp server playing an external router: it
// listens on host:port and waits for the gateway (passive).
type peer struct {
	t    testing.TB
	srv  *server.BgpServer
	host string
}

func startPeer(t testing.TB, host string, port uint16, asn uint32) *peer {
	t.Helper()
	srv := server.NewBgpServer(server.LoggerOption(quietLogger{}))
	go srv.Serve()
	ctx := context.Background()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: host, ListenPort: int32(port), ListenAddresses: []string{host},
	}})
	if err != nil {
		t.Fatalf("start gobgp peer %s:%d: %v", host, port, err)
	}
	err = srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: gatewayASN},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyV4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyV6, Enabled: true}},
		},
	}})
	if err != nil {
		t.Fatalf("gobgp peer %s: add the gateway as neighbour: %v", host, err)
	}
	t.Cleanup(func() { _ = srv.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	return &peer{t: t, srv: srv, host: host}
}

func path(prefix string, nextHop string, med uint32) *api.Path {
	pfx := netip.MustParsePrefix(prefix)
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: pfx.Addr().String(), PrefixLen: uint32(pfx.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := anypb.New(&api.NextHopAttribute{NextHop: nextHop})
	m, _ := anypb.New(&api.MultiExitDiscAttribute{Med: med})
	return &api.Path{Family: familyV4, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh, m}}
}

func (p *peer) announce(prefix string, med uint32) {
	p.t.Helper()
	if _, err := p.srv.AddPath(context.Background(), &api.AddPathRequest{Path: path(prefix, p.host, med)}); err != nil {
		p.t.Fatalf("peer %s: announce %s: %v", p.host, prefix, err)
	}
}

func (p *peer) withdraw(prefix string) {
	p.t.Helper()
	pa := path(prefix, p.host, 0)
	if err := p.srv.DeletePath(context.Background(), &api.DeletePathRequest{Family: pa.Family, Path: pa}); err != nil {
		p.t.Fatalf("peer %s: withdraw %s: %v", p.host, prefix, err)
	}
}

// received lists what the gateway advertised to the peer.
func (p *peer) received() []string {
	var out []string
	_ = p.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_IN, Name: "127.0.0.1", Family: familyV4,
	}, func(d *api.Destination) {
		// A withdrawal of a prefix the peer never had leaves an empty
		// destination in gobgp's adj-rib-in listing: not a route.
		if len(d.Paths) > 0 {
			out = append(out, d.Prefix)
		}
	})
	slices.Sort(out)
	return out
}

func (p *peer) setSession(up bool) {
	p.t.Helper()
	ctx := context.Background()
	var err error
	if up {
		err = p.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: "127.0.0.1"})
	} else {
		err = p.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: "127.0.0.1"})
	}
	if err != nil {
		p.t.Fatalf("peer %s: session up=%v: %v", p.host, up, err)
	}
}

// watcher is an in-process dataplane agent connected to the controlplane:
// it builds the dataplane's lookup snapshot (package fib) from the tables
// and deltas it receives, as cmd/dataplane does without the ports, records
// when each generation arrives and when its snapshot is live, and lets a
// test wait for a route of vpc-1 to look a given way.
type watcher struct {
	mu   sync.Mutex
	cond *sync.Cond
	last *tablesv1.Tables
	// snap is the dataplane's lookup snapshot of last, built and changed
	// by deltas as cmd/dataplane does; at is when it went live (arrival
	// plus fib.Build or fib ApplyDelta), arrived when the agent got it.
	snap        *fib.Snapshot
	at, arrived time.Time
	count       int
	full        int // complete tables received
	deltas      int // deltas applied
}

func watch(t testing.TB, cp *controlplane) *watcher {
	w := &watcher{}
	w.cond = sync.NewCond(&w.mu)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The agent's own snapshot, changed outside w.mu: the test holds
		// w.mu while it looks routes up, and a dataplane's workers do not
		// hold up its table updates.
		var cur *fib.Snapshot
		_ = agent.Run(ctx, agent.Config{
			Address: "unix://" + cp.sock, DataplaneID: "bgp-latency",
			Apply: func(tb *tablesv1.Tables) error {
				arrived := time.Now()
				snap, err := fib.Build(tb, fib.Options{})
				if err != nil {
					return err
				}
				now := time.Now()
				cur = snap
				// The watcher's tables are Route messages: the route
				// blocks expanded (outside the timed path).
				plain, err := routeblock.UnpackTables(tb)
				if err != nil {
					return err
				}
				w.mu.Lock()
				w.last, w.snap, w.at, w.arrived = plain, snap, now, arrived
				w.count++
				w.full++
				w.cond.Broadcast()
				w.mu.Unlock()
				return nil
			},
			// Deltas are applied as a dataplane does: to its lookup
			// snapshot, and to the watcher's copy of the tables (read by
			// the test under its lock).
			ApplyDelta: func(d *tablesv1.TableDelta) error {
				arrived := time.Now()
				if cur == nil {
					return fmt.Errorf("delta over generation %d before any tables", d.GetBaseGeneration())
				}
				snap, err := cur.ApplyDelta(d)
				if err != nil {
					return err
				}
				now := time.Now()
				cur = snap
				w.mu.Lock()
				defer w.mu.Unlock()
				// The watcher's tables are Route messages: the delta's
				// route blocks expanded (outside the timed path).
				plain, err := routeblock.UnpackDelta(d)
				if err != nil {
					return err
				}
				if err := compile.ApplyDelta(w.last, plain); err != nil {
					return err
				}
				w.snap, w.at, w.arrived = snap, now, arrived
				w.count++
				w.deltas++
				w.cond.Broadcast()
				return nil
			},
			Logger: slog.New(slog.DiscardHandler),
		})
	}()
	t.Cleanup(func() {
		cancel()
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
		<-done
	})
	return w
}

// until waits for cond to hold on vpc-1's routes in the tables the agent
// has, and returns when those tables arrived.
func (w *watcher) until(t testing.TB, what string, cond func(hop) bool, prefix string) time.Time {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	stop := time.AfterFunc(waitLimit, func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer stop.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.last != nil && cond(tableHop(w.last, "vpc-1", prefix)) {
			return w.at
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (%v) for %s in the dataplane's tables: %v", waitLimit, what, tableHop(w.last, "vpc-1", prefix))
		}
		w.cond.Wait()
	}
}

func tableHop(tb *tablesv1.Tables, vpc, prefix string) hop {
	names := make([]string, len(tb.GetVpcs()))
	for i, v := range tb.GetVpcs() {
		names[i] = v.GetName()
	}
	for _, v := range tb.GetVpcs() {
		if v.GetName() != vpc {
			continue
		}
		for _, r := range v.GetRoutes() {
			if r.GetPrefix() != prefix || r.GetMatchSource() {
				continue
			}
			h := hop{found: true, metric: r.GetMetric()}
			for _, a := range r.GetActions() {
				if a.GetKind() == tablesv1.ActionKind_ACTION_FORWARD {
					h.vpcs = append(h.vpcs, names[a.GetDstVpc()])
				}
			}
			return h
		}
	}
	return hop{}
}

func TestUseCase4AgainstGobgpPeers(t *testing.T) {
	const n1, n2 = "127.0.0.4", "127.0.0.5"
	p1port, p2port := freePort(t, n1), freePort(t, n2)
	e1 := startPeer(t, n1, p1port, e1ASN)
	e2 := startPeer(t, n2, p2port, e2ASN)
	for _, p := range []*peer{e1, e2} {
		p.announce("8.8.8.0/24", 0)
		p.announce("10.5.0.0/16", 0)
		p.announce("1.2.3.0/30", 0)
	}
	cp := startControlplane(t, useCase4(t, n1, n2, p1port, p2port)...)
	w := watch(t, cp)
	is := func(want string) func(hop) bool { return func(h hop) bool { return matches(h, want) } }

	t.Run("learned routes reach the dataplane filtered, with the metric added", func(t *testing.T) {
		w.until(t, "8.8.8.0/24 via vpc-e1", is("vpc-e1 0"), "8.8.8.0/24")
		w.until(t, "1.2.3.0/30 via vpc-e2 (vpc-e1 excludes it)", is("vpc-e2 10"), "1.2.3.0/30")
		w.until(t, "10.5.0.0/16 nowhere", is("none"), "10.5.0.0/16")
	})

	t.Run("the NAT pool is advertised to both peers, and only it", func(t *testing.T) {
		for _, p := range []*peer{e1, e2} {
			eventually(t, p.host+" receives 192.168.1.0/30", func() (bool, string) {
				got := p.received()
				return slices.Equal(got, []string{"192.168.1.0/30"}), strings.Join(got, " ")
			})
		}
	})

	t.Run("a MED above the metric difference moves the route to vpc-e2", func(t *testing.T) {
		e1.announce("8.8.8.0/24", 11)
		w.until(t, "8.8.8.0/24 via vpc-e2", is("vpc-e2 10"), "8.8.8.0/24")
		e1.announce("8.8.8.0/24", 10)
		w.until(t, "8.8.8.0/24 ECMP", is("vpc-e1,vpc-e2 10"), "8.8.8.0/24")
		e1.announce("8.8.8.0/24", 0)
		w.until(t, "8.8.8.0/24 back on vpc-e1", is("vpc-e1 0"), "8.8.8.0/24")
	})

	t.Run("session loss fails over to vpc-e2 and back", func(t *testing.T) {
		e1.setSession(false)
		w.until(t, "8.8.8.0/24 via vpc-e2", is("vpc-e2 10"), "8.8.8.0/24")
		e1.setSession(true)
		w.until(t, "8.8.8.0/24 back on vpc-e1", is("vpc-e1 0"), "8.8.8.0/24")
	})

	t.Run("sessions follow apply", func(t *testing.T) {
		sessions := func(want int) {
			t.Helper()
			eventually(t, fmt.Sprintf("%d BGP sessions established", want), func() (bool, string) {
				resp, out, err := cp.bgp()
				if err != nil || len(resp.GetSessions()) != want {
					return false, out
				}
				for _, s := range resp.GetSessions() {
					if !s.GetUp() {
						return false, out
					}
				}
				return true, out
			})
		}
		full := peergateYAML(n1, n2, p1port, p2port)
		noE2 := strings.Replace(full, fmt.Sprintf("neighbors: [{address: %s, port: %d, asn: %d}]", n2, p2port, e2ASN), "neighbors: []", 1)
		apply := func(yaml string) {
			t.Helper()
			f := t.TempDir() + "/peergate.yaml"
			if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := cp.gwctl("apply", "-f", f); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
		apply(noE2)
		sessions(1)
		w.until(t, "1.2.3.0/30 gone with vpc-e2's neighbour", is("none"), "1.2.3.0/30")
		eventually(t, "e2's peer no longer told the pool", func() (bool, string) {
			got := e2.received()
			return len(got) == 0, strings.Join(got, " ")
		})
		apply(full)
		sessions(2)
		w.until(t, "1.2.3.0/30 back via vpc-e2", is("vpc-e2 10"), "1.2.3.0/30")
	})

	t.Run("one update to live in the dataplane", func(t *testing.T) {
		// Measured, not asserted: logged for the bench docs.
		const n = 50
		var lat []time.Duration
		for i := range n {
			prefix := fmt.Sprintf("100.64.%d.0/24", i)
			start := time.Now()
			e1.announce(prefix, 0)
			lat = append(lat, w.until(t, prefix+" live", is("vpc-e1 0"), prefix).Sub(start))
			start = time.Now()
			e1.withdraw(prefix)
			lat = append(lat, w.until(t, prefix+" withdrawn", is("none"), prefix).Sub(start))
		}
		if os.Getenv("BGP_TEST_DEBUG") != "" {
			t.Logf("samples: %v", lat)
		}
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		w.mu.Lock()
		full, deltas := w.full, w.deltas
		w.mu.Unlock()
		if deltas == 0 {
			t.Error("the agent never received a delta")
		}
		msg := fmt.Sprintf("BGP update -> route live in the dataplane agent (%d complete tables, %d deltas received in all), %d updates (announce+withdraw): p50 %v, p90 %v, p99 %v, max %v",
			full, deltas, len(lat), p(0.50).Round(10*time.Microsecond), p(0.90).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
		t.Log(msg)
		if f := os.Getenv("BGP_LATENCY_OUT"); f != "" {
			_ = os.WriteFile(f, []byte(msg+"\n"), 0o644)
		}
	})
}

// quietLogger keeps the test peers' gobgp logging out of the test output.
type quietLogger struct{}

func (quietLogger) Panic(msg string, _ gobgplog.Fields) { panic(msg) }
func (quietLogger) Fatal(string, gobgplog.Fields)       {}
func (quietLogger) Error(string, gobgplog.Fields)       {}
func (quietLogger) Warn(string, gobgplog.Fields)        {}
func (quietLogger) Info(string, gobgplog.Fields)        {}
func (quietLogger) Debug(string, gobgplog.Fields)       {}
func (quietLogger) SetLevel(gobgplog.LogLevel)          {}
func (quietLogger) GetLevel() gobgplog.LogLevel         { return gobgplog.PanicLevel }
