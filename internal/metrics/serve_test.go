package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestServers(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	reg, err := NewRegistry()
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		serve func(context.Context) (string, error)
		// path -> a string the body must contain ("" = status 404)
		want map[string]string
	}{
		{
			name: "metrics",
			serve: func(ctx context.Context) (string, error) {
				a, err := Serve(ctx, "127.0.0.1:0", reg, log)
				if err != nil {
					return "", err
				}
				return a.String(), nil
			},
			want: map[string]string{"/metrics": "go_goroutines", "/debug/pprof/": ""},
		},
		{
			name: "profiles",
			serve: func(ctx context.Context) (string, error) {
				a, err := ServeProfiles(ctx, "127.0.0.1:0", log)
				if err != nil {
					return "", err
				}
				return a.String(), nil
			},
			// gc=1 collects first, so HeapAlloc is the live heap: what
			// the full-table test reads.
			want: map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/heap?gc=1&debug=1": "# HeapAlloc = ", "/metrics": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			addr, err := tc.serve(ctx)
			require.NoError(t, err)
			for path, want := range tc.want {
				code, body := get(t, "http://"+addr+path)
				if want == "" {
					require.Equal(t, http.StatusNotFound, code, path)
					continue
				}
				require.Equal(t, http.StatusOK, code, path)
				require.Contains(t, body, want, path)
			}
			cancel()
			require.Eventually(t, func() bool {
				_, err := http.Get("http://" + addr + "/")
				return err != nil && strings.Contains(err.Error(), "refused")
			}, 5*time.Second, 20*time.Millisecond, "the server stops with its context")
		})
	}
	t.Run("a busy address is an error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, err := ServeProfiles(ctx, "127.0.0.1:0", log)
		require.NoError(t, err)
		_, err = ServeProfiles(ctx, a.String(), log)
		require.ErrorContains(t, err, "profiles listen on")
	})
}
