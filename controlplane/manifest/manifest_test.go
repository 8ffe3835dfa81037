package manifest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/peergate/peergate/controlplane/manifest"
)

const seeds = "../../testdata/manifests"

func seedFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(seeds, "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed manifests under %s: %v", seeds, err)
	}
	return files
}

func TestEverySeedManifestParses(t *testing.T) {
	for _, f := range seedFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := manifest.Parse(f, data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
		})
	}
}

func TestParseRejectsBadDocumentsWithFileDocumentAndLine(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"an unknown field", "kind: Subnet\napiVersion: kubeovn.io/v1\nmetadata: {name: s}\nspec:\n  vpc: v\n  cidr: 10.0.0.0/8\n",
			`f.yaml:doc 0: Subnet "s": unmarshal errors:` + "\n  line 6: field cidr not found in type manifest.SubnetSpec"},
		{"an unknown field in the second document, lines counted in the file", "kind: Subnet\napiVersion: kubeovn.io/v1\nmetadata: {name: s}\n---\nkind: Vpc\napiVersion: kubeovn.io/v1\nmetadata: {name: v}\nspec: {peerings: []}\n",
			"f.yaml:doc 1: Vpc \"v\": unmarshal errors:\n  line 8: field peerings not found in type manifest.KubeOVNVpcSpec"},
		{"an unknown field in a peering side", "apiVersion: gateway.githedgehog.com/v1alpha1\nkind: Peering\nmetadata: {name: p}\nspec:\n  a:\n    ipz: []\n",
			"line 6: field ipz not found in type manifest.PeeringSide"},
		{"an unknown kind", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
			`f.yaml:doc 0: line 1: unknown kind "Service" of apiVersion "v1"`},
		{"a known kind of the wrong API version", "apiVersion: kubeovn.io/v2\nkind: Vpc\nmetadata: {name: s}\n",
			`unknown kind "Vpc" of apiVersion "kubeovn.io/v2"`},
		{"a document without kind", "metadata: {name: s}\n", "f.yaml:doc 0: line 1: apiVersion and kind are required"},
		{"an object without name", "apiVersion: peergate.io/v1alpha1\nkind: VPC\nspec: {}\n", "metadata.name is required"},
		{"broken YAML", "apiVersion: [\n", "f.yaml:doc 0: line 1: did not find expected node content"},
		{"a duplicate peering side", "apiVersion: gateway.githedgehog.com/v1alpha1\nkind: Peering\nmetadata: {name: p}\nspec:\n  a: {}\n  a: {}\n",
			`mapping key "a" already defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.Parse("f.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseReportsEveryBadDocument(t *testing.T) {
	_, err := manifest.Parse("f.yaml", []byte("kind: X\napiVersion: a\nmetadata: {name: x}\n---\nkind: Y\napiVersion: a\nmetadata: {name: y}\n"))
	if err == nil || !strings.Contains(err.Error(), "doc 0") || !strings.Contains(err.Error(), "doc 1") {
		t.Errorf("want errors for doc 0 and doc 1, got %v", err)
	}
}

func TestPeeringSidesKeepDocumentOrder(t *testing.T) {
	objs, err := manifest.Parse("f.yaml", []byte("apiVersion: gateway.githedgehog.com/v1alpha1\nkind: Peering\nmetadata: {name: p}\nspec:\n  zeta:\n    ips: [{cidr: 10.0.0.0/8}]\n    metric: 5\n  alpha:\n    natType: stateful\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := objs[0].Peering.Sides
	if len(s) != 2 || s[0].VPC != "zeta" || s[1].VPC != "alpha" || s[0].Metric != 5 || s[1].NatType != "stateful" || s[0].IPs[0].CIDR != "10.0.0.0/8" {
		t.Errorf("sides = %+v", s)
	}
}

func TestDocumentsAreSplitOnMarkersAndEmptyOnesSkipped(t *testing.T) {
	doc := "# leading comment\n---\napiVersion: peergate.io/v1alpha1\nkind: VPC\nmetadata: {name: a}\n...\n---\n# only a comment\n---\napiVersion: peergate.io/v1alpha1\nkind: VPC\nmetadata: {name: b}\n"
	objs, err := manifest.Parse("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Key.Name != "a" || objs[1].Key.Name != "b" || objs[1].Source.Index != 1 {
		t.Errorf("objects = %+v", objs)
	}
}

func TestMarshalReadsBackIdentically(t *testing.T) {
	for _, f := range seedFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			objs, err := manifest.Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			// With Raw: byte-identical documents.
			back, err := manifest.Parse(f, manifest.Marshal(objs))
			if err != nil {
				t.Fatalf("re-parse raw: %v", err)
			}
			if !reflect.DeepEqual(back, objs) {
				t.Errorf("raw round trip differs")
			}
			// Without Raw: the typed fields survive the canonical encoding.
			stripped := slices.Clone(objs)
			for i := range stripped {
				stripped[i].Raw = nil
			}
			back, err = manifest.Parse(f, manifest.Marshal(stripped))
			if err != nil {
				t.Fatalf("re-parse encoded: %v\n%s", err, manifest.Marshal(stripped))
			}
			for i := range back {
				if !bytes.Equal(manifest.Encode(back[i]), manifest.Encode(objs[i])) || back[i].Key != objs[i].Key {
					t.Errorf("object %d differs after encoding:\n%s\nvs\n%s", i, manifest.Encode(back[i]), manifest.Encode(objs[i]))
				}
			}
		})
	}
}

func key(kind, name string) manifest.Key {
	return manifest.Key{APIVersion: manifest.PeergateAPIVersion, Kind: kind, Name: name}
}

func TestConfigIsImmutableAndLaterDocumentsReplaceEarlierOnes(t *testing.T) {
	a1 := manifest.Object{Key: key("VPC", "a"), VPC: &manifest.VPCSpec{Subnets: []string{"10.0.0.0/24"}}}
	a2 := manifest.Object{Key: key("VPC", "a"), VPC: &manifest.VPCSpec{Subnets: []string{"10.9.0.0/24"}}}
	b := manifest.Object{Key: key("VPC", "b"), VPC: &manifest.VPCSpec{}}
	c := manifest.NewConfig([]manifest.Object{b, a1, a2})
	if got := c.Objects(); len(got) != 2 || got[0].Key.Name != "a" || got[0].VPC.Subnets[0] != "10.9.0.0/24" {
		t.Fatalf("NewConfig objects = %+v", got)
	}
	c2 := c.Apply([]manifest.Object{a1})
	c3 := c2.Delete([]manifest.Key{key("VPC", "b"), key("VPC", "zzz")})
	if o, _ := c.Get(a1.Key); o.VPC.Subnets[0] != "10.9.0.0/24" {
		t.Error("Apply changed the original Config")
	}
	if o, _ := c2.Get(a1.Key); o.VPC.Subnets[0] != "10.0.0.0/24" {
		t.Error("Apply did not upsert")
	}
	if c2.Len() != 2 || c3.Len() != 1 {
		t.Errorf("lengths %d %d, want 2 1", c2.Len(), c3.Len())
	}
}

func TestLoadPathsReadsDirectoriesInNameOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yml", "apiVersion: peergate.io/v1alpha1\nkind: VPC\nmetadata: {name: b}\n")
	write("a.yaml", "apiVersion: peergate.io/v1alpha1\nkind: VPC\nmetadata: {name: a}\n")
	write("notes.txt", "not yaml")
	objs, err := manifest.LoadPaths(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Key.Name != "a" || objs[1].Key.Name != "b" || filepath.Base(objs[1].Source.File) != "b.yml" {
		t.Errorf("objects = %+v", objs)
	}
	if _, err := manifest.LoadPaths(filepath.Join(dir, "missing")); err == nil {
		t.Error("want an error for a missing path")
	}
}
