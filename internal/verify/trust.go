package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-dev/ferry/internal/gocmd"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
)

// Trust is what the offline side trusts, found on its own machine, never in
// the bundle.
type Trust struct {
	SumDBKey string // verifier key of the checksum database
	KeyFrom  string // where the key came from, for messages
	NoSumDB  string // GONOSUMDB, else GOPRIVATE
	// Missing says, when SumDBKey is "", why this host has none (for
	// messages that say which fix applies here).
	Missing string
}

// LocalTrust finds the verifier key for checksum database name: flagKey if
// given; else the local go command's GOSUMDB (with its key, or the key built
// into its GOROOT); else the key built into the toolchain at goroots (e.g. one
// ferry installed earlier). It returns an empty key when none is known.
func LocalTrust(ctx context.Context, name, flagKey string, goroots ...string) Trust {
	var t Trust
	if flagKey != "" {
		t.SumDBKey, t.KeyFrom = flagKey, "--sumdb-key"
	}
	g, err := gocmd.Find()
	if err != nil {
		t.Missing = "this host has no go command to take its key from"
	}
	if err == nil {
		r := &gocmd.Runner{Go: g, Env: os.Environ()}
		if env, err := r.GoEnv(ctx, os.TempDir(), nil, "GOSUMDB", "GOROOT", "GONOSUMDB", "GOPRIVATE"); err == nil {
			t.NoSumDB = env["GONOSUMDB"]
			if t.NoSumDB == "" {
				t.NoSumDB = env["GOPRIVATE"]
			}
			if t.SumDBKey == "" {
				t.Missing = fmt.Sprintf("the go command here (%s) has GOSUMDB=%s, not %s", g, env["GOSUMDB"], name)
				if n, k, _, err := sumdbsnap.ParseGOSUMDB(env["GOSUMDB"]); err == nil && n == name {
					if k == "" {
						k, _ = sumdbsnap.GoRootKey(env["GOROOT"], name)
					}
					if k != "" {
						t.SumDBKey, t.KeyFrom = k, "GOSUMDB of "+g
					}
				}
			}
			if t.SumDBKey == "" {
				if k, err := sumdbsnap.GoRootKey(env["GOROOT"], name); err == nil {
					t.SumDBKey, t.KeyFrom = k, "GOROOT "+env["GOROOT"]
				}
			}
		}
	}
	for _, root := range goroots {
		if t.SumDBKey != "" {
			break
		}
		if _, err := os.Stat(filepath.Join(root, "src")); err != nil {
			continue
		}
		if k, err := sumdbsnap.GoRootKey(root, name); err == nil {
			t.SumDBKey, t.KeyFrom = k, "GOROOT "+root
		}
	}
	if t.SumDBKey != "" {
		t.Missing = ""
	}
	return t
}
