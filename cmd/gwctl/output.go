package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// printProto writes m as indented JSON or as YAML (o.output).
func printProto(o *opts, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return printJSONBytes(o, b)
}

// printValue writes a Go value as indented JSON or as YAML.
func printValue(o *opts, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return printJSONBytes(o, b)
}

func printJSONBytes(o *opts, b []byte) error {
	if o.output == "yaml" {
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = o.stdout.Write(y)
		return err
	}
	_, err := fmt.Fprintf(o.stdout, "%s\n", b)
	return err
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// view is the part of a Tables message the route printer needs.
type view struct {
	generation uint64
	vpcs       []*tablesv1.Vpc
	names      []string // VPC names by id
	ports      []*tablesv1.Port
	natTables  []*tablesv1.NatTable
	natPools   []*tablesv1.NatPool
	filters    []*tablesv1.Filter
}

func tablesView(t *tablesv1.Tables) view {
	v := view{generation: t.GetGeneration(), vpcs: t.GetVpcs(), ports: t.GetPorts(),
		natTables: t.GetNatTables(), natPools: t.GetNatPools(), filters: t.GetFilters()}
	for _, x := range t.GetVpcs() {
		v.names = append(v.names, x.GetName())
	}
	return v
}

func printTables(o *opts, t *tablesv1.Tables) error {
	if o.output != "table" {
		return printProto(o, t)
	}
	w := o.stdout
	if g := t.GetGateway(); g != nil {
		fmt.Fprintf(w, "GATEWAY  asn %d  router-id %s  vtep %s\n", g.GetAsn(), orDash(g.GetRouterId()), orDash(g.GetVtepIp()))
	}
	if len(t.GetPorts()) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "PORT\tID\tDEVICE\tMAC\tIPS\tMTU")
		for _, p := range t.GetPorts() {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\n", p.GetName(), p.GetId(), p.GetDevice(), orDash(p.GetMac()), list(p.GetIps()), p.GetMtu())
		}
		tw.Flush()
	}
	printView(w, tablesView(t))
	return nil
}

func printView(w io.Writer, v view) {
	fmt.Fprintf(w, "generation %d\n", v.generation)
	for _, x := range v.vpcs {
		fmt.Fprintf(w, "\nVPC %s (id %d)  %s\n", x.GetName(), x.GetId(), v.attachment(x.GetAttachment()))
		ext := ""
		if x.GetExternal() {
			ext = "  external"
		}
		fmt.Fprintf(w, "  subnets %s  router-ips %s%s\n", list(x.GetSubnets()), list(x.GetRouterIps()), ext)
		fmt.Fprintf(w, "  routes from %s's hosts:\n", x.GetName())
		v.printRoutes(w, x.GetRoutes())
		fmt.Fprintf(w, "  local routes (delivery inside %s):\n", x.GetName())
		v.printRoutes(w, x.GetLocalRoutes())
	}
	if len(v.natTables) > 0 {
		fmt.Fprintln(w, "\nNAT TABLES (stateless, source side)")
		for i, nt := range v.natTables {
			var segs []string
			for _, s := range nt.GetSegments() {
				if s.GetFrom() == s.GetTo() {
					segs = append(segs, s.GetFrom())
				} else {
					segs = append(segs, s.GetFrom()+" -> "+s.GetTo())
				}
			}
			fmt.Fprintf(w, "  #%d  %s\n", i+1, strings.Join(segs, ", "))
		}
	}
	if len(v.natPools) > 0 {
		fmt.Fprintln(w, "\nNAT POOLS (stateful)")
		for i, p := range v.natPools {
			fmt.Fprintf(w, "  #%d  vpc %s  %s\n", i+1, v.name(p.GetVpc()), list(p.GetPrefixes()))
		}
	}
	if len(v.filters) > 0 {
		fmt.Fprintln(w, "\nFILTERS (ingress)")
		for i, f := range v.filters {
			var rules []string
			for _, r := range f.GetRules() {
				rules = append(rules, rule(r))
			}
			fmt.Fprintf(w, "  #%d  allow %s\n", i+1, strings.Join(rules, " | "))
		}
	}
}

func (v view) name(id uint32) string {
	if int(id) < len(v.names) {
		return v.names[id]
	}
	return fmt.Sprintf("vpc#%d", id)
}

func (v view) port(id uint32) string {
	if int(id) < len(v.ports) {
		return v.ports[id].GetName()
	}
	return fmt.Sprintf("port#%d", id)
}

func (v view) attachment(a *tablesv1.Attachment) string {
	switch a.GetKind() {
	case tablesv1.Attachment_KIND_VXLAN:
		return fmt.Sprintf("vxlan port %s vni %d vteps %s", v.port(a.GetPortId()), a.GetVni(), list(a.GetVteps()))
	case tablesv1.Attachment_KIND_VLAN:
		return fmt.Sprintf("vlan port %s id %d", v.port(a.GetPortId()), a.GetVlan())
	case tablesv1.Attachment_KIND_UNTAGGED:
		return fmt.Sprintf("untagged port %s", v.port(a.GetPortId()))
	}
	return "not attached"
}

func (v view) printRoutes(w io.Writer, routes []*tablesv1.Route) {
	if len(routes) == 0 {
		fmt.Fprintln(w, "    (none)")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "    PREFIX\tMATCH\tMETRIC\tSOURCE\tACTION")
	for _, r := range routes {
		match := "dst"
		if r.GetMatchSource() {
			match = "src"
		}
		acts := r.GetActions()
		if len(acts) == 0 {
			fmt.Fprintf(tw, "    %s\t%s\t%d\t%s\t%s\n", r.GetPrefix(), match, r.GetMetric(), r.GetSource(), "(no action)")
			continue
		}
		for i, a := range acts {
			s := v.action(a)
			if len(acts) > 1 {
				s = fmt.Sprintf("ecmp %d/%d: %s", i+1, len(acts), s)
			}
			if i == 0 {
				fmt.Fprintf(tw, "    %s\t%s\t%d\t%s\t%s\n", r.GetPrefix(), match, r.GetMetric(), r.GetSource(), s)
			} else {
				fmt.Fprintf(tw, "    \t\t\t\t%s\n", s)
			}
		}
	}
	tw.Flush()
}

func (v view) action(a *tablesv1.Action) string {
	var parts []string
	switch a.GetKind() {
	case tablesv1.ActionKind_ACTION_FORWARD:
		parts = append(parts, "forward to "+v.name(a.GetDstVpc()))
	case tablesv1.ActionKind_ACTION_DELIVER:
		parts = append(parts, "deliver")
		if a.GetVia() != "" {
			parts = append(parts, "via "+a.GetVia())
		}
	case tablesv1.ActionKind_ACTION_DROP:
		parts = append(parts, "drop")
	case tablesv1.ActionKind_ACTION_LOCAL:
		parts = append(parts, "local")
	default:
		parts = append(parts, a.GetKind().String())
	}
	if n := a.GetTtlDecrement(); n > 0 && a.GetKind() == tablesv1.ActionKind_ACTION_FORWARD {
		parts = append(parts, fmt.Sprintf("ttl-%d", n))
	}
	if a.GetPeering() != "" {
		parts = append(parts, "peering "+a.GetPeering())
	}
	if a.GetDstNat() != "" {
		parts = append(parts, "dnat "+a.GetDstNat())
	}
	if a.GetSrcNat() != 0 {
		parts = append(parts, fmt.Sprintf("snat table #%d", a.GetSrcNat()))
	}
	if a.GetSnatPool() != 0 {
		parts = append(parts, fmt.Sprintf("masquerade pool #%d", a.GetSnatPool()))
	}
	if a.GetReversePool() != 0 {
		parts = append(parts, fmt.Sprintf("reply of pool #%d", a.GetReversePool()))
	}
	if a.GetIngressFilter() != 0 {
		parts = append(parts, fmt.Sprintf("filter #%d", a.GetIngressFilter()))
	}
	return strings.Join(parts, ", ")
}

func rule(r *tablesv1.FilterRule) string {
	var parts []string
	switch r.GetProtocol() {
	case tablesv1.FilterRule_PROTOCOL_TCP:
		parts = append(parts, "tcp")
	case tablesv1.FilterRule_PROTOCOL_UDP:
		parts = append(parts, "udp")
	default:
		parts = append(parts, "any")
	}
	if r.GetSrcPort() != 0 {
		parts = append(parts, fmt.Sprintf("src-port %d", r.GetSrcPort()))
	}
	if r.GetDstPort() != 0 {
		parts = append(parts, fmt.Sprintf("dst-port %d", r.GetDstPort()))
	}
	if r.GetStateless() {
		parts = append(parts, "stateless")
	} else {
		parts = append(parts, "stateful")
	}
	return strings.Join(parts, " ")
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// protoMessage is proto.Message, named for the interfaces of remote.go.
type protoMessage = proto.Message
