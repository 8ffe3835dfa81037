package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/dataplane/runtime"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

func TestRunFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"run without a controlplane address is refused", []string{"run"}, "no controlplane"},
		{"run with more cores than workers is refused", []string{"run", "--controlplane", "unix:///x", "--workers", "1", "--cores", "1,2"}, "2 CPUs for 1 workers"},
		{"run with a bad core list is refused", []string{"run", "--controlplane", "unix:///x", "--cores", "a"}, "not a CPU number"},
		{"run with a bad log level is refused", []string{"run", "--controlplane", "unix:///x", "--log-level", "loud"}, "--log-level"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			if code := dispatch(context.Background(), c.args, &out, &errw); code != 1 || !strings.Contains(errw.String(), c.want) {
				t.Errorf("exit %d, stderr %q: want 1 and %q", code, errw.String(), c.want)
			}
		})
	}
}

func TestRunWithoutDPDKSaysWhatIsMissing(t *testing.T) {
	if dpdk.Available() {
		t.Skip("this binary has DPDK")
	}
	var out, errw bytes.Buffer
	code := dispatch(context.Background(), []string{"run", "--controlplane", "unix:///nonexistent"}, &out, &errw)
	if code != 1 || !strings.Contains(errw.String(), dpdk.ErrNotBuilt.Error()) {
		t.Errorf("exit %d, stderr %q: want 1 and the missing-DPDK explanation", code, errw.String())
	}
}

func TestRunHelpDocumentsPortChanges(t *testing.T) {
	var out, errw bytes.Buffer
	if code := dispatch(context.Background(), []string{"run", "--help"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--controlplane", "Port changes", "refused", "--cores"} {
		if !strings.Contains(errw.String(), want) {
			t.Errorf("help has no %q:\n%s", want, errw.String())
		}
	}
}

func TestParseCores(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"", nil, false},
		{"1", []int{1}, false},
		{"1,3", []int{1, 3}, false},
		{"2-4,7", []int{2, 3, 4, 7}, false},
		{"4-2", nil, true},
		{"-1", nil, true},
		{"x", nil, true},
	} {
		got, err := parseCores(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseCores(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func route(prefix, source string, src bool) *tablesv1.Route {
	return &tablesv1.Route{Prefix: prefix, Source: source, MatchSource: src}
}

func TestApplyTableDelta(t *testing.T) {
	base := &tablesv1.Tables{Generation: 7, Vpcs: []*tablesv1.Vpc{{
		Id:          0,
		Name:        "a",
		Routes:      []*tablesv1.Route{route("10.0.0.0/16", "subnet", false), route("192.0.2.0/24", "bgp:x", false), route("10.9.0.0/16", "static", true)},
		LocalRoutes: []*tablesv1.Route{route("10.0.0.0/16", "subnet", false)},
	}}}
	for _, c := range []struct {
		name       string
		delta      *tablesv1.TableDelta
		wantRoutes []string // prefix/source
		wantLocal  []string
		wantErr    string
	}{
		{
			name: "an upsert replaces the route of the same prefix and adds new ones in order",
			delta: &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{
				VpcId:        0,
				UpsertRoutes: []*tablesv1.Route{route("192.0.2.0/24", "bgp:y", false), route("198.51.100.0/24", "bgp:y", false)},
			}}},
			wantRoutes: []string{"10.0.0.0/16/subnet", "192.0.2.0/24/bgp:y", "10.9.0.0/16/static", "198.51.100.0/24/bgp:y"},
			wantLocal:  []string{"10.0.0.0/16/subnet"},
		},
		{
			name: "a source route and a destination route of one prefix are different routes",
			delta: &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{
				UpsertRoutes: []*tablesv1.Route{route("10.9.0.0/16", "static-dst", false)},
			}}},
			wantRoutes: []string{"10.0.0.0/16/subnet", "192.0.2.0/24/bgp:x", "10.9.0.0/16/static", "10.9.0.0/16/static-dst"},
			wantLocal:  []string{"10.0.0.0/16/subnet"},
		},
		{
			name: "removals take routes and local routes away",
			delta: &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{
				RemoveRoutes:      []string{"192.0.2.0/24"},
				RemoveLocalRoutes: []string{"10.0.0.0/16"},
			}}},
			wantRoutes: []string{"10.0.0.0/16/subnet", "10.9.0.0/16/static"},
		},
		{
			name:    "a delta over another generation is refused",
			delta:   &tablesv1.TableDelta{BaseGeneration: 6, Generation: 8},
			wantErr: "over generation 6",
		},
		{
			name:    "a delta of an unknown VPC is refused",
			delta:   &tablesv1.TableDelta{BaseGeneration: 7, Generation: 8, Vpcs: []*tablesv1.VpcRouteDelta{{VpcId: 3}}},
			wantErr: "vpc id 3",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := applyTableDelta(base, c.delta)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GetGeneration() != 8 {
				t.Errorf("generation %d, want 8", got.GetGeneration())
			}
			list := func(rs []*tablesv1.Route) []string {
				var out []string
				for _, r := range rs {
					out = append(out, r.GetPrefix()+"/"+r.GetSource())
				}
				return out
			}
			if g := list(got.Vpcs[0].Routes); !reflect.DeepEqual(g, c.wantRoutes) {
				t.Errorf("routes %v, want %v", g, c.wantRoutes)
			}
			if g := list(got.Vpcs[0].LocalRoutes); !reflect.DeepEqual(g, c.wantLocal) {
				t.Errorf("local routes %v, want %v", g, c.wantLocal)
			}
			if len(base.Vpcs[0].Routes) != 3 || base.GetGeneration() != 7 {
				t.Error("the base tables were modified")
			}
		})
	}
}

func TestPortsDiffNamesWhatChanged(t *testing.T) {
	a := []runtime.PortConfig{{ID: 0, Name: "fabric", Device: "net_af_packet0,iface=gw0"}, {ID: 1, Name: "vpc2", Device: "net_af_packet1,iface=gw1"}}
	b := append([]runtime.PortConfig(nil), a...)
	b[1].MTU = 9000
	if got := portsDiff(a, b); got != `port "vpc2" changed` {
		t.Errorf("portsDiff = %q", got)
	}
	if got := portsDiff(a, a[:1]); got != "1 ports instead of 2" {
		t.Errorf("portsDiff = %q", got)
	}
}
