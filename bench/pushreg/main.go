// Command pushreg runs a registry (github.com/distribution/distribution/v3,
// the registry behind most self-hosted ones, with filesystem storage) on a
// loopback address for bench/push.sh, and counts the blob bytes it receives
// (PATCH and PUT bodies of uploads) so the bench reports what arrived, not
// only what ferry says it sent. GET /bench/received answers the count.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5055", "address to listen on")
	dir := flag.String("dir", "", "storage directory (required)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("pushreg: -dir is required")
	}
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem":  configuration.Parameters{"rootdirectory": *dir},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
	}
	cfg.HTTP.Secret = "ferry-bench-secret"
	app := handlers.NewApp(context.Background(), cfg)
	var received atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bench/received" {
			fmt.Fprintln(w, received.Load())
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
			r.Body = &counted{r.Body, &received}
		}
		app.ServeHTTP(w, r)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}

type counted struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *counted) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}
