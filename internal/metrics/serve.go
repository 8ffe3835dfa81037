// Package metrics serves a Prometheus registry over HTTP for both daemons
// (--metrics ADDR): /metrics, with the Go runtime and process collectors
// added so memory and goroutines are watched too; and, only when asked
// (--pprof ADDR), Go's runtime profiles on an address of their own.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go and process collectors and cs.
func NewRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics collector: %w", err)
		}
	}
	return reg, nil
}

// Serve listens on addr and serves reg at /metrics until ctx ends. It
// returns once listening (the listener's address, for ":0"); errors after
// that are logged.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) (net.Addr, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	return serveHTTP(ctx, "metrics", addr, mux, log)
}

// ServeProfiles listens on addr and serves Go's runtime profiles
// (net/http/pprof: /debug/pprof/heap, profile, goroutine, ...) until ctx
// ends. It is for diagnosing a live daemon's memory and CPU (a full BGP
// table's heap, a slow compile) without restarting it; the full-table
// test reads the controlplane's live heap from /debug/pprof/heap?gc=1.
// The handlers are registered on this server's own mux (net/http/pprof
// also puts them on http.DefaultServeMux, which no peergate server
// serves); the profiles show internal state (and /debug/pprof/profile costs CPU while it
// runs), so the daemons serve them only when asked (--pprof ADDR) and the
// address belongs on loopback or a management network.
func ServeProfiles(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveHTTP(ctx, "profiles", addr, mux, log)
}

// serveHTTP serves h on addr until ctx ends, as Serve describes; what
// names the server in errors and logs.
func serveHTTP(ctx context.Context, what, addr string, h http.Handler, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen on %s: %w", what, addr, err)
	}
	// Requests see ctx: a CPU profile or trace in progress (up to its
	// ?seconds=) stops with the server instead of running on.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" server", "err", err)
		}
	}()
	log.Info("serving "+what, "address", ln.Addr().String())
	return ln.Addr(), nil
}
