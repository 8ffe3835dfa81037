package bgp_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTransitBetweenTwoExternals is the Peering document's second use
// case: vpc-e1 and vpc-e2 peered, both external. Routes one learns inside
// its side's ips (minus its nots) are advertised to the other's
// neighbours; what a side excludes stays home.
func TestTransitBetweenTwoExternals(t *testing.T) {
	const n1, n2 = "127.0.0.8", "127.0.0.9"
	p1port, p2port := freePort(t, n1), freePort(t, n2)
	e1 := startPeer(t, n1, p1port, e1ASN)
	e2 := startPeer(t, n2, p2port, e2ASN)
	e1.announce("8.8.8.0/24", 0)
	e1.announce("10.5.0.0/16", 0) // vpc-e1's side excludes 10/8
	e1.announce("1.2.3.0/24", 0)  // and 1.2.3.0/24
	e2.announce("9.9.9.0/24", 0)
	e2.announce("3.2.1.0/30", 0)     // vpc-e2's side excludes 3.2.1.0/30
	e2.announce("192.168.7.0/24", 0) // and 192.168/16
	configs := useCase4(t, n1, n2, p1port, p2port)
	seed := filepath.Join(moduleRoot(t), "testdata", "manifests", "peering-api-2-externals", "peering-api-2-externals.yaml")
	cp := startControlplane(t, seed, configs[1])

	receives := func(t *testing.T, p *peer, want []string) {
		t.Helper()
		eventually(t, p.host+" told exactly "+strings.Join(want, " "), func() (bool, string) {
			got := p.received()
			adv, _ := cp.gwctl("get", "bgp", "--advertised")
			return slices.Equal(got, want), strings.Join(got, " ") + "\n" + adv
		})
	}
	t.Run("each external is told what the other taught inside its side", func(t *testing.T) {
		receives(t, e2, []string{"203.0.113.0/29", "8.8.8.0/24"})
		receives(t, e1, []string{"198.51.100.0/29", "9.9.9.0/24"})
		out, _ := cp.gwctl("get", "bgp", "--advertised")
		t.Logf("gwctl get bgp --advertised:\n%s", out)
	})
	t.Run("a withdrawal on one side is withdrawn from the other", func(t *testing.T) {
		e1.withdraw("8.8.8.0/24")
		receives(t, e2, []string{"203.0.113.0/29"})
		e1.announce("8.8.8.0/24", 0)
		receives(t, e2, []string{"203.0.113.0/29", "8.8.8.0/24"})
		receives(t, e1, []string{"198.51.100.0/29", "9.9.9.0/24"})
	})
	t.Run("a session loss withdraws its routes from the other side", func(t *testing.T) {
		e2.setSession(false)
		receives(t, e1, []string{"198.51.100.0/29"})
	})
}
