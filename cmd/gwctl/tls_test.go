package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/peergate/peergate/controlplane/server"
	"github.com/peergate/peergate/internal/tlsconfig"
	"github.com/peergate/peergate/internal/tlsconfig/tlstest"
)

// serveTLS runs the controlplane's API on TCP with mutual TLS, the way
// `controlplane --listen host:port --tls-cert ... --tls-ca ...` does.
func serveTLS(t *testing.T, files tlsconfig.Files) string {
	t.Helper()
	cfg, err := tlsconfig.Server(files)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(s.GRPCOptions(), grpc.Creds(credentials.NewTLS(cfg)))...)
	s.Register(g)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}

func TestTLSFlagsReachAMutualTLSControlplane(t *testing.T) {
	ca := tlstest.NewCA(t, "peergate")
	other := tlstest.NewCA(t, "intruder")
	addr := serveTLS(t, ca.Issue("controlplane"))
	good := ca.Issue("gwctl")
	foreign := other.Issue("gwctl")
	tlsArgs := func(f tlsconfig.Files) []string {
		return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
	}
	cases := []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"a certificate of the CA is served", nil, append(tlsArgs(good), "get", "status"), 0, "generation:", ""},
		{"the flags may follow the command", nil, append([]string{"get", "status"}, tlsArgs(good)...), 0, "generation:", ""},
		{"the controlplane's name may be given apart from its address", nil, append(tlsArgs(good), "--tls-server-name", "controlplane", "get", "status"), 0, "generation:", ""},
		{"the files may come from the environment", map[string]string{tlsCertEnv: good.Cert, tlsKeyEnv: good.Key, tlsCAEnv: good.CA}, []string{"get", "status"}, 0, "generation:", ""},
		{"without TLS gwctl is refused and told about the flags", nil, []string{"get", "status"}, 1, "", "give --tls-cert, --tls-key and --tls-ca"},
		{"a certificate of another CA is refused at the handshake", nil, append(tlsArgs(tlsconfig.Files{Cert: foreign.Cert, Key: foreign.Key, CA: good.CA}), "get", "status"), 1, "", "check --tls-cert"},
		{"a controlplane of another CA is not trusted", nil, append(tlsArgs(foreign), "get", "status"), 1, "", "TLS handshake failed"},
		{"a controlplane certificate of another name is not trusted", nil, append(tlsArgs(good), "--tls-server-name", "elsewhere", "get", "status"), 1, "", "TLS handshake failed"},
		{"a certificate without its key is a usage error", nil, []string{"--tls-cert", good.Cert, "--tls-ca", good.CA, "get", "status"}, 2, "", "together"},
		{"a server name without TLS is a usage error", nil, []string{"--tls-server-name", "controlplane", "get", "status"}, 2, "", "--tls-server-name without"},
		{"a missing file is named", nil, append(tlsArgs(tlsconfig.Files{Cert: filepath.Join(t.TempDir(), "none.pem"), Key: good.Key, CA: good.CA}), "get", "status"), 1, "", "none.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--server", addr, "--timeout", "10s"}, c.args...)
			r := gwctl(t, "", args...)
			if r.code != c.wantCode || !strings.Contains(r.stdout, c.wantStdout) || !strings.Contains(r.stderr, c.wantStderr) {
				t.Fatalf("gwctl %v = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
					args, r.code, r.stdout, r.stderr, c.wantCode, c.wantStdout, c.wantStderr)
			}
		})
	}
}

func TestHelpNamesTheTLSFlags(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help", "get"}} {
		r := gwctl(t, "", args...)
		for _, want := range []string{"--tls-cert", "--tls-key", "--tls-ca"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("gwctl %v: exit %d, no %q in\n%s", args, r.code, want, r.stdout)
			}
		}
	}
}
