package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peergate/peergate/internal/tlsconfig"
)

func shortDir(t *testing.T) string {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir() can exceed it.
	dir, err := os.MkdirTemp("", "cpl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenCreatesAPrivateSocketInAMissingDirectory(t *testing.T) {
	path := filepath.Join(shortDir(t), "run", "cp.sock")
	ln, err := listen("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "cp.sock")
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the file behind as a crashed process would.
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	ln, err := listen("unix://" + path)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestListenRefusesToTakeOver(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
	}{
		{"a socket another process serves on", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, "another process serves"},
		{"a file that is not a socket", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(shortDir(t), "cp.sock")
			c.prepare(t, path)
			ln, err := listen("unix://" + path)
			if err == nil {
				ln.Close()
				t.Fatal("listen succeeded, want an error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestListenOnTCP(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "tcp://127.0.0.1:0"} {
		ln, err := listen(addr)
		if err != nil {
			t.Fatalf("listen %s: %v", addr, err)
		}
		ln.Close()
	}
}

func TestATCPAddressNeedsMutualTLSOrTheInsecureFlag(t *testing.T) {
	tls := tlsconfig.Files{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"}
	cases := []struct {
		name    string
		listens []string
		sec     security
		refused bool
	}{
		{"unix sockets alone", []string{"unix:///run/x.sock", "unix:/run/y.sock"}, security{}, false},
		{"TCP without TLS", []string{"unix:///run/x.sock", "127.0.0.1:7443"}, security{}, true},
		{"tcp:// without TLS", []string{"tcp://127.0.0.1:7443"}, security{}, true},
		{"TCP with mutual TLS", []string{"127.0.0.1:7443"}, security{tls: tls}, false},
		{"TCP with --insecure-tcp", []string{"127.0.0.1:7443"}, security{insecureTCP: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.sec.checkTransport(c.listens)
			if c.refused && (err == nil || !strings.Contains(err.Error(), "--insecure-tcp")) {
				t.Fatalf("error %v, want a refusal naming --insecure-tcp", err)
			}
			if !c.refused && err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
