package agent_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/peergate/peergate/dataplane/agent"
	"github.com/peergate/peergate/internal/tlsconfig"
	"github.com/peergate/peergate/internal/tlsconfig/tlstest"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// countingListener reports every accepted connection, so a test sees a
// refused client come back without waiting for a fixed time.
type countingListener struct {
	net.Listener
	accepted chan struct{}
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
	return c, err
}

// startTLSFake serves the fake TablePush on TCP with the controlplane's
// mutual-TLS configuration (tlsconfig.Server, as cmd/controlplane uses it).
func startTLSFake(t *testing.T, files tlsconfig.Files) (*fakeControlplane, string, <-chan struct{}) {
	t.Helper()
	cfg, err := tlsconfig.Server(files)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeControlplane{
		hellos: make(chan *tablesv1.Hello, 16),
		acks:   make(chan *tablesv1.Ack, 16),
		stats:  make(chan *tablesv1.Stats, 1024),
		out:    make(chan *tablesv1.ControlplaneMessage, 16),
		srv:    grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg))),
	}
	tablesv1.RegisterTablePushServer(f.srv, f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := countingListener{Listener: ln, accepted: make(chan struct{}, 64)}
	go f.srv.Serve(cl)
	t.Cleanup(f.srv.Stop)
	return f, ln.Addr().String(), cl.accepted
}

func TestOnlyADataplaneWithACertificateOfTheCAReceivesTables(t *testing.T) {
	ca := tlstest.NewCA(t, "peergate")
	other := tlstest.NewCA(t, "intruder")
	good, err := tlsconfig.Client(ca.Issue("dataplane"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	foreignCert, err := tlsconfig.Client(other.Issue("dataplane"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	foreignCert.RootCAs = good.RootCAs // trusts the controlplane, but its certificate is foreign
	foreign, err := tlsconfig.Client(other.Issue("dataplane"), "localhost")
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		cfg    *tls.Config
		served bool
	}{
		{"a dataplane with a certificate of the CA receives and acknowledges the tables", good, true},
		{"a dataplane without a certificate gets nothing", noCert, false},
		{"a dataplane with a certificate of another CA gets nothing", foreignCert, false},
		{"a dataplane of another CA altogether gets nothing", foreign, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, addr, accepted := startTLSFake(t, ca.Issue("controlplane"))
			f.out <- tables(7)
			d := &dataplane{}
			var logs logBuffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- agent.Run(ctx, agent.Config{Address: addr, DataplaneID: "dp-tls", Apply: d.apply, TLS: c.cfg,
					Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			}()
			stop := sync.OnceValue(func() error { cancel(); return <-done })
			t.Cleanup(func() {
				if err := stop(); err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			})

			if c.served {
				if h := recv(t, f.hellos, "hello"); h.GetDataplaneId() != "dp-tls" {
					t.Errorf("hello from %q", h.GetDataplaneId())
				}
				if a := recv(t, f.acks, "ack"); a.GetGeneration() != 7 || a.GetError() != "" {
					t.Errorf("ack %v, want generation 7 applied", a)
				}
			} else {
				// A refused dataplane comes back (with its backoff): three
				// connections without a stream mean each one was turned
				// away at the handshake.
				for i := 0; i < 3; i++ {
					recv(t, accepted, "connection attempt")
				}
				select {
				case h := <-f.hellos:
					t.Errorf("the controlplane heard from a refused dataplane: %v", h)
				default:
				}
				// The dataplane says why it waits.
				deadline := time.Now().Add(wait)
				for !strings.Contains(logs.String(), "cannot reach the controlplane") && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if !strings.Contains(logs.String(), "cannot reach the controlplane") {
					t.Errorf("the dataplane did not log why it cannot connect:\n%s", logs.String())
				}
			}
			stop()
			d.mu.Lock()
			defer d.mu.Unlock()
			if got := len(d.applied) == 1 && d.applied[0] == 7; got != c.served {
				t.Errorf("applied %v, want tables applied = %v", d.applied, c.served)
			}
		})
	}
}

// logBuffer is an io.Writer the agent's logger and the test share.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
