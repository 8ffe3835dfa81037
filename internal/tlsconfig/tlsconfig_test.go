package tlsconfig_test

import (
	"crypto/tls"
	"io"
	"testing"

	"github.com/peergate/peergate/internal/tlsconfig"
	"github.com/peergate/peergate/internal/tlsconfig/tlstest"
)

func TestOnlyClientsWithACertificateOfTheCAAreServed(t *testing.T) {
	ca := tlstest.NewCA(t, "peergate")
	other := tlstest.NewCA(t, "intruder")
	srvCfg, err := tlsconfig.Server(ca.Issue("controlplane"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("secret"))
				}
			}()
		}
	}()
	good, err := tlsconfig.Client(ca.Issue("dataplane"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tlsconfig.Client(other.Issue("dataplane"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	foreign.RootCAs = good.RootCAs // trusts the server, but its own cert is foreign
	noCert := good.Clone()
	noCert.Certificates = nil
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want bool
	}{
		{"a client with a certificate of the CA gets answers", good, true},
		{"a client without a certificate gets nothing", noCert, false},
		{"a client with a certificate of another CA gets nothing", foreign, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", ln.Addr().String(), tc.cfg)
			got := ""
			if err == nil {
				b, _ := io.ReadAll(c)
				got = string(b)
				c.Close()
			}
			if (got == "secret") != tc.want {
				t.Errorf("read %q (dial err %v), want served=%v", got, err, tc.want)
			}
		})
	}
}

func TestIncompleteFlagsAreRefused(t *testing.T) {
	if _, err := tlsconfig.Server(tlsconfig.Files{Cert: "a.pem"}); err == nil {
		t.Error("a certificate without key and CA was accepted")
	}
	if (tlsconfig.Files{}).Enabled() {
		t.Error("no files means TLS off")
	}
}
