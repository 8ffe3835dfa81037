// Package bgp_test runs the real controlplane and gwctl binaries against
// real BGP daemons on loopback: BIRD 2 (bird_test.go) and, for speed,
// in-process gobgp peers (gobgp_test.go, which also measures the latency
// from one BGP update to the route live in a dataplane agent). The
// configuration is the Peering document's fourth use case: vpc-1 reaches
// the Internet through vpc-e1 (metric 0) or vpc-e2 (metric 10), both
// sides excluding 10/8 and 192.168/16, vpc-e1 also 1.2.3.0/30.
package bgp_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// birdConf is one external router. It listens on its own loopback address
// (the gateway connects from 127.0.0.1), exports its static routes to the
// gateway with MEDs chosen to exercise the metrics, and imports what the
// gateway advertises. s_extra holds a route only this router has, so it
// can be withdrawn alone.
const birdConf = `router id %[1]s;
log "%[2]s/bird.log" all;
protocol device {}
protocol static s_main {
  ipv4;
  route 8.8.8.0/24 blackhole;
  route 9.9.9.0/24 blackhole;
  route 10.5.0.0/16 blackhole;
  route 1.2.3.0/30 blackhole;
  route 4.4.4.0/24 blackhole;
}
%[6]s
protocol bgp peergate {
  local %[1]s port %[3]d as %[4]d;
  neighbor 127.0.0.1 as %[5]d;
  multihop;
  passive on;
  hold time 9;
  ipv4 {
    import all;
    export filter { %[7]s accept; };
  };
}
`

type bird struct {
	t    testing.TB
	dir  string
	sock string
}

func birdPaths(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("bird")
	if err != nil {
		bin = "/usr/sbin/bird"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("BIRD 2 is not installed (/usr/sbin/bird; apt-get install bird2, or make deps): skipping the BIRD integration test")
	}
	if _, err := exec.LookPath("birdc"); err != nil {
		if _, err := os.Stat("/usr/sbin/birdc"); err != nil {
			t.Skip("birdc is not installed (apt-get install bird2): skipping")
		}
	}
	return bin
}

// startBird runs BIRD in the foreground as a child of the test, with its
// configuration, control socket and pid file in a temporary directory; it
// is killed when the test ends.
func startBird(t testing.TB, bin, conf string) *bird {
	t.Helper()
	// The control socket path must stay short.
	dir, err := os.MkdirTemp("", "pgbird")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf = strings.ReplaceAll(conf, "%DIR%", dir)
	cf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &bird{t: t, dir: dir, sock: filepath.Join(dir, "bird.ctl")}
	out, err := os.Create(filepath.Join(dir, "bird.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-c", cf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bird: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
		if t.Failed() {
			for _, f := range []string{"bird.out", "bird.log"} {
				if data, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("%s %s:\n%s", dir, f, tail(string(data), 60))
				}
			}
		}
	})
	eventually(t, "bird's control socket", func() (bool, string) {
		out, err := b.birdc("show", "status")
		return err == nil, out
	})
	return b
}

func (b *bird) birdc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (b *bird) must(args ...string) {
	b.t.Helper()
	if _, err := b.birdc(args...); err != nil {
		b.t.Fatal(err)
	}
}

func TestUseCase4AgainstBird(t *testing.T) {
	bin := birdPaths(t)
	const n1, n2 = "127.0.0.2", "127.0.0.3"
	p1, p2 := freePort(t, n1), freePort(t, n2)
	// vpc-e1's router: 8.8.8.0/24 with MED 5 (5 + metric 0 beats vpc-e2's
	// 0 + 10), 9.9.9.0/24 with MED 20 (vpc-e2 wins), 4.4.4.0/24 with MED 10
	// (a tie: ECMP), 7.7.7.0/24 only here.
	b1 := startBird(t, bin, fmt.Sprintf(birdConf, n1, "%DIR%", p1, e1ASN, gatewayASN,
		"protocol static s_extra { ipv4; route 7.7.7.0/24 blackhole; }",
		"if net = 8.8.8.0/24 then bgp_med = 5; if net = 9.9.9.0/24 then bgp_med = 20; if net = 4.4.4.0/24 then bgp_med = 10;"))
	// vpc-e2's router: the same prefixes, no MED.
	b2 := startBird(t, bin, fmt.Sprintf(birdConf, n2, "%DIR%", p2, e2ASN, gatewayASN, "", ""))
	cp := startControlplane(t, useCase4(t, n1, n2, p1, p2)...)

	expect := func(t *testing.T, what string, want map[string]string) {
		t.Helper()
		eventually(t, what, func() (bool, string) {
			resp, out, err := cp.routes("vpc-1")
			if err != nil {
				return false, out
			}
			var bad []string
			for prefix, w := range want {
				if got := forwardOf(resp, "vpc-1", prefix); !matches(got, w) {
					bad = append(bad, fmt.Sprintf("%s: %v, want %s", prefix, got, w))
				}
			}
			return len(bad) == 0, strings.Join(bad, "\n")
		})
	}

	t.Run("both sessions come up and gwctl get bgp shows them", func(t *testing.T) {
		eventually(t, "two established sessions", func() (bool, string) {
			resp, out, err := cp.bgp()
			if err != nil || len(resp.GetSessions()) != 2 {
				return false, out
			}
			for _, s := range resp.GetSessions() {
				if s.GetState() != "established" || s.GetReceived() == 0 {
					return false, out
				}
			}
			return true, out
		})
		out, _ := cp.gwctl("get", "bgp")
		t.Logf("gwctl get bgp:\n%s", out)
	})

	t.Run("learned routes reach vpc-1 filtered by ips/not with the metric added", func(t *testing.T) {
		expect(t, "vpc-1's routes", map[string]string{
			"8.8.8.0/24":  "vpc-e1 5",  // MED 5 + 0 < MED 0 + 10
			"9.9.9.0/24":  "vpc-e2 10", // MED 20 + 0 > 0 + 10
			"7.7.7.0/24":  "vpc-e1 0",
			"4.4.4.0/24":  "vpc-e1,vpc-e2 10", // equal totals: one ECMP group
			"1.2.3.0/30":  "vpc-e2 10",        // vpc-e1's side excludes it
			"10.5.0.0/16": "none",             // both sides exclude 10/8
		})
		out, _ := cp.gwctl("get", "routes", "vpc-1")
		t.Logf("gwctl get routes vpc-1:\n%s", out)
		out, _ = cp.gwctl("get", "routes", "vpc-e1")
		t.Logf("gwctl get routes vpc-e1:\n%s", out)
	})

	t.Run("the NAT pool is advertised to both routers", func(t *testing.T) {
		for name, b := range map[string]*bird{"vpc-e1": b1, "vpc-e2": b2} {
			eventually(t, name+"'s router shows 192.168.1.0/30 from the gateway", func() (bool, string) {
				out, err := b.birdc("show", "route", "protocol", "peergate")
				return err == nil && strings.Contains(out, "192.168.1.0/30"), out
			})
			out, _ := b.birdc("show", "route", "protocol", "peergate")
			t.Logf("%s's router, routes from the gateway:\n%s", name, out)
			if strings.Contains(out, "8.8.8.0") || strings.Contains(out, "10.1.1.0") {
				t.Errorf("%s's router was told more than the pool:\n%s", name, out)
			}
		}
	})

	t.Run("a withdrawn route leaves vpc-1", func(t *testing.T) {
		b1.must("disable", "s_extra")
		expect(t, "7.7.7.0/24 gone", map[string]string{"7.7.7.0/24": "none", "8.8.8.0/24": "vpc-e1 5"})
		b1.must("enable", "s_extra")
		expect(t, "7.7.7.0/24 back", map[string]string{"7.7.7.0/24": "vpc-e1 0"})
	})

	t.Run("losing vpc-e1's session fails over to vpc-e2 and back", func(t *testing.T) {
		b1.must("disable", "peergate")
		expect(t, "failover to vpc-e2", map[string]string{
			"8.8.8.0/24": "vpc-e2 10", "9.9.9.0/24": "vpc-e2 10", "7.7.7.0/24": "none", "1.2.3.0/30": "vpc-e2 10",
			"4.4.4.0/24": "vpc-e2 10",
		})
		b1.must("enable", "peergate")
		expect(t, "back to vpc-e1", map[string]string{"8.8.8.0/24": "vpc-e1 5", "7.7.7.0/24": "vpc-e1 0", "4.4.4.0/24": "vpc-e1,vpc-e2 10"})
	})

	t.Run("stopping vpc-e1's router altogether fails over too", func(t *testing.T) {
		b1.must("down")
		expect(t, "failover to vpc-e2", map[string]string{"8.8.8.0/24": "vpc-e2 10", "7.7.7.0/24": "none"})
	})
}

// matches compares a hop with "none" or "VPC[,VPC] METRIC".
func matches(h hop, want string) bool {
	if want == "none" {
		return len(h.vpcs) == 0
	}
	var vpcs string
	var metric uint32
	if _, err := fmt.Sscanf(want, "%s %d", &vpcs, &metric); err != nil {
		return false
	}
	return h.found && strings.Join(h.vpcs, ",") == vpcs && h.metric == metric
}
