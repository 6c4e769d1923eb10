// Package ocitest starts a real OCI registry (github.com/distribution/distribution/v3,
// the registry behind most self-hosted registries) inside a test process, on
// 127.0.0.1, for tests of ferry's oci:// store.
//
// Invariants: every registry has its own storage in a directory of
// t.TempDir() and is shut down by t.Cleanup; it speaks plain HTTP unless TLS
// is asked for; nothing is shared between registries. Import this package
// from tests only: it links the whole registry.
package ocitest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/sirupsen/logrus"

	// Storage drivers and access controllers the registries use.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// TB is the part of testing.TB a registry needs.
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
}

// Options configures a registry.
type Options struct {
	TLS bool // serve https with httptest's certificate (Registry.Client trusts it)
	// Htpasswd, if set, is the path of an htpasswd file (bcrypt) whose users
	// must log in.
	Htpasswd string
	// Wrap, if set, wraps the registry's handler (to observe or corrupt traffic).
	Wrap func(http.Handler) http.Handler
}

// Registry is a running registry.
type Registry struct {
	Server *httptest.Server
	Host   string // 127.0.0.1:PORT
	root   string // filesystem storage
}

// GC runs the registry's garbage collection (what 'registry
// garbage-collect' does): blobs no manifest references are deleted.
func (r *Registry) GC(ctx context.Context) error {
	d, err := factory.Create(ctx, "filesystem", map[string]any{"rootdirectory": r.root})
	if err != nil {
		return err
	}
	reg, err := storage.NewRegistry(ctx, d, storage.EnableDelete)
	if err != nil {
		return err
	}
	return storage.MarkAndSweep(ctx, d, reg, storage.GCOpts{Quiet: true})
}

// Client returns an HTTP client that trusts the registry's certificate.
func (r *Registry) Client() *http.Client { return r.Server.Client() }

// Start starts a registry with filesystem storage and stops it when the test ends.
func Start(t TB, opt Options) *Registry {
	t.Helper()
	// The registry logs every request through logrus' standard logger.
	// Setting it is idempotent and safe while other registries run.
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{}
	root := t.TempDir()
	cfg.Storage = configuration.Storage{
		"filesystem":  configuration.Parameters{"rootdirectory": root},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		"delete":      configuration.Parameters{"enabled": true},
	}
	cfg.HTTP.Secret = "ferry-test-secret"
	if opt.Htpasswd != "" {
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "ferry-test", "path": opt.Htpasswd}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var h http.Handler = handlers.NewApp(ctx, cfg)
	if opt.Wrap != nil {
		h = opt.Wrap(h)
	}
	var srv *httptest.Server
	if opt.TLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
	})
	return &Registry{Server: srv, Host: srv.Listener.Addr().String(), root: root}
}
