package serve_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
)

// TestGracefulShutdown: a download in flight when the context ends is
// finished; then Serve returns nil and the listener is closed.
func TestGracefulShutdown(t *testing.T) {
	b1 := bundle1(t)
	e := newEnv(t, b1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.Serve(ctx, ln, e.srv.Handler(serve.Routes{}), nil, nil) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /example.com/a/@v/v1.0.0.zip HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The response has started; now stop the server.
	cancel()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != string(b1["example.com/a/@v/v1.0.0.zip"]) {
		t.Fatalf("download across shutdown: %d bytes, %v", len(body), err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener still accepts after shutdown")
	}
}
