package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
)

func TestParseSplitFlag(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "650M": 650e6, "4.7G": 4.7e9, "4GiB": 4 << 30, "700MB": 700e6, "1000": 1000} {
		if got, err := parseSplitFlag(in); err != nil || got != want {
			t.Errorf("parseSplitFlag(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "4.7X", "-1G", "lots"} {
		if _, err := parseSplitFlag(in); err == nil || !strings.HasPrefix(err.Error(), "--split: size ") {
			t.Errorf("parseSplitFlag(%q) = %v", in, err)
		}
	}
}

// TestSplitBundle splits a real bundle as pack --split does and reads every
// item back through the index and through the first part.
func TestSplitBundle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := bundle.MemSource{}
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "split"}
	for i := range 5 {
		data := bytes.Repeat([]byte{byte(i + 1)}, 3000+i*1000)
		d := bundle.Digest(data)
		src[d] = data
		m.Items = append(m.Items, bundle.Item{File: fmt.Sprintf("example.com/m/@v/v1.0.%d.zip", i), Kind: bundle.KindZip, Module: "example.com/m", Version: fmt.Sprintf("v1.0.%d", i), Size: int64(len(data)), Digest: d})
	}
	path := filepath.Join(dir, "app.ferry")
	digest, err := bundle.Write(ctx, path, m, src, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a := &app{stdout: &out, stderr: io.Discard, quiet: true}
	idx, err := a.splitBundle(ctx, path, 8192)
	if err != nil {
		t.Fatal(err)
	}
	a.printSplit(path, idx)
	if len(idx.Parts) < 3 || idx.Manifest != digest {
		t.Fatalf("index %+v", idx)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("split into %d parts: app.ferry.001 ... app.ferry.%03d", len(idx.Parts), len(idx.Parts))) {
		t.Errorf("output:\n%s", out.String())
	}
	for _, given := range []string{path, path + ".001"} {
		ra, size, c, ok, err := bundle.OpenSplit(ctx, given)
		if err != nil || !ok {
			t.Fatalf("OpenSplit(%s) = %v, %v", given, ok, err)
		}
		whole := make([]byte, size)
		if _, err := ra.ReadAt(whole, 0); err != nil {
			t.Fatal(err)
		}
		c.Close()
		for d, data := range src {
			if !bytes.Contains(whole, data) {
				t.Errorf("%s: item %s not found in the bundle read back", given, d)
			}
		}
	}
	// Splitting what is no longer a bundle fails and says the file is left as it is.
	before, _ := os.ReadFile(path)
	if _, err := a.splitBundle(ctx, path, 8192); err == nil || !strings.Contains(err.Error(), "is left as it was") {
		t.Errorf("splitting an index: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed split changed the file")
	}
}
