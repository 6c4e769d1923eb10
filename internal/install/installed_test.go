package install

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
)

// TestInstalledOpenHoldsNoFiles: reading a delta's base back from an install
// must not keep a file open per blob (a big base would exhaust the limit on
// open files while verify reads every zip). The test failed before Open
// opened files per read.
func TestInstalledOpenHoldsNoFiles(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	b := newBuilder("base")
	for i := range 60 {
		b.module(t, fmt.Sprintf("example.com/m%02d", i), "v1.0.0", ".mod", ".zip")
	}
	src := b.source()
	if _, err := Install(ctx, src, Options{Prefix: prefix, GoEnvFile: "-"}); err != nil {
		t.Fatal(err)
	}
	in, err := OpenInstalled(prefix, src.ManifestDigest())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	before := fds()
	var readers []*io.SectionReader
	for _, it := range src.Manifest().Items {
		sr, err := in.Open(it.Digest)
		if err != nil {
			t.Fatalf("%s: %v", it.File, err)
		}
		data, err := io.ReadAll(sr)
		if err != nil || int64(len(data)) != it.Size || sha(data) != it.Digest {
			t.Fatalf("%s: read %d bytes (%v), want its %d bytes", it.File, len(data), err, it.Size)
		}
		if err := in.VerifyBlob(ctx, it.Digest); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, sr)
	}
	if n := fds() - before; n > 5 {
		t.Errorf("%d readers of installed blobs hold %d more open files", len(readers), n)
	}
}
