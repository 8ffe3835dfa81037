package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/peergate/peergate/controlplane/server"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

const (
	kubeOVN    = "../../testdata/manifests/kube-ovn-vpc-peering"
	externalAs = "../../testdata/manifests/peering-api-3-external-as"
)

type result struct {
	code           int
	stdout, stderr string
}

func gwctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestOfflineCommands(t *testing.T) {
	badYAML := "kind: Subnet\napiVersion: kubeovn.io/v1\nmetadata: {name: n}\nspec: {vpc: v, cidrBlock: 10.0.0.0/8, bogus: 1}\n"
	cases := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"validate accepts the Kube-OVN example and prints its warnings on stderr", "", []string{"validate", "-f", kubeOVN}, 0, "valid: 2 VPCs", "warning: "},
		{"validate rejects the third Peering use case with the explanation", "", []string{"validate", "-f", externalAs}, 1, "", "fourth use case"},
		{"validate names the file and field of an unknown field", badYAML, []string{"validate", "-f", "-"}, 1, "", "<stdin>"},
		{"validate without files is a usage error", "", []string{"validate"}, 2, "", "no manifests given"},
		{"validate of a missing file fails", "", []string{"validate", "-f", "/nonexistent.yaml"}, 1, "", "no such file"},
		{"compile prints tables", "", []string{"compile", "-f", kubeOVN}, 0, "VPC vpc-1 (id 0)", ""},
		{"compile refuses an unknown output format", "", []string{"compile", "-f", kubeOVN, "-o", "xml"}, 2, "", `-o "xml"`},
		{"compile of invalid manifests fails", "", []string{"compile", "-f", externalAs}, 1, "", "error: "},
		{"an unknown command is a usage error", "", []string{"frobnicate"}, 2, "", "unknown command"},
		{"help prints the commands", "", []string{"help"}, 0, "validate -f PATH", ""},
		{"help help prints the commands", "", []string{"help", "help"}, 0, "validate -f PATH", ""},
		{"--help of a command prints its help on stdout", "", []string{"apply", "--help"}, 0, "gwctl apply -f PATH", ""},
		{"help of a command prints its flags", "", []string{"help", "get"}, 0, "--server ADDR", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := gwctl(t, c.stdin, c.args...)
			if r.code != c.wantCode || !strings.Contains(r.stdout, c.wantStdout) || !strings.Contains(r.stderr, c.wantStderr) {
				t.Fatalf("gwctl %v = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
					c.args, r.code, r.stdout, r.stderr, c.wantCode, c.wantStdout, c.wantStderr)
			}
		})
	}
}

// The overview of gwctl --help names what each command's own help does:
// every form of its usage line (get's subjects, the output formats).
func TestMainUsageShowsEveryCommandsForms(t *testing.T) {
	for _, c := range commands() {
		line := ""
		for _, l := range strings.Split(mainUsage, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == c.name {
				line = l
				break
			}
		}
		if line == "" {
			t.Errorf("gwctl --help does not list %s", c.name)
			continue
		}
		for _, form := range strings.FieldsFunc(c.usage, func(r rune) bool { return strings.ContainsRune(" []|", r) }) {
			if strings.Contains(line, "-o FMT") && slices.Contains([]string{"table", "json", "yaml"}, form) {
				continue // FMT is explained below the list
			}
			if !strings.Contains(line, form) {
				t.Errorf("gwctl --help line %q lacks %q of %q", strings.TrimSpace(line), form, c.usage)
			}
		}
	}
}

func TestCompileJSONIsTheTablesMessage(t *testing.T) {
	r := gwctl(t, "", "compile", "-f", kubeOVN, "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var tb tablesv1.Tables
	if err := protojson.Unmarshal([]byte(r.stdout), &tb); err != nil {
		t.Fatalf("output is not a Tables message: %v", err)
	}
	if len(tb.GetVpcs()) != 2 {
		t.Errorf("tables hold %d VPCs, want 2", len(tb.GetVpcs()))
	}
}

// startServer runs the controlplane's API in process on a unix socket.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := server.New(server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, s)
}

func serve(t *testing.T, s *server.Server) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gwctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "cp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(s.GRPCOptions()...)
	s.Register(g)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return "unix://" + sock
}

func TestRemoteCommands(t *testing.T) {
	addr := startServer(t)
	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"get status before any apply shows generation 0", []string{"get", "status"}, 0, "generation:        0", ""},
		{"a dry run applies nothing", []string{"apply", "--dry-run", "-f", kubeOVN}, 0, "Vpc/vpc-1 created (dry run)", "dry run: valid"},
		{"apply creates the objects", []string{"apply", "-f", kubeOVN}, 0, "generation 1", ""},
		{"apply again changes nothing", []string{"apply", "-f", kubeOVN}, 0, "Vpc/vpc-1 unchanged", ""},
		{"an invalid apply is rejected and says what stays live", []string{"apply", "-f", externalAs}, 1, "", "generation 1 stays live"},
		{"get vpcs lists both VPCs", []string{"get", "vpcs"}, 0, "vxlan port fabric vni 100", ""},
		{"get peerings shows the Kube-OVN pair", []string{"get", "peerings"}, 0, "vpc-1<->vpc-2", ""},
		{"get routes shows the peering route", []string{"get", "routes", "vpc-2"}, 0, "10.0.0.0/16", ""},
		{"get routes of an unknown VPC fails", []string{"get", "routes", "nope"}, 1, "", "no VPC"},
		{"get routes -o json prints the response", []string{"get", "routes", "vpc-1", "-o", "json"}, 0, `"vpcNames"`, ""},
		{"get objects -o yaml prints a manifest", []string{"get", "objects", "-o", "yaml"}, 0, "cidrBlock: 10.0.0.0/16", ""},
		{"get status counts the rejection", []string{"get", "status"}, 0, "applies rejected:  1", ""},
		{"get of an unknown resource is a usage error", []string{"get", "gizmos"}, 2, "", "unknown resource"},
		{"stats without dataplanes says so", []string{"stats"}, 0, "no dataplane", ""},
		{"get bgp without a speaker says why", []string{"get", "bgp"}, 0, "not running", ""},
		{"get bgp -o json prints the response", []string{"get", "bgp", "-o", "json"}, 0, "{", ""},
		{"delete of an ambiguous kind is a usage error", []string{"delete", "vpc", "vpc-1"}, 2, "", "ambiguous"},
		{"a delete that breaks references is rejected", []string{"delete", "gateway", "gateway"}, 1, "", "stays live"},
		{"get objects pod lists the Pods", []string{"get", "objects", "pod"}, 0, "vpc-2-pod", ""},
		{"delete Pod by kind and name", []string{"delete", "Pod", "vpc-2-pod"}, 0, "Pod/vpc-2-pod deleted", ""},
		{"delete of the pods succeeds", []string{"delete", "-f", kubeOVN + "/kube-ovn-vpc-peering-3-pods.yaml"}, 0, "Pod/vpc-1-pod deleted", ""},
		{"delete of a missing object reports it", []string{"delete", "Peering", "nope"}, 0, "Peering/nope not found", ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := gwctl(t, "", append([]string{"--server", addr}, s.args...)...)
			if r.code != s.wantCode || !strings.Contains(r.stdout, s.wantStdout) || !strings.Contains(r.stderr, s.wantStderr) {
				t.Fatalf("gwctl %v = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
					s.args, r.code, r.stdout, r.stderr, s.wantCode, s.wantStdout, s.wantStderr)
			}
		})
	}
}

func TestAnUnreachableServerIsExplained(t *testing.T) {
	r := gwctl(t, "", "--server", "unix:///nonexistent/cp.sock", "get", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the controlplane") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

type fakeBGP struct{}

func (fakeBGP) BGPStatus(req *apiv1.GetBGPRequest) *apiv1.GetBGPResponse {
	r := &apiv1.GetBGPResponse{Running: true, Asn: 65000, RouterId: "192.0.2.1", ListenPort: -1,
		Sessions: []*apiv1.BgpSession{
			{Vpc: "vpc-e1", Neighbor: "127.0.0.2", Port: 1790, Asn: 65101, State: "established", Up: true,
				Since: timestamppb.New(time.Now().Add(-time.Minute)), Received: 5, Accepted: 5, Learned: 5, Advertised: 1},
			{Vpc: "vpc-e2", Neighbor: "127.0.0.3", Port: 179, Asn: 65102, State: "active"},
		},
		Advertisements: []*apiv1.BgpAdvertisement{{Vpc: "vpc-e1", Count: 1}, {Vpc: "vpc-e2", Count: 1}},
	}
	if req.GetAdvertised() {
		for _, a := range r.Advertisements {
			a.Prefixes = []string{"192.168.1.0/30"}
		}
	}
	return r
}

func TestGetBGPPrintsSessionsAndAdvertisements(t *testing.T) {
	s, err := server.New(server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetBGP(fakeBGP{})
	addr := serve(t, s)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"the table shows each session with its state and counts", []string{"get", "bgp"},
			[]string{"asn 65000  router-id 192.0.2.1  connects out only", "vpc-e1  127.0.0.2:1790  65101  established  1m0s", "vpc-e2  127.0.0.3:179", "never up", "advertised to vpc-e1's neighbours: 1 prefixes"}},
		{"--advertised lists the prefixes", []string{"get", "bgp", "--advertised"}, []string{"  192.168.1.0/30"}},
		{"-o json is the API response", []string{"get", "bgp", "-o", "json"}, []string{`"established"`, `"listenPort"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := gwctl(t, "", append([]string{"--server", addr}, c.args...)...)
			for _, w := range c.want {
				if r.code != 0 || !strings.Contains(r.stdout, w) {
					t.Fatalf("gwctl %v = exit %d\nstdout:\n%s\nstderr:\n%s\nwant %q", c.args, r.code, r.stdout, r.stderr, w)
				}
			}
		})
	}
}
