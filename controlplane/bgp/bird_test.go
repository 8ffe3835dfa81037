package bgp

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

// birdConf is an external router: two static tables exported to the
// gateway, IPv4 with a MED on one prefix, IPv6 with a MED on all. BIRD
// listens on 127.0.0.2 (the speaker connects from 127.0.0.1). multihop
// lets BIRD accept a loopback neighbour without a directly connected
// interface check.
const birdConf = `router id 10.255.0.9;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 {
  ipv4;
  route 10.10.0.0/16 blackhole;
  route 10.20.0.0/16 blackhole;
}
protocol static s6 {
  ipv6;
  route 2001:db8:10::/48 blackhole;
}
protocol bgp peergate {
  local 127.0.0.2 port %[2]d as %[3]d;
  neighbor 127.0.0.1 as %[4]d;
  multihop;
  passive on;
  ipv4 {
    import all;
    export filter { if net = 10.10.0.0/16 then bgp_med = 20; accept; };
  };
  ipv6 {
    import all;
    export filter { bgp_med = 30; accept; };
    next hop address 2001:db8::9;
  };
}
`

type bird struct {
	t    testing.TB
	dir  string
	sock string
}

// startBird runs BIRD 2 in the foreground with its config, socket and pid
// file in a temporary directory, killed when the test ends.
func startBird(t testing.TB, port uint16, asn, speakerASN uint32) *bird {
	t.Helper()
	return startBirdWith(t, func(dir string) string { return fmt.Sprintf(birdConf, dir, port, asn, speakerASN) })
}

// startBirdWith runs BIRD with the configuration conf(dir) returns.
func startBirdWith(t testing.TB, conf func(dir string) string) *bird {
	t.Helper()
	birdPath, err := exec.LookPath("bird")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/bird"); e != nil {
			t.Skip("BIRD 2 is not installed (apt-get install bird2; make deps): skipping the BIRD interoperability test")
		}
		birdPath = "/usr/sbin/bird"
	}
	if _, err := exec.LookPath("birdc"); err != nil {
		if _, e := os.Stat("/usr/sbin/birdc"); e != nil {
			t.Skip("birdc is not installed (apt-get install bird2): skipping")
		}
	}
	dir := t.TempDir()
	confFile := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confFile, []byte(conf(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &bird{t: t, dir: dir, sock: filepath.Join(dir, "bird.ctl")}
	cmd := exec.Command(birdPath, "-c", confFile, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"), "-f")
	out, err := os.Create(filepath.Join(dir, "bird.out"))
	if err != nil {
		t.Fatal(err)
	}
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
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
	})
	eventually(t, "bird's control socket", func() bool {
		_, err := b.birdc("show status")
		return err == nil
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

func (b *bird) must(args ...string) string {
	b.t.Helper()
	out, err := b.birdc(args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

func TestSpeakerInteroperatesWithBird(t *testing.T) {
	port := freePort(t, "127.0.0.2")
	b := startBird(t, port, e1ASN, gatewayASN)
	ctx := context.Background()
	s := startSpeaker(t, gatewayASN)
	rec := record(t, s)
	if err := s.SetAdvertised(ctx, "vpc-e1", mustPrefixes("198.51.100.0/24", "203.0.113.64/26")); err != nil {
		t.Fatal(err)
	}
	n := Neighbor{VPC: "vpc-e1", Address: mustPrefixes("127.0.0.2/32")[0].Addr(), Port: port, ASN: e1ASN}
	if err := s.SetNeighbors(ctx, []Neighbor{n}); err != nil {
		t.Fatal(err)
	}
	nb := "127.0.0.2"

	t.Run("bird's static routes are learned with their MED", func(t *testing.T) {
		eventually(t, "session up", func() bool { return rec.session(nb) == SessionUp })
		eventually(t, "3 routes", func() bool { return rec.count() == 3 })
		// BIRD ends its initial table with End-of-RIB markers for both
		// families.
		eventually(t, "the initial table complete", func() bool { return rec.tablesDone(nb) == 1 })
		if c := rec.count(); c != 3 {
			t.Errorf("%d routes when the initial table was complete, want 3", c)
		}
		for _, c := range []struct {
			prefix string
			med    uint32
		}{{"10.10.0.0/16", 20}, {"10.20.0.0/16", 0}, {"2001:db8:10::/48", 30}} {
			r, ok := rec.route("vpc-e1", nb, c.prefix)
			if !ok || r.MED != c.med || r.ASPathLen != 1 || !r.NextHop.IsValid() {
				t.Errorf("%s: %+v (learned %v), want MED %d, AS path length 1, a next hop", c.prefix, r, ok, c.med)
			}
			t.Logf("learned %+v", r)
		}
	})

	t.Run("our advertisements are in bird's table", func(t *testing.T) {
		eventually(t, "bird shows 198.51.100.0/24 and 203.0.113.64/26 from the gateway", func() bool {
			out, err := b.birdc("show", "route", "protocol", "peergate")
			return err == nil && strings.Contains(out, "198.51.100.0/24") && strings.Contains(out, "203.0.113.64/26")
		})
		out := b.must("show", "route", "all", "198.51.100.0/24")
		if !strings.Contains(out, "65000") {
			t.Errorf("bird's route lacks the gateway's AS in its path:\n%s", out)
		}
		t.Logf("bird: %s", out)
	})

	t.Run("a withdrawn advertisement leaves bird's table", func(t *testing.T) {
		if err := s.SetAdvertised(ctx, "vpc-e1", mustPrefixes("198.51.100.0/24")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "203.0.113.64/26 gone from bird", func() bool {
			out, err := b.birdc("show", "route", "protocol", "peergate")
			return err == nil && !strings.Contains(out, "203.0.113.64/26") && strings.Contains(out, "198.51.100.0/24")
		})
	})

	t.Run("disabling bird's static routes withdraws them", func(t *testing.T) {
		b.must("disable", "s4")
		eventually(t, "IPv4 routes withdrawn", func() bool {
			_, a := rec.route("vpc-e1", nb, "10.10.0.0/16")
			_, b := rec.route("vpc-e1", nb, "10.20.0.0/16")
			return !a && !b
		})
		if _, ok := rec.route("vpc-e1", nb, "2001:db8:10::/48"); !ok {
			t.Error("the IPv6 route went away with the IPv4 static protocol")
		}
		b.must("enable", "s4")
		eventually(t, "IPv4 routes back", func() bool { return rec.count() == 3 })
	})

	t.Run("bird dropping the session withdraws everything, and it comes back", func(t *testing.T) {
		b.must("disable", "peergate")
		eventually(t, "session down", func() bool { return rec.session(nb) == SessionDown })
		if c := rec.count(); c != 0 {
			t.Errorf("%d routes left after session down", c)
		}
		b.must("enable", "peergate")
		eventually(t, "session up again", func() bool { return rec.session(nb) == SessionUp })
		eventually(t, "3 routes again", func() bool { return rec.count() == 3 })
		eventually(t, "the new session's initial table complete", func() bool { return rec.tablesDone(nb) == 2 })
	})
}

// birdConfV4 is birdConf with an IPv4 channel only: the session negotiates
// IPv4 unicast alone, and BIRD sends that family's End-of-RIB only.
const birdConfV4 = `router id 10.255.0.9;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 {
  ipv4;
  route 10.10.0.0/16 blackhole;
  route 10.20.0.0/16 blackhole;
}
protocol bgp peergate {
  local 127.0.0.2 port %[2]d as %[3]d;
  neighbor 127.0.0.1 as %[4]d;
  multihop;
  passive on;
  ipv4 {
    import all;
    export all;
  };
}
`

// A neighbour that speaks one family ends its initial table with that
// family's End-of-RIB: the speaker waits for the negotiated families only.
func TestAnIPv4OnlyNeighbourEndsItsInitialTable(t *testing.T) {
	port := freePort(t, "127.0.0.2")
	startBirdWith(t, func(dir string) string { return fmt.Sprintf(birdConfV4, dir, port, e1ASN, gatewayASN) })
	s := startSpeaker(t, gatewayASN)
	rec := record(t, s)
	n := Neighbor{VPC: "vpc-e1", Address: mustPrefixes("127.0.0.2/32")[0].Addr(), Port: port, ASN: e1ASN}
	if err := s.SetNeighbors(context.Background(), []Neighbor{n}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the initial table complete", func() bool { return rec.tablesDone("127.0.0.2") == 1 })
	if c := rec.count(); c != 2 {
		t.Errorf("%d routes when the initial table was complete, want 2", c)
	}
}
