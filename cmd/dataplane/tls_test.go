package main

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/peergate/peergate/dataplane/dpdk"
	"github.com/peergate/peergate/internal/tlsconfig"
	"github.com/peergate/peergate/internal/tlsconfig/tlstest"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// acceptCounter reports every connection the controlplane accepts, so a
// refused dataplane is seen coming back without waiting for a fixed time.
type acceptCounter struct {
	net.Listener
	accepted chan struct{}
}

func (l acceptCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
	return c, err
}

// TestRunTakesTablesOnlyFromAMutualTLSControlplaneOfItsCA starts the real
// `dataplane run` with --tls-cert/--tls-key/--tls-ca/--tls-server-name
// against a TablePush server with the controlplane's mutual-TLS
// configuration: a dataplane with a certificate of the CA forwards with
// the tables; one without, or with another CA's, is refused at the
// handshake and never gets a stream.
func TestRunTakesTablesOnlyFromAMutualTLSControlplaneOfItsCA(t *testing.T) {
	if !dpdk.Available() {
		t.Skip("needs DPDK: build with -tags dpdk")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (DPDK EAL)")
	}
	ca := tlstest.NewCA(t, "peergate")
	other := tlstest.NewCA(t, "intruder")
	good := ca.Issue("dataplane")
	foreign := other.Issue("dataplane")
	bin := buildDataplane(t)

	for i, c := range []struct {
		name   string
		flags  []string
		served bool
	}{
		{"a dataplane with a certificate of the CA receives the tables", []string{"--tls-cert", good.Cert, "--tls-key", good.Key, "--tls-ca", good.CA}, true},
		{"the controlplane's name can be given apart from its address", []string{"--tls-cert", good.Cert, "--tls-key", good.Key, "--tls-ca", good.CA, "--tls-server-name", "controlplane"}, true},
		{"a dataplane with a certificate of another CA gets nothing", []string{"--tls-cert", foreign.Cert, "--tls-key", foreign.Key, "--tls-ca", good.CA}, false},
		{"a dataplane that expects another name for the controlplane gets nothing", []string{"--tls-cert", good.Cert, "--tls-key", good.Key, "--tls-ca", good.CA, "--tls-server-name", "elsewhere"}, false},
		{"a dataplane without TLS gets nothing", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srvCfg, err := tlsconfig.Server(ca.Issue("controlplane"))
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			counted := acceptCounter{Listener: ln, accepted: make(chan struct{}, 64)}
			ps := &pushServer{in: make(chan *tablesv1.DataplaneMessage, 64), out: make(chan *tablesv1.ControlplaneMessage, 8)}
			srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvCfg)))
			tablesv1.RegisterTablePushServer(srv, ps)
			go srv.Serve(counted)
			t.Cleanup(srv.Stop)

			id := fmt.Sprintf("h3tls%d_%d", os.Getpid(), i)
			args := append([]string{"run", "--controlplane", ln.Addr().String(), "--id", "tls",
				"--eal", "--no-huge -m 256 --no-pci --no-shconf --no-telemetry -l 0 --file-prefix=" + id}, c.flags...)
			startBinary(t, bin, args...)

			ps.out <- &tablesv1.ControlplaneMessage{Msg: &tablesv1.ControlplaneMessage_Tables{Tables: nullTables(1, id)}}
			if c.served {
				if a := ps.nextAck(t, nil); a.GetGeneration() != 1 || a.GetError() != "" {
					t.Errorf("ack %v, want generation 1 applied", a)
				}
				return
			}
			// A refused dataplane retries with its backoff: three
			// connections and no message mean each was turned away.
			for n := 0; n < 3; n++ {
				select {
				case <-counted.accepted:
				case m := <-ps.in:
					t.Fatalf("the controlplane heard from a dataplane it should refuse: %v", m)
				case <-time.After(20 * time.Second):
					t.Fatal("the dataplane did not try to connect 3 times within 20s")
				}
			}
			select {
			case m := <-ps.in:
				t.Errorf("the controlplane heard from a dataplane it should refuse: %v", m)
			default:
			}
		})
	}
}
