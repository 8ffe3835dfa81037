package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/peergate/peergate/controlplane/compile"
	"github.com/peergate/peergate/controlplane/server"
	"github.com/peergate/peergate/controlplane/store"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

const vpcs = `kind: Vpc
apiVersion: kubeovn.io/v1
metadata:
  name: vpc-1
spec: {}
---
kind: Subnet
apiVersion: kubeovn.io/v1
metadata:
  name: net1
spec:
  vpc: vpc-1
  cidrBlock: 10.0.0.0/16
`

const subnetChanged = `kind: Subnet
apiVersion: kubeovn.io/v1
metadata:
  name: net1
spec:
  vpc: vpc-1
  cidrBlock: 10.1.0.0/16
`

const pod = `apiVersion: v1
kind: Pod
metadata:
  name: p
`

const unknownField = `kind: Subnet
apiVersion: kubeovn.io/v1
metadata:
  name: net9
spec:
  vpc: vpc-1
  cidr: 10.9.0.0/16
`

type env struct {
	st     *store.Store // nil without a state dir
	srv    *server.Server
	client apiv1.GatewayClient
	cc     *grpc.ClientConn
}

func start(t *testing.T, stateDir string) env {
	t.Helper()
	var st *store.Store
	if stateDir != "" {
		var err error
		if st, err = store.Open(stateDir, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	s, err := server.New(server.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	// Before the store closes and its directory goes.
	t.Cleanup(s.WaitSaved)
	g := grpc.NewServer(s.GRPCOptions()...)
	s.Register(g)
	ln := bufconn.Listen(1 << 20)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return env{st: st, srv: s, client: apiv1.NewGatewayClient(cc), cc: cc}
}

func apply(t *testing.T, e env, dryRun bool, docs ...string) *apiv1.ApplyResponse {
	t.Helper()
	req := &apiv1.ApplyRequest{DryRun: dryRun}
	for i, d := range docs {
		req.Documents = append(req.Documents, &apiv1.Document{File: []string{"a.yaml", "b.yaml", "c.yaml"}[i], Yaml: d})
	}
	resp, err := e.client.Apply(context.Background(), req)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return resp
}

func changes(r interface{ GetResults() []*apiv1.ObjectResult }) string {
	var out []string
	for _, o := range r.GetResults() {
		out = append(out, o.GetKey().GetKind()+"/"+o.GetKey().GetName()+"="+strings.TrimPrefix(o.GetChange().String(), "CHANGE_"))
	}
	return strings.Join(out, " ")
}

func generation(t *testing.T, e env) uint64 {
	t.Helper()
	st, err := e.client.Status(context.Background(), &apiv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetGeneration()
}

func TestApplyCountsGenerationsOnlyForRealChanges(t *testing.T) {
	e := start(t, "")
	steps := []struct {
		name    string
		doc     string
		wantGen uint64
		want    string
	}{
		{"new objects are created", vpcs, 1, "Vpc/vpc-1=CREATED Subnet/net1=CREATED"},
		{"the same objects again change nothing", vpcs, 1, "Vpc/vpc-1=UNCHANGED Subnet/net1=UNCHANGED"},
		{"a changed object is configured", subnetChanged, 2, "Subnet/net1=CONFIGURED"},
		{"comments and layout change nothing (a backup from get objects -o yaml)",
			"# generation 2\n" + "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {name: net1}\nspec:\n  cidrBlock: 10.1.0.0/16  # moved\n  vpc: vpc-1\n",
			2, "Subnet/net1=UNCHANGED"},
		{"a Pod is created", pod, 3, "Pod/p=CREATED"},
		{"a Pod's comments change nothing", "# a comment\n" + pod, 3, "Pod/p=UNCHANGED"},
		{"a Pod's other text is configured", pod + "  labels: {app: x}\n", 4, "Pod/p=CONFIGURED"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := apply(t, e, false, s.doc)
			if !r.GetAccepted() || r.GetGeneration() != s.wantGen || changes(r) != s.want {
				t.Fatalf("Apply = accepted %v, generation %d, %q; want generation %d, %q (errors %v)",
					r.GetAccepted(), r.GetGeneration(), changes(r), s.wantGen, s.want, r.GetErrors())
			}
		})
	}
	if got := e.srv.Hub().Current().GetGeneration(); got != 4 {
		t.Errorf("published generation = %d, want 4", got)
	}
}

func TestARejectedApplyChangesNothing(t *testing.T) {
	e := start(t, "")
	apply(t, e, false, vpcs)
	r := apply(t, e, false, subnetChanged, unknownField)
	if r.GetAccepted() || len(r.GetErrors()) == 0 {
		t.Fatalf("Apply = accepted %v with errors %v, want rejected", r.GetAccepted(), r.GetErrors())
	}
	if r.GetGeneration() != 1 {
		t.Errorf("generation after rejection = %d, want 1", r.GetGeneration())
	}
	if text := r.GetErrors()[0].GetText(); !strings.Contains(text, "b.yaml") || !strings.Contains(text, "cidr") {
		t.Errorf("error %q does not name the file and the field", text)
	}
	list, _ := e.client.List(context.Background(), &apiv1.ListRequest{Kind: "Subnet"})
	if n := len(list.GetObjects()); n != 1 || list.GetObjects()[0].GetSubnet().GetCidrBlock() != "10.0.0.0/16" {
		t.Errorf("subnets after rejection = %v, want net1 10.0.0.0/16 only", list.GetObjects())
	}
	st, _ := e.client.Status(context.Background(), &apiv1.StatusRequest{})
	if st.GetAppliesRejected() != 1 || st.GetLastError() == "" {
		t.Errorf("status = rejected %d, last error %q; want 1 and the error", st.GetAppliesRejected(), st.GetLastError())
	}
}

func TestDryRunValidatesWithoutApplying(t *testing.T) {
	e := start(t, "")
	r := apply(t, e, true, vpcs)
	if !r.GetAccepted() || !r.GetDryRun() || r.GetGeneration() != 0 {
		t.Fatalf("dry run = accepted %v, dry %v, generation %d; want accepted at generation 0", r.GetAccepted(), r.GetDryRun(), r.GetGeneration())
	}
	list, _ := e.client.List(context.Background(), &apiv1.ListRequest{})
	if len(list.GetObjects()) != 0 {
		t.Errorf("dry run stored %d objects", len(list.GetObjects()))
	}
	if r := apply(t, e, true, unknownField); r.GetAccepted() {
		t.Error("dry run of an invalid document was accepted")
	}
	if st, _ := e.client.Status(context.Background(), &apiv1.StatusRequest{}); st.GetAppliesRejected() != 0 {
		t.Error("a rejected dry run counted as a rejected apply")
	}
}

func TestARestartedServerFindsTheSameConfigurationAndGeneration(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	apply(t, e, false, vpcs)
	apply(t, e, false, subnetChanged)
	want, _ := e.client.List(context.Background(), &apiv1.ListRequest{})

	e.st.Close() // the first controlplane stops: its lock on dir goes
	e2 := start(t, dir)
	got, _ := e2.client.List(context.Background(), &apiv1.ListRequest{})
	if got.GetGeneration() != 2 {
		t.Errorf("generation after restart = %d, want 2", got.GetGeneration())
	}
	if len(got.GetObjects()) != len(want.GetObjects()) {
		t.Fatalf("objects after restart = %d, want %d", len(got.GetObjects()), len(want.GetObjects()))
	}
	for i := range want.GetObjects() {
		if string(got.GetObjects()[i].GetYaml()) != string(want.GetObjects()[i].GetYaml()) || got.GetObjects()[i].GetFile() != want.GetObjects()[i].GetFile() {
			t.Errorf("object %d after restart = %s from %s, want %s from %s", i, got.GetObjects()[i].GetYaml(), got.GetObjects()[i].GetFile(),
				want.GetObjects()[i].GetYaml(), want.GetObjects()[i].GetFile())
		}
	}
	if g := e2.srv.Hub().Current().GetGeneration(); g != 2 {
		t.Errorf("tables published after restart = generation %d, want 2", g)
	}
}

func TestDeleteRemovesObjectsAndReportsUnknownOnes(t *testing.T) {
	e := start(t, "")
	apply(t, e, false, vpcs)
	r, err := e.client.Delete(context.Background(), &apiv1.DeleteRequest{Keys: []*apiv1.ObjectKey{
		{Kind: "Subnet", Name: "net1"}, {Kind: "Subnet", Name: "nope"}, {Kind: "Subnet", Name: "net1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetAccepted() || r.GetGeneration() != 2 || changes(r) != "Subnet/net1=DELETED Subnet/nope=NOT_FOUND" {
		t.Fatalf("Delete = accepted %v, generation %d, %q", r.GetAccepted(), r.GetGeneration(), changes(r))
	}
	_, err = e.client.Delete(context.Background(), &apiv1.DeleteRequest{Keys: []*apiv1.ObjectKey{{Kind: "Bogus", Name: "x"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Delete of an unknown kind = %v, want InvalidArgument", err)
	}
}

func TestTypedObjectsApplyLikeDocuments(t *testing.T) {
	e := start(t, "")
	stateless := true
	req := &apiv1.ApplyRequest{Objects: []*apiv1.Object{
		{Metadata: &apiv1.Metadata{Name: "vpc-1"}, Spec: &apiv1.Object_KubeovnVpc{KubeovnVpc: &apiv1.KubeOvnVpcSpec{}}},
		{Metadata: &apiv1.Metadata{Name: "net1"}, Spec: &apiv1.Object_Subnet{Subnet: &apiv1.SubnetSpec{Vpc: "vpc-1", CidrBlock: "10.0.0.0/16"}}},
		{Metadata: &apiv1.Metadata{Name: "vpc-2"}, Spec: &apiv1.Object_KubeovnVpc{KubeovnVpc: &apiv1.KubeOvnVpcSpec{}}},
		{Metadata: &apiv1.Metadata{Name: "net2"}, Spec: &apiv1.Object_Subnet{Subnet: &apiv1.SubnetSpec{Vpc: "vpc-2", CidrBlock: "10.2.0.0/16"}}},
		{Metadata: &apiv1.Metadata{Name: "p"}, Spec: &apiv1.Object_Peering{Peering: &apiv1.PeeringSpec{Sides: []*apiv1.PeeringSide{
			{Vpc: "vpc-1", Ips: []*apiv1.PeeringIP{{Match: &apiv1.PeeringIP_Cidr{Cidr: "10.0.0.0/24"}}},
				Ingress: []*apiv1.IngressRule{{Allow: &apiv1.Allow{Stateless: &stateless, Tcp: &apiv1.PortMatch{DstPort: 443}}}}},
			{Vpc: "vpc-2", Ips: []*apiv1.PeeringIP{{Match: &apiv1.PeeringIP_Cidr{Cidr: "10.2.0.0/24"}}, {Match: &apiv1.PeeringIP_Not{Not: "10.2.0.1/32"}}}},
		}}}},
	}}
	r, err := e.client.Apply(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetAccepted() || len(r.GetResults()) != 5 {
		t.Fatalf("Apply = %v, want 5 results", r)
	}
	list, _ := e.client.List(context.Background(), &apiv1.ListRequest{Kind: "Peering", Name: "p"})
	if len(list.GetObjects()) != 1 {
		t.Fatalf("List(Peering p) = %v", list)
	}
	p := list.GetObjects()[0]
	sides := p.GetPeering().GetSides()
	if len(sides) != 2 || sides[0].GetVpc() != "vpc-1" || sides[0].GetIngress()[0].GetAllow().GetTcp().GetDstPort() != 443 ||
		sides[1].GetIps()[1].GetNot() != "10.2.0.1/32" {
		t.Errorf("peering read back = %v", sides)
	}
	if !strings.Contains(string(p.GetYaml()), "dstPort: 443") {
		t.Errorf("peering YAML = %s, want dstPort: 443", p.GetYaml())
	}
	if p.GetKey().GetApiVersion() != "gateway.githedgehog.com/v1alpha1" {
		t.Errorf("peering key = %v", p.GetKey())
	}
}

func TestAnEmptyApplyIsAnInvalidArgument(t *testing.T) {
	e := start(t, "")
	_, err := e.client.Apply(context.Background(), &apiv1.ApplyRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Apply{} = %v, want InvalidArgument", err)
	}
}

func TestARequestOverTheSizeLimitIsRefused(t *testing.T) {
	e := start(t, "")
	big := strings.Repeat("#", server.MaxRequestBytes+1)
	_, err := e.client.Apply(context.Background(), &apiv1.ApplyRequest{Documents: []*apiv1.Document{{Yaml: big}}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Apply(17 MiB) = %v, want ResourceExhausted", err)
	}
}

func TestUnknownVPCRoutesAreNotFound(t *testing.T) {
	e := start(t, "")
	_, err := e.client.GetRoutes(context.Background(), &apiv1.GetRoutesRequest{Vpc: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetRoutes(nope) = %v, want NotFound", err)
	}
}

func TestHealthReportsServing(t *testing.T) {
	e := start(t, "")
	for _, svc := range []string{"", "peergate.api.v1.Gateway", "peergate.tables.v1.TablePush"} {
		r, err := healthpb.NewHealthClient(e.cc).Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", svc, r, err)
		}
	}
}

func TestLearnedRoutesPublishANewGeneration(t *testing.T) {
	e := start(t, t.TempDir())
	apply(t, e, false, vpcs)
	if err := e.srv.SetLearned(compile.Learned{}); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, e); g != 2 {
		t.Errorf("generation after SetLearned = %d, want 2", g)
	}
	if g := e.srv.Hub().Current().GetGeneration(); g != 2 {
		t.Errorf("published generation = %d, want 2", g)
	}
}

func TestLearnedGenerationsArePersistedInTheBackground(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	apply(t, e, false, vpcs)
	for range 5 {
		if err := e.srv.SetLearned(compile.Learned{}); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.WaitSaved()
	st, err := e.st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Generation != 6 || len(st.Objects) == 0 {
		t.Errorf("stored generation %d with %d objects, want 6 with the applied ones", st.Generation, len(st.Objects))
	}
	// A configuration change after them is saved before it is live, and
	// no late learned generation overwrites it.
	apply(t, e, false, subnetChanged)
	e.srv.WaitSaved()
	if st, err = e.st.Load(); err != nil {
		t.Fatal(err)
	}
	if want := generation(t, e); st.Generation != want {
		t.Errorf("stored generation %d, want the live %d", st.Generation, want)
	}
}

func TestReflectionListsTheServices(t *testing.T) {
	e := start(t, "")
	stream, err := reflectionpb.NewServerReflectionClient(e.cc).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"peergate.api.v1.Gateway", "peergate.tables.v1.TablePush", "grpc.health.v1.Health"} {
		if !strings.Contains(got, want) {
			t.Errorf("reflection lists %q, want %s among them", got, want)
		}
	}
}

func TestConcurrentChangesGetDistinctGenerations(t *testing.T) {
	e := start(t, t.TempDir())
	apply(t, e, false, vpcs)
	const n = 8
	errc := make(chan error, 2*n)
	for i := range n {
		go func() {
			doc := strings.Replace(subnetChanged, "10.1.0.0/16", fmt.Sprintf("10.%d.0.0/16", 10+i), 1)
			_, err := e.client.Apply(context.Background(), &apiv1.ApplyRequest{Documents: []*apiv1.Document{{File: "x.yaml", Yaml: doc}}})
			errc <- err
		}()
		go func() { errc <- e.srv.SetLearned(compile.Learned{}) }()
	}
	for range 2 * n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if g := generation(t, e); g != 1+2*n {
		t.Errorf("generation = %d, want %d (one per change)", g, 1+2*n)
	}
	if g := e.srv.Hub().Current().GetGeneration(); g != 1+2*n {
		t.Errorf("published generation = %d, want %d", g, 1+2*n)
	}
}
