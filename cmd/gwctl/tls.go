package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/peergate/peergate/internal/tlsconfig"
)

// Environment defaults of the TLS flags, like PEERGATE_SERVER for --server.
const (
	tlsCertEnv = "PEERGATE_TLS_CERT"
	tlsKeyEnv  = "PEERGATE_TLS_KEY"
	tlsCAEnv   = "PEERGATE_TLS_CA"
)

// tlsOpts are the files of gwctl's side of mutual TLS with a controlplane
// on TCP (--tls-cert/--tls-key/--tls-ca) and the name expected in the
// controlplane's certificate.
type tlsOpts struct {
	files      tlsconfig.Files
	serverName string
}

func tlsFromEnv() tlsOpts {
	return tlsOpts{files: tlsconfig.Files{Cert: os.Getenv(tlsCertEnv), Key: os.Getenv(tlsKeyEnv), CA: os.Getenv(tlsCAEnv)}}
}

// tlsFlags registers the TLS flags; like --server they are global and may
// stand before or after the command.
func tlsFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.tls.files.Cert, "tls-cert", o.tls.files.Cert, "PEM `FILE`: gwctl's client certificate for a controlplane on TCP with mutual TLS, with --tls-key and --tls-ca (env "+tlsCertEnv+")")
	fs.StringVar(&o.tls.files.Key, "tls-key", o.tls.files.Key, "PEM `FILE`: the private key of --tls-cert (env "+tlsKeyEnv+")")
	fs.StringVar(&o.tls.files.CA, "tls-ca", o.tls.files.CA, "PEM `FILE`: the CA that signed the controlplane's certificate (env "+tlsCAEnv+")")
	fs.StringVar(&o.tls.serverName, "tls-server-name", o.tls.serverName, "`NAME` expected in the controlplane's certificate (default: the host of --server)")
}

// transportCredentials is mutual TLS when the TLS flags are given, else
// none (a unix socket is guarded by its file mode).
func transportCredentials(o *opts) (credentials.TransportCredentials, error) {
	f := o.tls.files
	if !f.Enabled() {
		if o.tls.serverName != "" {
			return nil, usageError{"--tls-server-name without --tls-cert, --tls-key and --tls-ca"}
		}
		return insecure.NewCredentials(), nil
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, usageError{"mutual TLS needs --tls-cert, --tls-key and --tls-ca together"}
	}
	cfg, err := tlsconfig.Client(f, o.tls.serverName)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

const checkTLS = "check --tls-cert/--tls-key (a certificate signed by the controlplane's --tls-ca) and --tls-ca (the CA of the controlplane's certificate)"

// tlsHint says what to check when a connection failed in a way TLS
// explains: a handshake refused either way, or a plaintext client at a
// TLS controlplane. With TLS 1.3 the client finishes its handshake before
// the server checks its certificate, so a refused client often sees only
// a closed connection.
func tlsHint(msg string, o *opts) string {
	closed := strings.Contains(msg, "broken pipe") || strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset")
	switch {
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		return fmt.Sprintf("the TLS handshake failed: %s (%s)", msg, checkTLS)
	case o.tls.files.Enabled() && closed:
		return fmt.Sprintf("%s (a controlplane closes the connection when it refuses gwctl's certificate: %s)", msg, checkTLS)
	case !o.tls.files.Enabled() && !strings.HasPrefix(o.server, "unix:"):
		return msg + " (if the controlplane serves mutual TLS, give --tls-cert, --tls-key and --tls-ca)"
	}
	return ""
}
