package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/peergate/peergate/controlplane/bgpsync"
	"github.com/peergate/peergate/internal/tlsconfig"
	"github.com/peergate/peergate/internal/tlsconfig/tlstest"
	apiv1 "github.com/peergate/peergate/proto/api/v1"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startControlplane runs serve with mutual TLS on a TCP address and
// metrics, until the test ends.
func startControlplane(t *testing.T, files tlsconfig.Files) (api, metricsAddr string) {
	t.Helper()
	api, metricsAddr = freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- serve(ctx, log, []string{api}, filepath.Join(t.TempDir(), "state"), nil,
			bgpsync.Options{ListenPort: -1, ConnectRetry: time.Second, Logger: log}, security{tls: files, metrics: metricsAddr})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", api); err == nil {
			c.Close()
			return api, metricsAddr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the controlplane did not listen")
	return
}

func TestTheTLSAPIServesOnlyClientsWithACertificateOfItsCA(t *testing.T) {
	ca := tlstest.NewCA(t, "peergate")
	other := tlstest.NewCA(t, "intruder")
	api, _ := startControlplane(t, ca.Issue("controlplane"))

	good, err := tlsconfig.Client(ca.Issue("gwctl"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tlsconfig.Client(other.Issue("gwctl"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	foreign.RootCAs = good.RootCAs
	noCert := good.Clone()
	noCert.Certificates = nil
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		want  bool
	}{
		{"a client with a certificate of the CA is served", credentials.NewTLS(good), true},
		{"a client without a certificate is refused", credentials.NewTLS(noCert), false},
		{"a client with a certificate of another CA is refused", credentials.NewTLS(foreign), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := grpc.NewClient(api, grpc.WithTransportCredentials(tc.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := apiv1.NewGatewayClient(cc).Status(ctx, &apiv1.StatusRequest{})
			if (err == nil) != tc.want {
				t.Errorf("Status: %v, %v; want served=%v", resp, err, tc.want)
			}
		})
	}
}

func TestTheMetricsCountAppliesAndShowTheGeneration(t *testing.T) {
	ca := tlstest.NewCA(t, "peergate")
	api, maddr := startControlplane(t, ca.Issue("controlplane"))
	cfg, err := tlsconfig.Client(ca.Issue("gwctl"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(api, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := apiv1.NewGatewayClient(cc).Apply(ctx, &apiv1.ApplyRequest{Documents: []*apiv1.Document{{File: "bad.yaml", Yaml: "kind: Nonsense\n"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() {
		t.Fatal("a nonsense manifest was accepted")
	}
	r, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{
		`peergate_controlplane_applies_total{outcome="rejected"} 1`,
		`peergate_controlplane_applies_total{outcome="accepted"} 0`,
		`peergate_controlplane_config_generation 0`,
		`peergate_controlplane_dataplanes_connected 0`,
		`peergate_controlplane_bgp_speaker_running 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}
