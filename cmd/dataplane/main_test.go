package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplayFailsClearlyOnBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {name: s}\nspec: {vpc: nowhere, cidrBlock: 10.0.0.0/33}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(repoRoot, "testdata/manifests/kube-ovn-vpc-peering")
	pcap := filepath.Join(repoRoot, "testdata/pcap/kube-ovn-vpc-peering/in-fabric.pcap")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand arguments", []string{"replay"}, "no manifests"},
		{"an invalid manifest", []string{"replay", "-f", bad, "--in", "fabric=" + pcap, "--out-dir", dir}, "compile manifests"},
		{"a missing manifest", []string{"replay", "-f", filepath.Join(dir, "none.yaml"), "--in", "fabric=" + pcap, "--out-dir", dir}, "none.yaml"},
		{"an unreadable pcap", []string{"replay", "-f", good, "--in", "fabric=" + bad, "--out-dir", dir}, "bad.yaml"},
		{"an unknown port", []string{"replay", "-f", good, "--in", "nope=" + pcap, "--out-dir", dir}, `port "nope"`},
		{"an input without a port", []string{"replay", "-f", good, "--in", pcap, "--out-dir", dir}, "PORT=FILE"},
	}
	for _, c := range cases {
		var so, se bytes.Buffer
		code := dispatch(context.Background(), c.args, &so, &se)
		if code != 1 || !strings.Contains(se.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 mentioning %q", c.name, code, se.String(), c.want)
		}
		if so.Len() != 0 {
			t.Errorf("%s: stdout %q, want nothing", c.name, so.String())
		}
	}
}

func TestUnknownCommandsPrintUsage(t *testing.T) {
	var so, se bytes.Buffer
	if code := dispatch(context.Background(), []string{"fly"}, &so, &se); code != 2 || !strings.Contains(se.String(), "replay") {
		t.Errorf("exit %d, stderr %q", code, se.String())
	}
}
