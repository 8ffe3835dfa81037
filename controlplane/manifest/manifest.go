// Package manifest owns peergate's configuration objects: the typed kinds
// (Kube-OVN Vpc and Subnet, the Peering API's Peering, peergate's Gateway
// and VPC), strict multi-document YAML parsing with file/document/line
// context, loading from files and directories, the immutable Config set
// keyed by object identity, and marshalling back to YAML.
//
// It does not judge whether a configuration makes sense (package validate)
// nor what it means for the dataplane (package compile).
//
// Parse accepts, besides the configuration kinds, core Kubernetes `v1`
// `Pod` documents (the Kube-OVN document's workloads) as objects without a
// spec: they carry no gateway configuration, validate warns that they are
// ignored, compile skips them. Any other kind is an error.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Core Kubernetes kinds that are accepted and ignored.
const (
	CoreAPIVersion = "v1"
	KindPod        = "Pod"
)

// Parse reads the multi-document YAML in data. Unknown kinds and unknown
// fields are errors; every failing document is reported (errors.Join),
// each error naming file, document index and line.
func Parse(file string, data []byte) ([]Object, error) {
	var objs []Object
	var errs []error
	for i, d := range splitDocuments(data) {
		o, err := parseDocument(file, i, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:doc %d: %w", file, i, err))
			continue
		}
		objs = append(objs, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	text      []byte
	firstLine int // 1-based line of the file where text starts
}

// splitDocuments cuts data at document markers ("---", "...") at the start
// of a line, the way YAML does, keeping each document's first line so
// errors point into the original file. Documents holding only comments or
// blank lines are dropped and do not count.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur []byte
	start := 1
	flush := func(next int) {
		if !blank(cur) {
			docs = append(docs, document{text: cur, firstLine: start})
		}
		cur, start = nil, next
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n, line := range lines {
		lineNo := n + 1
		switch {
		case isMarker(line, "---"):
			flush(lineNo)
			// "--- value": the rest of the line belongs to the new document.
			rest := bytes.TrimLeft(line[3:], " \t")
			if len(bytes.TrimSpace(rest)) > 0 {
				cur = append(cur, rest...)
			} else {
				start = lineNo + 1
			}
		case isMarker(line, "..."):
			flush(lineNo + 1)
		default:
			cur = append(cur, line...)
		}
	}
	flush(0)
	return docs
}

func isMarker(line []byte, m string) bool {
	if !bytes.HasPrefix(line, []byte(m)) {
		return false
	}
	rest := line[len(m):]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

func blank(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// fileLines rewrites yaml.v3's document-relative "line N" into file lines.
func fileLines(err error, first int) error {
	msg := lineRE.ReplaceAllStringFunc(err.Error(), func(s string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(s, "line "))
		return "line " + strconv.Itoa(n+first-1)
	})
	return errors.New(strings.TrimPrefix(msg, "yaml: "))
}

type header struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   yaml.Node `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
}

type envelope[T any] struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       T        `yaml:"spec,omitempty"`
}

// pod accepts any Pod body: it is ignored.
type pod struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   Metadata  `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec,omitempty"`
	Status     yaml.Node `yaml:"status,omitempty"`
}

func strict[T any](d document, into *T) error {
	dec := yaml.NewDecoder(bytes.NewReader(d.text))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		return fileLines(err, d.firstLine)
	}
	return nil
}

func parseDocument(file string, idx int, d document) (o Object, err error) {
	defer func() {
		// yaml.v3 panics on a few pathological inputs; a manifest must never
		// take the process down.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML: %v", r)
		}
	}()
	var h header
	if err := yaml.Unmarshal(d.text, &h); err != nil {
		return o, fileLines(err, d.firstLine)
	}
	o.Source = Source{File: file, Index: idx}
	o.Raw = d.text
	at := fmt.Sprintf("line %d", d.firstLine)
	if h.APIVersion == "" || h.Kind == "" {
		return o, fmt.Errorf("%s: apiVersion and kind are required", at)
	}
	switch {
	case h.APIVersion == KubeOVNAPIVersion && h.Kind == KindKubeOVNVpc:
		var e envelope[KubeOVNVpcSpec]
		err = strict(d, &e)
		o.Metadata, o.KubeOVNVpc = e.Metadata, &e.Spec
	case h.APIVersion == KubeOVNAPIVersion && h.Kind == KindSubnet:
		var e envelope[SubnetSpec]
		err = strict(d, &e)
		o.Metadata, o.Subnet = e.Metadata, &e.Spec
	case h.APIVersion == PeeringAPIVersion && h.Kind == KindPeering:
		var e envelope[map[string]PeeringSide]
		err = strict(d, &e)
		o.Metadata = e.Metadata
		o.Peering = &PeeringSpec{}
		// The map loses document order; take it from the node.
		if h.Spec.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(h.Spec.Content); i += 2 {
				name := h.Spec.Content[i].Value
				s := e.Spec[name]
				s.VPC = name
				o.Peering.Sides = append(o.Peering.Sides, s)
			}
		}
	case h.APIVersion == PeergateAPIVersion && h.Kind == KindGateway:
		var e envelope[GatewaySpec]
		err = strict(d, &e)
		o.Metadata, o.Gateway = e.Metadata, &e.Spec
	case h.APIVersion == PeergateAPIVersion && h.Kind == KindVPC:
		var e envelope[VPCSpec]
		err = strict(d, &e)
		o.Metadata, o.VPC = e.Metadata, &e.Spec
	case h.APIVersion == CoreAPIVersion && h.Kind == KindPod:
		var e pod
		err = strict(d, &e)
		o.Metadata = e.Metadata
	default:
		return o, fmt.Errorf("%s: unknown kind %q of apiVersion %q (accepted: %s)", at, h.Kind, h.APIVersion, acceptedKinds)
	}
	if err != nil {
		return o, fmt.Errorf("%s %s: %w", h.Kind, nameOf(h), err)
	}
	if o.Metadata.Name == "" {
		return o, fmt.Errorf("%s: %s: metadata.name is required", at, h.Kind)
	}
	o.Key = Key{APIVersion: h.APIVersion, Kind: h.Kind, Name: o.Metadata.Name}
	return o, nil
}

const acceptedKinds = "kubeovn.io/v1 Vpc, Subnet; gateway.githedgehog.com/v1alpha1 Peering; peergate.io/v1alpha1 Gateway, VPC; v1 Pod (ignored)"

func nameOf(h header) string {
	for i := 0; i+1 < len(h.Metadata.Content); i += 2 {
		if h.Metadata.Content[i].Value == "name" {
			return strconv.Quote(h.Metadata.Content[i+1].Value)
		}
	}
	return "(unnamed)"
}

// MarshalYAML writes the sides as a mapping in their order.
func (p PeeringSpec) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range p.Sides {
		var v yaml.Node
		if err := v.Encode(s); err != nil {
			return nil, fmt.Errorf("peering side %q: %w", s.VPC, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: s.VPC}, &v)
	}
	return n, nil
}

// IsZero lets omitempty drop a Peering without sides.
func (p PeeringSpec) IsZero() bool { return len(p.Sides) == 0 }

// LoadPaths parses files and directories (their *.yaml and *.yml files,
// not recursive, in name order), in the order given.
func LoadPaths(paths ...string) ([]Object, error) {
	var objs []Object
	var errs []error
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("load manifests: %w", err))
			continue
		}
		files := []string{p}
		if fi.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("load manifests: %w", err))
				continue
			}
			files = files[:0]
			for _, e := range ents {
				if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
					files = append(files, filepath.Join(p, n))
				}
			}
			slices.Sort(files)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("load manifests: %w", err))
				continue
			}
			o, err := Parse(f, data)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs = append(objs, o...)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// Marshal writes objs as multi-document YAML that Parse reads back into the
// same objects. An object's Raw text is written as is; objects without Raw
// are encoded from their typed fields.
func Marshal(objs []Object) []byte {
	var b bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			b.WriteString("---\n")
		}
		raw := o.Raw
		if len(raw) == 0 {
			raw = encode(o)
		}
		b.Write(raw)
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Encode returns o's canonical YAML, from its typed fields.
func Encode(o Object) []byte { return encode(o) }

func encode(o Object) []byte {
	md := o.Metadata
	md.Name = o.Key.Name
	var v any
	switch {
	case o.KubeOVNVpc != nil:
		v = envelope[*KubeOVNVpcSpec]{o.Key.APIVersion, o.Key.Kind, md, o.KubeOVNVpc}
	case o.Subnet != nil:
		v = envelope[*SubnetSpec]{o.Key.APIVersion, o.Key.Kind, md, o.Subnet}
	case o.Peering != nil:
		v = envelope[*PeeringSpec]{o.Key.APIVersion, o.Key.Kind, md, o.Peering}
	case o.Gateway != nil:
		v = envelope[*GatewaySpec]{o.Key.APIVersion, o.Key.Kind, md, o.Gateway}
	case o.VPC != nil:
		v = envelope[*VPCSpec]{o.Key.APIVersion, o.Key.Kind, md, o.VPC}
	default:
		v = envelope[*struct{}]{APIVersion: o.Key.APIVersion, Kind: o.Key.Kind, Metadata: md}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		// Only types this package defines are encoded; failing is a bug.
		panic(fmt.Sprintf("manifest: encode %s: %v", o.Key, err))
	}
	_ = enc.Close()
	return b.Bytes()
}
