// Package gocmd runs the real go command in an environment that ferry builds
// itself, never the one it happens to inherit.
//
// Invariants: a Runner passes exactly Env (plus per-call additions) to the go
// command; nothing from the caller's process environment leaks in except
// what the constructor copied on purpose (PATH, HOME-less basics). Errors
// carry the command line and the tail of its standard error.
package gocmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Runner runs one go binary with a fixed environment.
type Runner struct {
	Go  string   // path of the go binary
	Env []string // complete environment for every call
}

// Find returns the go binary to use: $FERRY_GO, else "go" on PATH.
func Find() (string, error) {
	if g := os.Getenv("FERRY_GO"); g != "" {
		return g, nil
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("finding the go command: %w (install Go or put it on PATH)", err)
	}
	return p, nil
}

// Error is a failed go command.
type Error struct {
	Args   []string
	Dir    string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	s := strings.TrimSpace(e.Stderr)
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return fmt.Sprintf("go %s (in %s): %v: %s", strings.Join(e.Args, " "), e.Dir, e.Err, s)
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs go with args in dir; extra is appended to the environment
// (later entries win). It returns standard output; on failure it returns
// the output so far and an *Error.
func (r *Runner) Run(ctx context.Context, dir string, extra []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.Go, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), r.Env...), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &Error{Args: args, Dir: dir, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

// Env runs `go env -json` and returns the variables.
func (r *Runner) GoEnv(ctx context.Context, dir string, extra []string, vars ...string) (map[string]string, error) {
	out, err := r.Run(ctx, dir, extra, append([]string{"env", "-json"}, vars...)...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parsing go env -json: %w", err)
	}
	return m, nil
}

// UserEnv reads the go settings of the calling user (their GOENV file,
// environment and GOROOT defaults) with the go binary goBin.
func UserEnv(ctx context.Context, goBin string) (map[string]string, error) {
	r := &Runner{Go: goBin, Env: os.Environ()}
	return r.GoEnv(ctx, ".", nil)
}

// DecodeStream decodes a stream of JSON values (the output of go list -json
// or go mod download -json) into a slice.
func DecodeStream[T any](data []byte) ([]T, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []T
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return out, fmt.Errorf("decoding go command JSON output: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Set returns env with key set to value (replacing an earlier setting).
func Set(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, key+"="+value)
}
