package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peergate/peergate/controlplane/manifest"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

func applyCmd() *command {
	return &command{
		name:    "apply",
		summary: "apply manifests to the controlplane",
		usage:   "-f PATH... [--dry-run] [-o text|json]",
		remote:  true,
		help: `Sends the manifests to the controlplane, which merges them into its
configuration (an object replaces the stored object of the same kind and
name), validates and compiles the result as a whole and, when it is valid,
persists it and pushes the new tables to every dataplane. An invalid
configuration is rejected whole: every error is printed on stderr, the
running generation stays live, and gwctl exits 1.

--dry-run validates the merged configuration without applying it.

Example:
  gwctl apply -f testdata/manifests/kube-ovn-vpc-peering/
`,
		flags: func(fs *flag.FlagSet, o *opts) {
			filesFlag(fs, o)
			fs.BoolVar(&o.dryRun, "dry-run", false, "validate against the running configuration; apply nothing")
			outputFlag(fs, o, "text", "json")
		},
		run: func(ctx context.Context, o *opts, args []string) error {
			if err := checkOutput(o, "text", "json"); err != nil {
				return err
			}
			docs, err := readPaths(o, args)
			if err != nil {
				return err
			}
			req := &apiv1.ApplyRequest{DryRun: o.dryRun}
			for _, d := range docs {
				if !utf8.Valid(d.data) {
					return fmt.Errorf("%s: not UTF-8 text; manifests are UTF-8 YAML", d.file)
				}
				req.Documents = append(req.Documents, &apiv1.Document{File: d.file, Yaml: string(d.data)})
			}
			resp, err := o.client.Apply(ctx, req)
			if err != nil {
				return err
			}
			return report(o, resp)
		},
	}
}

// change is what Apply and Delete responses have in common.
type change interface {
	GetAccepted() bool
	GetGeneration() uint64
	GetWarnings() []*apiv1.Diagnostic
	GetErrors() []*apiv1.Diagnostic
	GetResults() []*apiv1.ObjectResult
	GetDryRun() bool
}

func report(o *opts, resp interface {
	change
	protoMessage
}) error {
	for _, w := range resp.GetWarnings() {
		fmt.Fprintf(o.stderr, "warning: %s\n", w.GetText())
	}
	for _, e := range resp.GetErrors() {
		fmt.Fprintf(o.stderr, "error: %s\n", e.GetText())
	}
	if o.output == "json" {
		if err := printProto(o, resp); err != nil {
			return err
		}
	} else {
		suffix := ""
		if resp.GetDryRun() {
			suffix = " (dry run)"
		}
		for _, r := range resp.GetResults() {
			word := strings.ToLower(strings.TrimPrefix(r.GetChange().String(), "CHANGE_"))
			word = strings.ReplaceAll(word, "_", " ")
			fmt.Fprintf(o.stdout, "%s/%s %s%s\n", r.GetKey().GetKind(), r.GetKey().GetName(), word, suffix)
		}
	}
	switch {
	case !resp.GetAccepted():
		fmt.Fprintf(o.stderr, "rejected: %d errors; nothing changed, generation %d stays live\n", len(resp.GetErrors()), resp.GetGeneration())
		return errInvalid
	case resp.GetDryRun():
		fmt.Fprintf(o.stderr, "dry run: valid, nothing applied (generation %d is live)\n", resp.GetGeneration())
	case o.output != "json":
		fmt.Fprintf(o.stdout, "generation %d\n", resp.GetGeneration())
	}
	return nil
}

func deleteCmd() *command {
	return &command{
		name:    "delete",
		summary: "delete objects from the controlplane's configuration",
		usage:   "-f PATH... | KIND NAME... [--dry-run] [-o text|json]",
		remote:  true,
		help: `Deletes the objects the manifests define (only their kind and name
matter), or the objects of one KIND with the given NAMEs. The remaining
configuration is validated like an apply: a deletion that leaves it
invalid (a Peering naming a deleted VPC, say) is rejected whole.
Objects that do not exist are reported as "not found".

KIND is Vpc or Subnet (Kube-OVN), Peering, Gateway or VPC (peergate);
lower case works except for "vpc", which is ambiguous.

Examples:
  gwctl delete -f peering.yaml
  gwctl delete Peering vpc-1--vpc-2
`,
		flags: func(fs *flag.FlagSet, o *opts) {
			filesFlag(fs, o)
			fs.BoolVar(&o.dryRun, "dry-run", false, "validate the deletion; apply nothing")
			outputFlag(fs, o, "text", "json")
		},
		run: func(ctx context.Context, o *opts, args []string) error {
			if err := checkOutput(o, "text", "json"); err != nil {
				return err
			}
			keys, err := deleteKeys(o, args)
			if err != nil {
				return err
			}
			resp, err := o.client.Delete(ctx, &apiv1.DeleteRequest{Keys: keys, DryRun: o.dryRun})
			if err != nil {
				return err
			}
			return report(o, resp)
		},
	}
}

func deleteKeys(o *opts, args []string) ([]*apiv1.ObjectKey, error) {
	if len(o.files) > 0 {
		if len(args) > 0 {
			return nil, usageError{"give either -f or KIND NAME..., not both"}
		}
		docs, err := readPaths(o, nil)
		if err != nil {
			return nil, err
		}
		objs, err := parseAll(o, docs)
		if err != nil {
			return nil, err
		}
		var keys []*apiv1.ObjectKey
		for _, obj := range objs {
			keys = append(keys, &apiv1.ObjectKey{ApiVersion: obj.Key.APIVersion, Kind: obj.Key.Kind, Name: obj.Key.Name})
		}
		return keys, nil
	}
	if len(args) < 2 {
		return nil, usageError{"give -f PATH or KIND NAME..."}
	}
	kind, err := canonicalKind(args[0])
	if err != nil {
		return nil, usageError{err.Error()}
	}
	var keys []*apiv1.ObjectKey
	for _, n := range args[1:] {
		keys = append(keys, &apiv1.ObjectKey{Kind: kind, Name: n})
	}
	return keys, nil
}

func canonicalKind(k string) (string, error) {
	switch k {
	case manifest.KindKubeOVNVpc, manifest.KindSubnet, manifest.KindPeering, manifest.KindGateway, manifest.KindVPC, manifest.KindPod:
		return k, nil
	}
	switch strings.ToLower(k) {
	case "subnet", "subnets":
		return manifest.KindSubnet, nil
	case "peering", "peerings":
		return manifest.KindPeering, nil
	case "gateway", "gateways":
		return manifest.KindGateway, nil
	case "pod", "pods":
		return manifest.KindPod, nil
	case "vpc", "vpcs":
		return "", fmt.Errorf("kind %q is ambiguous: Vpc (kubeovn.io/v1) or VPC (peergate.io/v1alpha1)", k)
	}
	return "", fmt.Errorf("unknown kind %q (Vpc, Subnet, Peering, Gateway, VPC, Pod)", k)
}

func getCmd() *command {
	return &command{
		name:    "get",
		summary: "show the controlplane's configuration, routes and status",
		usage:   "vpcs|peerings|routes [VPC]|bgp [VPC]|objects [KIND]|tables|status|flows [-o table|json|yaml]",
		remote:  true,
		help: `Resources:
  vpcs            every VPC of the compiled configuration: attachment, subnets,
                  router IPs, number of routes
  peerings        Peering objects and Kube-OVN vpcPeerings, one line per pair
  routes [VPC]    the compiled routes of one VPC (all VPCs without VPC), with
                  their actions, NAT and filters
  bgp [VPC]       the BGP speaker: every session of the external VPCs
                  (neighbour, state, up/down time, prefixes received,
                  accepted, learned and advertised); --advertised lists the
                  prefixes each external VPC's neighbours are told
  objects [KIND]  the stored objects; -o yaml prints them as a manifest that
                  gwctl apply takes back
  tables          the complete compiled tables the dataplanes get
  status          generation, applies accepted and rejected, and every
                  dataplane with the generation it runs
  flows           the stateful-NAT sessions of every connected dataplane
                  (inner, public and remote address, state, expiry) and its
                  session counters (created, expired, drops for a full table
                  or exhausted ports); --vpc NAME, --limit N, --dataplane ID

Examples:
  gwctl get routes vpc-1
  gwctl get bgp
  gwctl get status -o json
  gwctl get flows --vpc vpc-1 --limit 20
  gwctl get objects -o yaml > backup.yaml
`,
		flags: func(fs *flag.FlagSet, o *opts) {
			outputFlag(fs, o, "table", "json", "yaml")
			fs.BoolVar(&o.advertised, "advertised", false, "get bgp: list the advertised prefixes")
			flowsFlags(fs, o)
		},
		run: func(ctx context.Context, o *opts, args []string) error {
			if err := checkOutput(o, "table", "json", "yaml"); err != nil {
				return err
			}
			if len(args) == 0 {
				return usageError{"what to get: vpcs, peerings, routes, bgp, objects, tables or status"}
			}
			what, rest := args[0], args[1:]
			maxArgs := 0
			if what == "routes" || what == "route" || what == "objects" || what == "bgp" {
				maxArgs = 1
			}
			if len(rest) > maxArgs {
				return usageError{fmt.Sprintf("unexpected arguments %q", rest)}
			}
			arg := ""
			if len(rest) == 1 {
				arg = rest[0]
			}
			switch what {
			case "vpcs", "vpc":
				return getVPCs(ctx, o)
			case "peerings", "peering":
				return getPeerings(ctx, o)
			case "routes", "route":
				return getRoutes(ctx, o, arg)
			case "objects", "object":
				return getObjects(ctx, o, arg)
			case "tables":
				resp, err := o.client.GetTables(ctx, &apiv1.GetTablesRequest{})
				if err != nil {
					return err
				}
				return printTables(o, resp.GetTables())
			case "status":
				return getStatus(ctx, o)
			case "bgp":
				return getBGP(ctx, o, arg)
			case "flows", "flow":
				return getFlows(ctx, o)
			}
			return usageError{fmt.Sprintf("unknown resource %q: want vpcs, peerings, routes, bgp, objects, tables or status", what)}
		},
	}
}

type vpcSummary struct {
	Name       string   `json:"name"`
	ID         uint32   `json:"id"`
	Attachment string   `json:"attachment"`
	Subnets    []string `json:"subnets"`
	RouterIPs  []string `json:"routerIPs"`
	External   bool     `json:"external"`
	Routes     int      `json:"routes"`
	Local      int      `json:"localRoutes"`
}

func getVPCs(ctx context.Context, o *opts) error {
	resp, err := o.client.GetTables(ctx, &apiv1.GetTablesRequest{})
	if err != nil {
		return err
	}
	t := resp.GetTables()
	v := tablesView(t)
	var out []vpcSummary
	for _, x := range t.GetVpcs() {
		out = append(out, vpcSummary{
			Name: x.GetName(), ID: x.GetId(), Attachment: v.attachment(x.GetAttachment()), Subnets: x.GetSubnets(),
			RouterIPs: x.GetRouterIps(), External: x.GetExternal(), Routes: len(x.GetRoutes()), Local: len(x.GetLocalRoutes()),
		})
	}
	if o.output != "table" {
		return printValue(o, out)
	}
	tw := newTable(o.stdout)
	fmt.Fprintln(tw, "NAME\tATTACHMENT\tSUBNETS\tROUTER IPS\tEXTERNAL\tROUTES")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\n", s.Name, s.Attachment, list(s.Subnets), list(s.RouterIPs), s.External, s.Routes)
	}
	return tw.Flush()
}

type peeringSummary struct {
	Name    string   `json:"name"`
	Dialect string   `json:"dialect"`
	VPCs    []string `json:"vpcs"`
	Detail  []string `json:"detail"`
}

func getPeerings(ctx context.Context, o *opts) error {
	resp, err := o.client.List(ctx, &apiv1.ListRequest{})
	if err != nil {
		return err
	}
	var out []peeringSummary
	kube := map[string]*peeringSummary{}
	for _, obj := range resp.GetObjects() {
		switch {
		case obj.GetPeering() != nil:
			s := peeringSummary{Name: obj.GetKey().GetName(), Dialect: "Peering"}
			for _, side := range obj.GetPeering().GetSides() {
				s.VPCs = append(s.VPCs, side.GetVpc())
				s.Detail = append(s.Detail, sideDetail(side))
			}
			out = append(out, s)
		case obj.GetKubeovnVpc() != nil:
			local := obj.GetKey().GetName()
			for _, p := range obj.GetKubeovnVpc().GetVpcPeerings() {
				pair := []string{local, p.GetRemoteVpc()}
				sort.Strings(pair)
				name := pair[0] + "<->" + pair[1]
				s := kube[name]
				if s == nil {
					s = &peeringSummary{Name: name, Dialect: "kubeovn", VPCs: pair}
					kube[name] = s
				}
				s.Detail = append(s.Detail, local+" at "+p.GetLocalConnectIp())
			}
		}
	}
	names := make([]string, 0, len(kube))
	for n := range kube {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := kube[n]
		sort.Strings(s.Detail)
		out = append(out, *s)
	}
	if o.output != "table" {
		return printValue(o, out)
	}
	tw := newTable(o.stdout)
	fmt.Fprintln(tw, "NAME\tDIALECT\tVPCS\tDETAIL")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Dialect, strings.Join(s.VPCs, ","), strings.Join(s.Detail, "; "))
	}
	return tw.Flush()
}

func sideDetail(s *apiv1.PeeringSide) string {
	var ips []string
	for _, ip := range s.GetIps() {
		switch {
		case ip.GetCidr() != "":
			ips = append(ips, ip.GetCidr())
		case ip.GetNot() != "":
			ips = append(ips, "not "+ip.GetNot())
		case ip.GetFromVpcSubnet() != "":
			ips = append(ips, "subnet "+ip.GetFromVpcSubnet())
		}
	}
	d := s.GetVpc() + ": " + list(ips)
	if len(s.GetAs()) > 0 {
		nat := s.GetNatType()
		if nat == "" {
			nat = manifest.NatStateless
		}
		d += " as " + list(s.GetAs()) + " (" + nat + ")"
	}
	if s.GetMetric() != 0 {
		d += fmt.Sprintf(" metric %d", s.GetMetric())
	}
	if n := len(s.GetIngress()); n > 0 {
		d += fmt.Sprintf(" ingress %d rules", n)
	}
	return d
}

func getRoutes(ctx context.Context, o *opts, vpc string) error {
	resp, err := o.client.GetRoutes(ctx, &apiv1.GetRoutesRequest{Vpc: vpc})
	if err != nil {
		return err
	}
	if o.output != "table" {
		return printProto(o, resp)
	}
	printView(o.stdout, view{
		generation: resp.GetGeneration(), vpcs: resp.GetVpcs(), names: resp.GetVpcNames(), ports: resp.GetPorts(),
		natTables: resp.GetNatTables(), natPools: resp.GetNatPools(), filters: resp.GetFilters(),
	})
	return nil
}

func getObjects(ctx context.Context, o *opts, kind string) error {
	if kind != "" {
		k, err := canonicalKind(kind)
		if err != nil {
			return usageError{err.Error()}
		}
		kind = k
	}
	resp, err := o.client.List(ctx, &apiv1.ListRequest{Kind: kind})
	if err != nil {
		return err
	}
	switch o.output {
	case "json":
		return printProto(o, resp)
	case "yaml":
		// The stored YAML, as a manifest gwctl apply takes back.
		fmt.Fprintf(o.stdout, "# generation %d\n", resp.GetGeneration())
		for i, obj := range resp.GetObjects() {
			if i > 0 {
				fmt.Fprintln(o.stdout, "---")
			}
			y := obj.GetYaml()
			io.WriteString(o.stdout, y)
			if len(y) > 0 && y[len(y)-1] != '\n' {
				fmt.Fprintln(o.stdout)
			}
		}
		return nil
	}
	tw := newTable(o.stdout)
	fmt.Fprintln(tw, "KIND\tNAME\tAPI VERSION\tFROM")
	for _, obj := range resp.GetObjects() {
		k := obj.GetKey()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s:doc %d\n", k.GetKind(), k.GetName(), k.GetApiVersion(), obj.GetFile(), obj.GetDocument())
	}
	return tw.Flush()
}

func getStatus(ctx context.Context, o *opts) error {
	st, err := o.client.Status(ctx, &apiv1.StatusRequest{})
	if err != nil {
		return err
	}
	if o.output != "table" {
		return printProto(o, st)
	}
	w := o.stdout
	fmt.Fprintf(w, "generation:        %d\n", st.GetGeneration())
	fmt.Fprintf(w, "objects:           %d\n", st.GetObjects())
	fmt.Fprintf(w, "applies accepted:  %d\n", st.GetAppliesAccepted())
	fmt.Fprintf(w, "applies rejected:  %d\n", st.GetAppliesRejected())
	if st.GetLastError() != "" {
		fmt.Fprintf(w, "last rejection:    %s\n", st.GetLastError())
	}
	if st.GetLastChange() != nil {
		fmt.Fprintf(w, "last change:       %s\n", ago(st.GetLastChange().AsTime()))
	}
	if st.GetStarted() != nil {
		fmt.Fprintf(w, "started:           %s\n", ago(st.GetStarted().AsTime()))
	}
	if st.GetCompileError() != "" {
		fmt.Fprintf(w, "COMPILE ERROR:     %s\n", st.GetCompileError())
	}
	fmt.Fprintln(w)
	if len(st.GetDataplanes()) == 0 {
		fmt.Fprintln(w, "no dataplane has connected")
		return nil
	}
	connected, synced := 0, 0
	for _, d := range st.GetDataplanes() {
		if d.GetConnected() {
			connected++
			if inSync(st, d) {
				synced++
			}
		}
	}
	// Scripts wait for "in sync": print it only when it is true.
	switch {
	case connected > 0 && synced == connected:
		fmt.Fprintf(w, "dataplanes: %d connected, all in sync with generation %d\n\n", connected, st.GetGeneration())
	default:
		fmt.Fprintf(w, "dataplanes: %d connected, %d of them running generation %d\n\n", connected, synced, st.GetGeneration())
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "DATAPLANE\tPEER\tSTATE\tGENERATION\tSENT\tLAST ACK\tERROR")
	for _, d := range st.GetDataplanes() {
		lastAck := "-"
		if d.GetLastAck() != nil {
			lastAck = ago(d.GetLastAck().AsTime())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.GetId(), orDash(d.GetPeer()), dataplaneState(st, d), d.GetGeneration(), d.GetSentGeneration(), lastAck, orDash(d.GetError()))
	}
	return tw.Flush()
}

func inSync(st *apiv1.StatusResponse, d *apiv1.DataplaneStatus) bool {
	return d.GetConnected() && d.GetGeneration() == st.GetGeneration() && d.GetLastAck() != nil
}

func dataplaneState(st *apiv1.StatusResponse, d *apiv1.DataplaneStatus) string {
	switch {
	case !d.GetConnected():
		return "disconnected " + ago(d.GetDisconnectedAt().AsTime())
	case inSync(st, d):
		return "in sync"
	case d.GetError() != "":
		return "refused"
	}
	return "updating"
}

func ago(t time.Time) string {
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.RFC3339), time.Since(t).Round(time.Second))
}

func statsCmd() *command {
	return &command{
		name:    "stats",
		summary: "show the counters the dataplanes pushed",
		usage:   "[--dataplane ID] [-o table|json|yaml]",
		remote:  true,
		help: `Prints the latest counters each dataplane pushed to the controlplane
(every second by default): per port rx/tx packets, bytes and drops, per VPC
and per peering packets and bytes, drops by reason, NAT sessions.

Example:
  gwctl stats -o json
`,
		flags: func(fs *flag.FlagSet, o *opts) {
			outputFlag(fs, o, "table", "json", "yaml")
			fs.StringVar(&o.dpID, "dataplane", "", "only the dataplane with this `ID`")
		},
		run: func(ctx context.Context, o *opts, args []string) error {
			if err := checkOutput(o, "table", "json", "yaml"); err != nil {
				return err
			}
			if len(args) > 0 {
				return usageError{fmt.Sprintf("unexpected arguments %q", args)}
			}
			resp, err := o.client.Stats(ctx, &apiv1.StatsRequest{DataplaneId: o.dpID})
			if err != nil {
				return err
			}
			if o.output != "table" {
				return printProto(o, resp)
			}
			if len(resp.GetDataplanes()) == 0 {
				fmt.Fprintln(o.stdout, "no dataplane has pushed counters")
				return nil
			}
			for i, d := range resp.GetDataplanes() {
				if i > 0 {
					fmt.Fprintln(o.stdout)
				}
				printStats(o.stdout, d)
			}
			return nil
		},
	}
}

func printStats(w io.Writer, d *apiv1.DataplaneStats) {
	s := d.GetStats()
	state := "connected"
	if !d.GetConnected() {
		state = "disconnected"
	}
	fmt.Fprintf(w, "DATAPLANE %s  %s  generation %d  received %s\n", d.GetId(), state, s.GetGeneration(), ago(d.GetReceived().AsTime()))
	tw := newTable(w)
	fmt.Fprintln(tw, "PORT\tRX PACKETS\tRX BYTES\tTX PACKETS\tTX BYTES\tRX DROPPED\tTX DROPPED")
	for _, p := range s.GetPorts() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", p.GetName(), p.GetRxPackets(), p.GetRxBytes(), p.GetTxPackets(), p.GetTxBytes(), p.GetRxDropped(), p.GetTxDropped())
	}
	tw.Flush()
	for _, group := range []struct {
		title string
		cs    []*namedCounter
	}{{"VPC", counters(s.GetVpcs())}, {"PEERING", counters(s.GetPeerings())}} {
		if len(group.cs) == 0 {
			continue
		}
		fmt.Fprintln(w)
		tw := newTable(w)
		fmt.Fprintf(tw, "%s\tPACKETS\tBYTES\n", group.title)
		for _, c := range group.cs {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", c.name, c.packets, c.bytes)
		}
		tw.Flush()
	}
	printMap(w, "DROP REASON", s.GetDrops())
	printMap(w, "COUNTER", s.GetCounters())
	fmt.Fprintf(w, "\nNAT sessions: %d\n", s.GetSessions())
}

type namedCounter struct {
	name           string
	packets, bytes uint64
}

func counters[T interface {
	GetName() string
	GetPackets() uint64
	GetBytes() uint64
}](cs []T) []*namedCounter {
	var out []*namedCounter
	for _, c := range cs {
		out = append(out, &namedCounter{c.GetName(), c.GetPackets(), c.GetBytes()})
	}
	return out
}

func printMap(w io.Writer, title string, m map[string]uint64) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintf(tw, "%s\tCOUNT\n", title)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\n", k, m[k])
	}
	tw.Flush()
}

func getBGP(ctx context.Context, o *opts, vpc string) error {
	resp, err := o.client.GetBGP(ctx, &apiv1.GetBGPRequest{Vpc: vpc, Advertised: o.advertised})
	if err != nil {
		return err
	}
	if o.output != "table" {
		return printProto(o, resp)
	}
	w := o.stdout
	if !resp.GetRunning() {
		fmt.Fprintln(w, "BGP speaker not running (no Gateway with an ASN and an IPv4 router ID)")
		return nil
	}
	listen := fmt.Sprintf("listens on port %d", resp.GetListenPort())
	if resp.GetListenPort() < 0 {
		listen = "connects out only"
	}
	fmt.Fprintf(w, "BGP  asn %d  router-id %s  %s\n", resp.GetAsn(), resp.GetRouterId(), listen)
	if t := resp.GetLastLearnedCompile(); t != nil {
		fmt.Fprintf(w, "learned routes compiled: %d, %s\n", resp.GetLearnedRoutes(), ago(t.AsTime()))
	}
	fmt.Fprintln(w)
	if len(resp.GetSessions()) == 0 {
		fmt.Fprintln(w, "no BGP neighbours configured (VPCs with external: true and bgp.neighbors)")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "VPC\tNEIGHBOR\tASN\tSTATE\tUP/DOWN\tRECEIVED\tACCEPTED\tLEARNED\tADVERTISED")
	for _, s := range resp.GetSessions() {
		since := "never up"
		if t := s.GetSince(); t != nil {
			since = time.Since(t.AsTime()).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\n", s.GetVpc(), fmt.Sprintf("%s:%d", s.GetNeighbor(), s.GetPort()),
			s.GetAsn(), s.GetState(), since, s.GetReceived(), s.GetAccepted(), s.GetLearned(), s.GetAdvertised())
	}
	tw.Flush()
	for _, a := range resp.GetAdvertisements() {
		fmt.Fprintf(w, "\nadvertised to %s's neighbours: %d prefixes\n", a.GetVpc(), a.GetCount())
		for _, p := range a.GetPrefixes() {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	return nil
}
