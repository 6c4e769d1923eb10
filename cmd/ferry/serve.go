package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/accesslog"
	"github.com/ferry-dev/ferry/internal/serve/auth"
	"github.com/ferry-dev/ferry/internal/serve/metrics"
	"github.com/ferry-dev/ferry/internal/serve/web"
)

// webSource shows a server's index on the browse page.
type webSource struct{ *serve.Server }

func (s webSource) Modules() []web.Module {
	mods := s.Server.Modules()
	out := make([]web.Module, len(mods))
	for i, m := range mods {
		out[i] = web.Module{Path: m.Path, Versions: m.Versions}
	}
	return out
}

func (a *app) serveCmd() *cobra.Command {
	var (
		t        trustFlags
		sf       storeFlags
		listen   string
		refresh  time.Duration
		authFile string
		tlsCert  string
		tlsKey   string
		logJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "serve [BUNDLE...]",
		Short: "Serve a store of bundles as a Go module proxy with the checksum database, offline",
		Long: `Serve answers the Go module proxy protocol (@v/list, .info, .mod, .zip,
@latest) and the checksum database protocol (/sumdb/NAME/supported, lookup,
tile) from the bundles of a store, never from the network: point clients at
it with GOPROXY=http://HOST:PORT and leave GOSUMDB at its default.

BUNDLEs given are verified (exactly as 'ferry verify') and imported first.
Bundles imported later by 'ferry import' into the same store are picked up
every --refresh; a request sees the store before or after an import, never
half of one. Also served: a browse page at /, /healthz, /readyz, Prometheus metrics at
/metrics, and the OCI distribution pull API at /v2/ for the container images
the bundles carry (pack --image): docker, podman, skopeo and crane pull
HOST:PORT/REPO:TAG, REPO being the image's name without its registry host.
Read-only; a tag imported again by a newer bundle serves the newer image.
Docker and podman want TLS (--tls-cert) unless the host is loopback or
listed in their insecure registries.
SIGINT or SIGTERM stops accepting and drains requests in flight.`,
		Example: `  ferry serve app.ferry --key team.pub
  ferry serve --store /srv/ferry/store --listen :8080 --log-json
  GOPROXY=http://ferry.internal:8080 go build ./...
  docker pull ferry.internal:8080/team/api:1.4.0     # an image carried by pack --image`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Log records (access records above all) are buffered off the
			// request path: a write(2) per request under the handler's lock
			// serialised all requests. Close writes what is pending.
			lw := accesslog.NewWriter(a.stderr)
			defer lw.Close()
			var h slog.Handler = slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo})
			if logJSON {
				h = slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo})
			}
			log := slog.New(h)
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			var tlsConfig *tls.Config
			if tlsCert != "" {
				c, err := auth.TLSConfig(tlsCert, tlsKey)
				if err != nil {
					return err
				}
				tlsConfig = c
			}
			rt := serve.Routes{
				AccessLog: func(next http.Handler) http.Handler { return accesslog.Middleware(log, next) },
			}
			if authFile != "" {
				c, err := auth.Load(authFile)
				if err != nil {
					return err
				}
				rt.Auth = c.Middleware
			}
			// Bind before any work: a busy port fails at once, before
			// bundles are verified and imported.
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w (give another --listen address)", listen, err)
			}
			defer ln.Close()
			st, closeStore, err := openStore(ctx, &sf, len(args) > 0, log)
			if err != nil {
				return err
			}
			defer closeStore()
			if _, err := a.importBundles(ctx, st, sf.at, args, &t); err != nil {
				return err
			}
			srv, err := serve.New(st, serve.Options{Log: log})
			if err != nil {
				return err
			}
			if err := srv.Refresh(ctx); err != nil {
				// A replica on a registry that is down for a moment starts
				// anyway, not ready (/readyz 503), and retries every --refresh.
				if !strings.HasPrefix(sf.at, "oci://") || refresh <= 0 {
					return err
				}
				log.Warn("store not readable yet; serving 503 until it is", "err", err)
			}
			m := metrics.New()
			m.SetStoreSize(srv.StoreSize)
			m.SetBundles(func() int { return len(srv.Bundles()) })
			rt.Measure, rt.Metrics = m.Middleware, m.Handler()
			rt.Browse = web.Handler(webSource{srv})
			scheme := "http"
			if tlsConfig != nil {
				scheme = "https"
			}
			log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "store", sf.at, "bundles", len(srv.Bundles()))
			go srv.RefreshEvery(ctx, refresh)
			return serve.Serve(ctx, ln, srv.Handler(rt), tlsConfig, log)
		},
	}
	t.add(cmd)
	sf.add(cmd)
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	cmd.Flags().DurationVar(&refresh, "refresh", serve.DefaultRefresh, "how often to reread the store for bundles imported by other processes (0: never)")
	cmd.Flags().StringVar(&authFile, "auth", "", "file of hashed bearer tokens and basic-auth users; clients must authenticate")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "TLS private key file (PEM)")
	cmd.Flags().BoolVar(&logJSON, "log-json", false, "write logs and access logs as JSON")
	return cmd
}
