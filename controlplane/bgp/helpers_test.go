package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// waitLimit bounds every wait in these tests. It is a hang guard, not a
// speed assertion: sessions come up within a few seconds.
const waitLimit = 60 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("BGP_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func freePort(t testing.TB, host string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", host, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func startSpeaker(t testing.TB, asn uint32) *Speaker {
	t.Helper()
	s := New(testLogger(t))
	err := s.Start(context.Background(), Global{
		ASN:          asn,
		RouterID:     netip.MustParseAddr("10.255.0.1"),
		ListenPort:   -1,
		ConnectRetry: time.Second,
	})
	if err != nil {
		t.Fatalf("start speaker: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// testPeer is a second gobgp server playing an external router: it listens
// on host:port and waits (passive) for the speaker, whose sessions come from
// 127.0.0.1.
type testPeer struct {
	t    testing.TB
	srv  *server.BgpServer
	host string
	port uint16
	asn  uint32
}

func startPeer(t testing.TB, host string, port uint16, asn uint32, routerID string, speakerASN uint32) *testPeer {
	t.Helper()
	srv := server.NewBgpServer(server.LoggerOption(newGobgpLogger(testLogger(t).With("peer", host))))
	go srv.Serve()
	ctx := context.Background()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: routerID, ListenPort: int32(port), ListenAddresses: []string{host},
	}})
	if err != nil {
		t.Fatalf("start test peer %s:%d: %v", host, port, err)
	}
	err = srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: speakerASN},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyV4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyV6, Enabled: true}},
		},
	}})
	if err != nil {
		t.Fatalf("test peer %s:%d: add speaker as neighbor: %v", host, port, err)
	}
	p := &testPeer{t: t, srv: srv, host: host, port: port, asn: asn}
	t.Cleanup(p.stop)
	return p
}

func (p *testPeer) stop() { _ = p.srv.StopBgp(context.Background(), &api.StopBgpRequest{}) }

func (p *testPeer) neighbor(vpc string) Neighbor {
	return Neighbor{VPC: vpc, Address: netip.MustParseAddr(p.host), Port: p.port, ASN: p.asn}
}

// peerPath is a route the test peer originates.
func peerPath(prefix string, nextHop string, med uint32, hasMED bool) *api.Path {
	pfx := netip.MustParsePrefix(prefix)
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: pfx.Addr().String(), PrefixLen: uint32(pfx.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	attrs := []*anypb.Any{origin}
	family := familyV4
	if pfx.Addr().Is4() {
		nh, _ := anypb.New(&api.NextHopAttribute{NextHop: nextHop})
		attrs = append(attrs, nh)
	} else {
		family = familyV6
		mp, _ := anypb.New(&api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{nextHop}, Nlris: []*anypb.Any{nlri}})
		attrs = append(attrs, mp)
	}
	if hasMED {
		m, _ := anypb.New(&api.MultiExitDiscAttribute{Med: med})
		attrs = append(attrs, m)
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: attrs}
}

func (p *testPeer) announce(prefix, nextHop string, med uint32) {
	p.t.Helper()
	if _, err := p.srv.AddPath(context.Background(), &api.AddPathRequest{Path: peerPath(prefix, nextHop, med, true)}); err != nil {
		p.t.Fatalf("test peer: announce %s: %v", prefix, err)
	}
}

func (p *testPeer) withdraw(prefix, nextHop string) {
	p.t.Helper()
	path := peerPath(prefix, nextHop, 0, false)
	if err := p.srv.DeletePath(context.Background(), &api.DeletePathRequest{Family: path.Family, Path: path}); err != nil {
		p.t.Fatalf("test peer: withdraw %s: %v", prefix, err)
	}
}

// received lists what the peer learned from the speaker, with the
// communities it carried.
func (p *testPeer) received() map[netip.Prefix][]uint32 {
	out := make(map[netip.Prefix][]uint32)
	for _, fam := range []*api.Family{familyV4, familyV6} {
		_ = p.srv.ListPath(context.Background(), &api.ListPathRequest{
			TableType: api.TableType_ADJ_IN, Name: "127.0.0.1", Family: fam,
		}, func(d *api.Destination) {
			pfx, err := netip.ParsePrefix(d.Prefix)
			if err != nil {
				return
			}
			var comms []uint32
			for _, path := range d.Paths {
				for _, a := range path.Pattrs {
					var c api.CommunitiesAttribute
					if a.MessageIs(&c) && a.UnmarshalTo(&c) == nil {
						comms = append(comms, c.Communities...)
					}
				}
			}
			out[pfx] = comms
		})
	}
	return out
}

// recorder consumes a subscription and keeps the state the events describe,
// as the controlplane would.
type recorder struct {
	mu       sync.Mutex
	routes   map[string]Route // vpc|neighbor|prefix
	sessions map[string]EventKind
	done     map[string]int // InitialTableDone events per neighbour
	events   []EventKind
	batches  int
	updates  int
	last     time.Time
}

func record(t testing.TB, s *Speaker) *recorder {
	ch, cancel := s.Subscribe()
	t.Cleanup(cancel)
	r := &recorder{routes: make(map[string]Route), sessions: make(map[string]EventKind), done: make(map[string]int)}
	go func() {
		for ev := range ch {
			r.mu.Lock()
			r.events = append(r.events, ev.Kind)
			switch ev.Kind {
			case RoutesChanged:
				r.batches++
				r.updates += len(ev.Updates)
				for _, u := range ev.Updates {
					k := routeKey(u.Route)
					if u.Withdraw {
						delete(r.routes, k)
					} else {
						r.routes[k] = u.Route
					}
				}
			case InitialTableDone:
				r.done[ev.Neighbor]++
			default:
				r.sessions[ev.Neighbor] = ev.Kind
			}
			r.last = time.Now()
			r.mu.Unlock()
		}
	}()
	return r
}

func routeKey(r Route) string { return r.VPC + "|" + r.Neighbor + "|" + r.Prefix.String() }

func (r *recorder) route(vpc, neighbor, prefix string) (Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[vpc+"|"+neighbor+"|"+netip.MustParsePrefix(prefix).String()]
	return rt, ok
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.routes)
}

// tablesDone is how many times neighbor's initial table was complete.
func (r *recorder) tablesDone(neighbor string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[neighbor]
}

func (r *recorder) session(neighbor string) EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[neighbor]
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (%v) for %s", waitLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func keys[V any](m map[netip.Prefix]V) string {
	return fmt.Sprint(len(m), " ", func() []string {
		var out []string
		for k := range m {
			out = append(out, k.String())
		}
		return out
	}())
}
