package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dpMetricsAddr is where the dataplane serves /metrics: on the loopback of
// the gateway's own namespace, so a fixed port never collides with another
// run.
const dpMetricsAddr = "127.0.0.1:9464"

// sample is one scrape: series (name with its labels as exposed, e.g.
// `peergate_dataplane_drops_total{reason="malformed"}`) to value.
type sample map[string]float64

// get returns a series' value and whether the scrape had it.
func (s sample) get(series string) (float64, bool) {
	v, ok := s[series]
	return v, ok
}

// names lists the series whose name starts with prefix, for failure
// messages.
func (s sample) names(prefix string) string {
	var out []string
	for k := range s {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// parseMetrics reads the Prometheus text format: every non-comment line is
// `series value`.
func parseMetrics(r io.Reader) (sample, error) {
	s := sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line without a value: %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s[line[:i]] = v
	}
	return s, sc.Err()
}

// scrape GETs http://addr/metrics, dialling from namespace ns ("" for the
// test's own).
func scrape(ns, addr string) (sample, error) {
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		if ns == "" {
			return d.DialContext(ctx, network, a)
		}
		var c net.Conn
		err := inNetns(ns, func() (err error) { c, err = d.DialContext(ctx, network, a); return })
		return c, err
	}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	s, err := parseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	return s, nil
}

// dpMetrics scrapes the dataplane; the test fails if it cannot.
func (g *gateway) dpMetrics(t *testing.T) sample {
	t.Helper()
	s, err := scrape(g.gw, dpMetricsAddr)
	if err != nil {
		t.Fatalf("dataplane metrics: %v", err)
	}
	return s
}

// cpMetrics scrapes the controlplane; the test fails if it cannot.
func (g *gateway) cpMetrics(t *testing.T) sample {
	t.Helper()
	s, err := scrape("", g.cpMetricsAddr)
	if err != nil {
		t.Fatalf("controlplane metrics: %v", err)
	}
	return s
}

var metricsAddrRE = regexp.MustCompile(`msg="serving metrics" address=(\S+)`)

// waitMetricsAddr finds the address the controlplane started with
// --metrics 127.0.0.1:0 serves on: the last "serving metrics" line of its
// log after offset (the log is appended across restarts).
func waitMetricsAddr(t *testing.T, logPath string, offset int64) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if int64(len(b)) > offset {
			if m := metricsAddrRE.FindAllSubmatch(b[offset:], -1); len(m) > 0 {
				return string(m[len(m)-1][1])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no \"serving metrics\" line within 10s:\n%s", filepath.Base(logPath), tail(b, 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grew checks that each series grew by at least min between before and
// after, naming the series that is missing or did not move.
func grew(t *testing.T, what string, before, after sample, min float64, series ...string) {
	t.Helper()
	for _, s := range series {
		a, ok := after.get(s)
		if !ok {
			name, _, _ := strings.Cut(s, "{")
			t.Errorf("%s metrics: no series %s; the scrape has:\n%s", what, s, after.names(name))
			continue
		}
		b, _ := before.get(s) // absent before: a counter that starts at 0
		if a-b < min {
			t.Errorf("%s metrics: %s went %v -> %v, want a growth of at least %v", what, s, b, a, min)
		}
	}
}

// metricsMove scrapes both daemons twice around some traffic and checks a
// few counters by name (the issue's "curl of the metrics endpoint during an
// end-to-end test shows the counters moving").
func metricsMove(t *testing.T, g *gateway) {
	dp1, cp1 := g.dpMetrics(t), g.cpMetrics(t)
	out, ok := g.ping(g.h1, "-c", "20", "-i", "0.02", "-W", "2", "172.31.0.2")
	if !ok {
		t.Fatalf("ping between the scrapes:\n%s", out)
	}
	udpTransfer(t, g, g.h1, "10.0.0.2", g.h2, 256<<10)
	dp2, cp2 := g.dpMetrics(t), g.cpMetrics(t)

	// 20 echo requests and 20 replies cross each port, 220 datagrams one way.
	grew(t, "dataplane", dp1, dp2, 20,
		`peergate_dataplane_port_rx_packets_total{port="fabric"}`,
		`peergate_dataplane_port_tx_packets_total{port="fabric"}`,
		`peergate_dataplane_port_rx_packets_total{port="vpc2"}`,
		`peergate_dataplane_port_tx_packets_total{port="vpc2"}`,
		`peergate_dataplane_vpc_rx_packets_total{vpc="vpc-1"}`,
		`peergate_dataplane_vpc_rx_packets_total{vpc="vpc-2"}`,
		`peergate_dataplane_events_total{event="bursts"}`,
	)
	grew(t, "dataplane", dp1, dp2, 1000, `peergate_dataplane_port_rx_bytes_total{port="fabric"}`)
	// The peering's name is the compiler's; find it rather than guess.
	var peering string
	for k := range dp2 {
		if strings.HasPrefix(k, "peergate_dataplane_peering_packets_total{") {
			peering = k
		}
	}
	if peering == "" {
		t.Errorf("dataplane metrics: no peergate_dataplane_peering_packets_total series; the scrape has:\n%s", dp2.names("peergate_dataplane_"))
	} else {
		grew(t, "dataplane", dp1, dp2, 40, peering)
	}
	// The busy ratio is bursts/polls since start: traffic just crossed, so
	// some polls found packets, and a ratio above 1 would mean a miscount.
	if v, ok := dp2.get("peergate_dataplane_worker_busy_ratio"); !ok {
		t.Errorf("dataplane metrics: no peergate_dataplane_worker_busy_ratio (events_total{event=\"polls\"} missing from the stats snapshot?)")
	} else if v <= 0 || v > 1 {
		t.Errorf("dataplane metrics: peergate_dataplane_worker_busy_ratio = %v, want in (0, 1]", v)
	}
	for _, s := range []string{"peergate_dataplane_forwarding", "peergate_dataplane_config_generation", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := dp2.get(s); !ok {
			t.Errorf("dataplane metrics: no series %s", s)
		}
	}
	if v, _ := dp2.get("peergate_dataplane_forwarding"); v != 1 {
		t.Errorf("dataplane metrics: peergate_dataplane_forwarding = %v, want 1", v)
	}

	gen, ok := cp2.get("peergate_controlplane_config_generation")
	if !ok || gen < 1 {
		t.Errorf("controlplane metrics: peergate_controlplane_config_generation = %v (present %v), want >= 1; the scrape has:\n%s", gen, ok, cp2.names("peergate_"))
	}
	if v, ok := cp2.get("peergate_controlplane_dataplanes_connected"); !ok || v != 1 {
		t.Errorf("controlplane metrics: peergate_controlplane_dataplanes_connected = %v (present %v), want 1", v, ok)
	}
	if v, ok := cp2.get(`peergate_controlplane_dataplane_generation{dataplane="e2e"}`); !ok || v != gen {
		t.Errorf("controlplane metrics: peergate_controlplane_dataplane_generation{dataplane=\"e2e\"} = %v (present %v), want the live generation %v", v, ok, gen)
	}
	if dg, _ := dp2.get("peergate_dataplane_config_generation"); dg != gen {
		t.Errorf("dataplane forwards with generation %v, the controlplane's is %v", dg, gen)
	}

	// An apply moves the controlplane's counters: re-applying the same
	// manifests is accepted (generation may stay), a broken one is rejected.
	g.gwctl("apply", "-f", "../../testdata/manifests/kube-ovn-vpc-peering/")
	bad := filepath.Join(g.dir, "broken.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: peergate.io/v1alpha1\nkind: VPC\nmetadata: {name: broken}\nspec: {vxlan: {port: nowhere, vni: 7}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _ = runGwctl(g, "apply", "-f", bad)
	cp3 := g.cpMetrics(t)
	grew(t, "controlplane", cp1, cp3, 1, `peergate_controlplane_applies_total{outcome="accepted"}`, `peergate_controlplane_applies_total{outcome="rejected"}`)
	g.waitSync(5 * time.Second)
}
