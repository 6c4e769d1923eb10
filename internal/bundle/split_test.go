package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// splitTestBundle writes a real bundle of a few items (about 100 KB) to
// dir/app.ferry and returns its path, its bytes and the item contents.
func splitTestBundle(t testing.TB, dir string) (string, []byte, *Manifest, MemSource) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: "app", Version: "v1.2.3"}
	for i, n := range []int{40_000, 1, 0, 513, 30_000, 7, 25_000} {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		d := Digest(data)
		src[d] = data
		m.Items = append(m.Items, Item{File: fmt.Sprintf("example.com/m%d/@v/v1.0.0.zip", i), Kind: KindZip, Module: fmt.Sprintf("example.com/m%d", i), Version: "v1.0.0", Size: int64(n), Digest: d})
	}
	path := filepath.Join(dir, "app.ferry")
	if _, err := Write(context.Background(), path, m, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data, m, src
}

// splitTest writes a bundle and splits it in parts of partSize bytes.
func splitTest(t *testing.T, partSize int64) (path string, whole []byte, idx *SplitIndex, src MemSource) {
	t.Helper()
	dir := t.TempDir()
	path, whole, _, src = splitTestBundle(t, dir)
	idx, err := Split(context.Background(), path, partSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path, whole, idx, src
}

// openSplitReader opens a split bundle the way Open does once wired.
func openSplitReader(t *testing.T, path string) (*Reader, io.Closer) {
	t.Helper()
	ra, size, c, ok, err := OpenSplit(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSplit(%s): %v", path, err)
	}
	if !ok {
		t.Fatalf("OpenSplit(%s): not taken for a split bundle", path)
	}
	r, err := openReaderAt(path, ra, size)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return r, c
}

// dirNames lists the names of the files in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestSplitRoundTrip(t *testing.T) {
	ctx := context.Background()
	probe, _, _, _ := splitTestBundle(t, t.TempDir())
	fi, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	full := fi.Size()
	for _, partSize := range []int64{4096, 10_000, 512*7 + 3, full - 1, full, full + 1, 1 << 30} {
		t.Run(strconv.FormatInt(partSize, 10), func(t *testing.T) {
			path, whole, idx, src := splitTest(t, partSize)
			dir := filepath.Dir(path)
			wantParts := int((full + partSize - 1) / partSize)
			if len(idx.Parts) != wantParts {
				t.Fatalf("%d parts, want %d", len(idx.Parts), wantParts)
			}
			// The files: the index at NAME, the parts beside it, nothing else.
			want := []string{"app.ferry"}
			var cat []byte
			for i, p := range idx.Parts {
				if wantName := fmt.Sprintf("app.ferry.%03d", i+1); p.Name != wantName {
					t.Errorf("part %d is named %s, want %s", i+1, p.Name, wantName)
				}
				if p.Size > partSize || (i < len(idx.Parts)-1 && p.Size != partSize) {
					t.Errorf("part %s has %d bytes (part size %d)", p.Name, p.Size, partSize)
				}
				data, err := os.ReadFile(filepath.Join(dir, p.Name))
				if err != nil {
					t.Fatal(err)
				}
				if Digest(data) != p.Digest || int64(len(data)) != p.Size {
					t.Errorf("part %s: index does not describe the file", p.Name)
				}
				cat = append(cat, data...)
				want = append(want, p.Name)
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Errorf("files %v, want %v", got, want)
			}
			if !bytes.Equal(cat, whole) {
				t.Fatal("the parts concatenated differ from the bundle")
			}
			if idx.Size != full || idx.Digest != Digest(whole) || idx.Bundle != "app.ferry" || idx.MediaType != SplitMediaType {
				t.Errorf("index %+v", idx)
			}
			// The index on disk is what Split returned.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			onDisk, err := DecodeSplitIndex(data)
			if err != nil {
				t.Fatal(err)
			}
			if enc, _ := EncodeSplitIndex(idx); !bytes.Equal(enc, data) {
				t.Errorf("index on disk:\n%s\nSplit returned:\n%s", data, enc)
			}
			wholeReader, err := openReaderAt("whole", bytes.NewReader(whole), int64(len(whole)))
			if err != nil {
				t.Fatal(err)
			}
			if onDisk.Manifest != wholeReader.Digest() {
				t.Errorf("index names manifest %s, bundle has %s", onDisk.Manifest, wholeReader.Digest())
			}

			// Index path, first part and last part are all accepted.
			for _, given := range []string{path, filepath.Join(dir, idx.Parts[0].Name), filepath.Join(dir, idx.Parts[len(idx.Parts)-1].Name)} {
				r, c := openSplitReader(t, given)
				if r.Digest() != wholeReader.Digest() {
					t.Errorf("%s: digest %s, want %s", given, r.Digest(), wholeReader.Digest())
				}
				for _, it := range r.Manifest().Items {
					sr, err := r.Open(it.Digest)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(sr)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, src[it.Digest]) {
						t.Errorf("%s: item %s reads back different bytes", given, it.File)
					}
					if err := r.VerifyBlob(ctx, it.Digest); err != nil {
						t.Error(err)
					}
				}
				if err := c.Close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestSplitReaderAt reads random ranges, across part boundaries and past the
// end, and compares with the whole bundle.
func TestSplitReaderAt(t *testing.T) {
	path, whole, _, _ := splitTest(t, 1000)
	ra, size, c, ok, err := OpenSplit(context.Background(), path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer c.Close()
	if size != int64(len(whole)) {
		t.Fatalf("size %d, want %d", size, len(whole))
	}
	ref := bytes.NewReader(whole)
	rng := rand.New(rand.NewPCG(1, 1))
	check := func(off int64, n int) {
		got := make([]byte, n)
		want := make([]byte, n)
		gn, gerr := ra.ReadAt(got, off)
		wn, werr := ref.ReadAt(want, off)
		if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) || (werr == io.EOF && gerr != io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", n, off, gn, gerr, wn, werr)
		}
	}
	for range 2000 {
		check(rng.Int64N(size+10), rng.IntN(5000))
	}
	for _, b := range []int64{0, 999, 1000, 1001, size - 1, size, size + 1} {
		for _, n := range []int{0, 1, 2, 1000, 2001} {
			if b >= 0 {
				check(b, n)
			}
		}
	}
	if _, err := ra.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset: no error")
	}
	check(0, int(size))
}

// brokenSplit splits the test bundle in parts of 10,000 bytes (at least 4)
// and returns the index path and the directory.
func brokenSplit(t *testing.T) (string, string, *SplitIndex) {
	path, _, idx, _ := splitTest(t, 10_000)
	if len(idx.Parts) < 4 {
		t.Fatalf("only %d parts", len(idx.Parts))
	}
	return path, filepath.Dir(path), idx
}

// wantRefused opens the split bundle through each of the index and the
// first part and checks the error has exactly the lines wanted (substrings),
// each starting with "bundle PATH:".
func wantRefused(t *testing.T, path string, given []string, want ...string) {
	t.Helper()
	for _, g := range given {
		ra, _, c, ok, err := OpenSplit(context.Background(), g)
		if err == nil {
			c.Close()
			t.Fatalf("OpenSplit(%s) accepted a broken set (ok=%v, ra=%v)", g, ok, ra != nil)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(want) {
			t.Errorf("OpenSplit(%s): %d lines, want %d:\n%v", g, len(lines), len(want), err)
			continue
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, "bundle "+path+": ") || !strings.Contains(l, want[i]) {
				t.Errorf("OpenSplit(%s): line %d = %q, want %q after \"bundle %s: \"", g, i+1, l, want[i], path)
			}
		}
	}
}

func TestSplitMissingPart(t *testing.T) {
	path, dir, _ := brokenSplit(t)
	if err := os.Remove(filepath.Join(dir, "app.ferry.003")); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, path, []string{path, path + ".001"}, "part app.ferry.003 is missing")
}

func TestSplitFlippedByte(t *testing.T) {
	path, dir, _ := brokenSplit(t)
	p := filepath.Join(dir, "app.ferry.002")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, path, []string{path, path + ".001"}, "part app.ferry.002: sha256 mismatch (damaged or from another bundle)")
}

func TestSplitTruncatedPart(t *testing.T) {
	path, dir, idx := brokenSplit(t)
	p := filepath.Join(dir, "app.ferry.002")
	if err := os.Truncate(p, idx.Parts[1].Size-1); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, path, []string{path, path + ".001"}, fmt.Sprintf("part app.ferry.002: %d bytes, the index says %d (truncated", idx.Parts[1].Size-1, idx.Parts[1].Size))
}

func TestSplitPartsOutOfOrder(t *testing.T) {
	t.Run("same size", func(t *testing.T) {
		path, dir, _ := brokenSplit(t)
		swap(t, filepath.Join(dir, "app.ferry.002"), filepath.Join(dir, "app.ferry.003"))
		wantRefused(t, path, []string{path, path + ".001"},
			"part app.ferry.002 holds the content of part app.ferry.003 (parts renamed or out of order)",
			"part app.ferry.003 holds the content of part app.ferry.002 (parts renamed or out of order)")
	})
	t.Run("with the last", func(t *testing.T) {
		path, dir, idx := brokenSplit(t)
		last := idx.Parts[len(idx.Parts)-1].Name
		if idx.Parts[len(idx.Parts)-1].Size == idx.Parts[0].Size {
			t.Fatal("the last part has the size of the others: the test needs it smaller")
		}
		swap(t, filepath.Join(dir, "app.ferry.001"), filepath.Join(dir, last))
		// The first part now holds the last one's content, the last part the
		// first's; both are named (given the index; the first part path is
		// now the last part's content and still finds the index).
		wantRefused(t, path, []string{path, path + ".001", filepath.Join(dir, last)},
			"part app.ferry.001 holds the content of part "+last,
			"part "+last+" holds the content of part app.ferry.001")
	})
}

// TestSplitSeveralProblems: one part missing, one with a flipped byte, two
// swapped: every one named, one line each, in part order.
func TestSplitSeveralProblems(t *testing.T) {
	path, dir, idx := brokenSplit(t)
	if len(idx.Parts) < 5 {
		t.Fatalf("only %d parts", len(idx.Parts))
	}
	os.Remove(filepath.Join(dir, "app.ferry.004"))
	p := filepath.Join(dir, "app.ferry.001")
	data, _ := os.ReadFile(p)
	data[100] ^= 0x80
	os.WriteFile(p, data, 0o644)
	swap(t, filepath.Join(dir, "app.ferry.002"), filepath.Join(dir, "app.ferry.003"))
	wantRefused(t, path, []string{path, p},
		"part app.ferry.001: sha256 mismatch",
		"part app.ferry.002 holds the content of part app.ferry.003",
		"part app.ferry.003 holds the content of part app.ferry.002",
		"part app.ferry.004 is missing")
}

func TestSplitPartFromAnotherBundle(t *testing.T) {
	path, dir, _ := brokenSplit(t)
	other := filepath.Join(t.TempDir(), "other.ferry")
	// Another bundle's part of the same size.
	otherPath, _, _, _ := splitTestBundle(t, filepath.Dir(other))
	data, _ := os.ReadFile(otherPath)
	for i := range data {
		data[i] ^= 0x55
	}
	os.WriteFile(filepath.Join(dir, "app.ferry.002"), data[:10_000], 0o644)
	wantRefused(t, path, []string{path}, "part app.ferry.002: sha256 mismatch (damaged or from another bundle)")
}

func swap(t *testing.T, a, b string) {
	t.Helper()
	tmp := a + ".swap"
	for _, r := range [][2]string{{a, tmp}, {b, a}, {tmp, b}} {
		if err := os.Rename(r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSplitIndexRefusesPaths: an index naming a part outside its directory
// is refused before any file is opened.
func TestSplitIndexRefusesPaths(t *testing.T) {
	for _, bad := range []string{"../x", "..", "a/b", `a\b`, "/etc/passwd", ".", "", "c:x", "a\x00b", "a\nb"} {
		t.Run(strconv.Quote(bad), func(t *testing.T) {
			path, dir, idx := brokenSplit(t)
			// Put a real copy of part 2 where "../x" would point, so that only
			// the name check can refuse it.
			data, _ := os.ReadFile(filepath.Join(dir, "app.ferry.002"))
			os.WriteFile(filepath.Join(filepath.Dir(dir), "x"), data, 0o644)
			idx.Parts[1].Name = bad
			enc, err := EncodeSplitIndex(idx)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, enc, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, _, _, err = OpenSplit(context.Background(), path)
			if err == nil || !strings.HasPrefix(err.Error(), "bundle "+path+": split index: part 2:") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("OpenSplit with part name %q: %v", bad, err)
			}
			t.Log(err)
		})
	}
}

func TestSplitNotSplit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, _, _, _ := splitTestBundle(t, dir)
	// A whole bundle, a missing file, a directory, a garbage file, a whole
	// bundle named like a part: not split bundles, Open reads them.
	partLike := filepath.Join(dir, "backup.001")
	data, _ := os.ReadFile(path)
	os.WriteFile(partLike, data, 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("hello"), 0o644)
	for _, p := range []string{path, filepath.Join(dir, "nothing"), dir, garbage, partLike} {
		ra, _, c, ok, err := OpenSplit(ctx, p)
		if err != nil || ok || ra != nil || c != nil {
			t.Errorf("OpenSplit(%s) = %v, %v", p, ok, err)
		}
	}
	// Some JSON that is no split index: refused, naming it.
	js := filepath.Join(dir, "x.json")
	os.WriteFile(js, []byte(`{"schemaVersion":1}`), 0o644)
	if _, _, _, _, err := OpenSplit(ctx, js); err == nil || !strings.Contains(err.Error(), "bundle "+js+": not a ferry split index") {
		t.Errorf("OpenSplit(JSON) = %v", err)
	}
}

func TestSplitMissingIndex(t *testing.T) {
	ctx := context.Background()
	path, whole, idx, _ := splitTest(t, 10_000)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, _, _, _, err := OpenSplit(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "app.ferry.001 is there: the index of a split bundle is missing") {
		t.Errorf("OpenSplit(missing index) = %v", err)
	}
	_, _, _, _, err = OpenSplit(ctx, path+".001")
	if err == nil || !strings.HasPrefix(err.Error(), "bundle "+path+": the index of the split bundle that app.ferry.001 belongs to is missing") {
		t.Errorf("OpenSplit(first part, missing index) = %v", err)
	}
	// What the message says rebuilds the bundle.
	var cat []byte
	for _, p := range idx.Parts {
		d, _ := os.ReadFile(filepath.Join(filepath.Dir(path), p.Name))
		cat = append(cat, d...)
	}
	if !bytes.Equal(cat, whole) {
		t.Error("cat of the parts is not the bundle")
	}
}

func TestSplitGivenPartNotListed(t *testing.T) {
	path, dir, idx := brokenSplit(t)
	extra := filepath.Join(dir, fmt.Sprintf("app.ferry.%03d", len(idx.Parts)+5))
	os.WriteFile(extra, []byte("x"), 0o644)
	_, _, _, _, err := OpenSplit(context.Background(), extra)
	if err == nil || !strings.HasPrefix(err.Error(), "bundle "+path+": ") || !strings.Contains(err.Error(), "is not one of the") {
		t.Errorf("OpenSplit(unlisted part) = %v", err)
	}
}

// TestSplitIndexDamaged: every part intact, but the index's whole-bundle
// digest is wrong.
func TestSplitIndexDamaged(t *testing.T) {
	path, _, idx, _ := splitTest(t, 10_000)
	idx.Digest = Digest([]byte("other"))
	enc, _ := EncodeSplitIndex(idx)
	os.WriteFile(path, enc, 0o644)
	_, _, _, _, err := OpenSplit(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "the index is damaged") {
		t.Errorf("OpenSplit = %v", err)
	}
}

func TestSplitRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, whole, _, _ := splitTestBundle(t, dir)
	unchanged := func(t *testing.T) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, whole) {
			t.Errorf("the bundle changed: %v", err)
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{"app.ferry"}) {
			t.Errorf("files left: %v", names)
		}
	}
	for _, size := range []int64{0, -1, 1} { // 1 byte: more than MaxSplitParts parts
		if _, err := Split(ctx, path, size, nil); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("Split(%d) = %v", size, err)
		} else {
			t.Log(err)
		}
		unchanged(t)
	}
	// Cancelled half-way: nothing written, the bundle untouched.
	cctx, cancel := context.WithCancel(ctx)
	calls := 0
	_, err := Split(cctx, path, 4096, func(int64) {
		if calls++; calls == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "canceled")) {
		t.Errorf("cancelled Split = %v", err)
	}
	unchanged(t)
	// Not a bundle (and so not an index twice).
	if _, err := Split(ctx, path, 4096, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Split(ctx, path, 4096, nil); err == nil || !strings.Contains(err.Error(), "not a tar file") {
		t.Errorf("Split(index) = %v", err)
	}
}

// TestSplitRemovesStaleParts: a new split of the same name leaves no parts of
// the earlier one, and is deterministic.
func TestSplitRemovesStaleParts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, whole, _, _ := splitTestBundle(t, dir)
	first, err := Split(ctx, path, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, whole, 0o644) // pack writes the bundle again
	second, err := Split(ctx, path, 30_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app.ferry"}
	for _, p := range second.Parts {
		want = append(want, p.Name)
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) || len(first.Parts) <= len(second.Parts) {
		t.Errorf("files %v, want %v", got, want)
	}
	os.WriteFile(path, whole, 0o644)
	third, err := Split(ctx, path, 30_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := EncodeSplitIndex(second)
	b, _ := EncodeSplitIndex(third)
	if !bytes.Equal(a, b) {
		t.Error("splitting the same bundle twice gave different indexes")
	}
}

func TestSplitPartNames(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want string
	}{{1, 1, "a.001"}, {12, 999, "a.012"}, {1, 1000, "a.0001"}, {10000, 10000, "a.10000"}} {
		if got := partName("a", c.i, c.n); got != c.want {
			t.Errorf("partName(%d, %d) = %s, want %s", c.i, c.n, got, c.want)
		}
		if stem, ok := partStem(c.want); !ok || stem != "a" {
			t.Errorf("partStem(%s) = %s, %v", c.want, stem, ok)
		}
	}
	for _, s := range []string{"a.01", "a.ferry", ".001", "a.001x", "a"} {
		if _, ok := partStem(s); ok {
			t.Errorf("partStem(%s) accepted", s)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"650M", 650_000_000},
		{"4.7G", 4_700_000_000},
		{"4GiB", 4 << 30},
		{"700MB", 700_000_000},
		{"123456", 123456},
		{"1B", 1},
		{" 2 k ", 2000},
		{"1.5KiB", 1536},
		{"0.3KiB", 307}, // rounded down
		{"4.7g", 4_700_000_000},
		{"2tb", 2e12},
		{"1TiB", 1 << 40},
		{"9223372036854775807", 1<<63 - 1},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"0", "less than one byte"},
		{"0.0001K", "less than one byte"},
		{"-1G", "negative"},
		{"4.7X", `unknown unit "X"`},
		{"4.7 GBs", "unknown unit"},
		{"1.5", "must be whole"},
		{"1.G", "no digits after the decimal point"},
		{".5G", "want a number"},
		{"1e9", `unknown unit "e9"`},
		{"G", "want a number"},
		{"9223372036854775808", "more than"},
		{"10000000000T", "more than"},
		{strings.Repeat("9", 100), "too long"},
	} {
		_, err := ParseSize(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "size ") {
			t.Errorf("ParseSize(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

// FuzzParseSize: no input panics; an accepted size is at least one byte and
// the same as its plain number of bytes; errors are one line.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"650M", "4.7G", "4GiB", "700MB", "123", "1.5KiB", "-1", "", "1e9", "0.0000000000001T"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		if n < 1 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if m, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || m != n {
			t.Fatalf("ParseSize(%q) = %d, but ParseSize(%d) = %d, %v", s, n, n, m, err)
		}
		if m, err := ParseSize(strings.ToUpper(s)); err != nil || m != n {
			t.Fatalf("ParseSize(%q) = %d, ParseSize(upper) = %d, %v", s, n, m, err)
		}
	})
}

// FuzzSplitIndex: no input panics the index parser; an accepted index has
// only safe, distinct part names, sizes that add up, and encodes back to an
// index that decodes to the same.
func FuzzSplitIndex(f *testing.F) {
	dir := f.TempDir()
	path, _, _, _ := splitTestBundle(f, dir)
	idx, err := Split(context.Background(), path, 30_000, nil)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := EncodeSplitIndex(idx)
	f.Add(good)
	bad := *idx
	bad.Parts = append([]SplitPart(nil), idx.Parts...)
	bad.Parts[0].Name = "../x"
	enc, _ := EncodeSplitIndex(&bad)
	f.Add(enc)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"mediaType":"` + SplitMediaType + `","schemaVersion":1}`))
	f.Add([]byte("oci-layout\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := DecodeSplitIndex(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		var total int64
		seen := map[string]bool{}
		for _, p := range idx.Parts {
			if p.Name != filepath.Base(p.Name) || strings.ContainsAny(p.Name, `/\`) || strings.Contains(p.Name, "..") || seen[p.Name] || p.Size <= 0 {
				t.Fatalf("accepted part %+v", p)
			}
			seen[p.Name] = true
			total += p.Size
		}
		if total != idx.Size || total <= 0 {
			t.Fatalf("accepted parts adding up to %d for a bundle of %d", total, idx.Size)
		}
		enc, err := EncodeSplitIndex(idx)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSplitIndex(enc)
		if err != nil {
			t.Fatalf("re-encoded index refused: %v", err)
		}
		a, _ := json.Marshal(idx)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the index:\n%s\n%s", a, b)
		}
	})
}

// benchBundle writes a bundle of about 128 MiB (16 items of 8 MiB).
func benchBundle(b *testing.B, dir string) string {
	b.Helper()
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: "bench"}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 16 {
		data := make([]byte, 8<<20)
		for j := 0; j < len(data); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		d := Digest(data)
		src[d] = data
		m.Items = append(m.Items, Item{File: fmt.Sprintf("example.com/m/@v/v1.0.%d.zip", i), Kind: KindZip, Module: "example.com/m", Version: fmt.Sprintf("v1.0.%d", i), Size: int64(len(data)), Digest: d})
	}
	path := filepath.Join(dir, "bench.ferry")
	if _, err := Write(context.Background(), path, m, src, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkSplit: splitting a 128 MiB bundle in 10 MB parts (MB/s of bundle).
func BenchmarkSplit(b *testing.B) {
	dir := b.TempDir()
	path := benchBundle(b, dir)
	whole, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(whole)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := os.WriteFile(path, whole, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Split(context.Background(), path, 10e6, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSplit: checking every part of a 128 MiB bundle in 10 MB
// parts and parsing it (MB/s of bundle; the files are in the page cache).
func BenchmarkOpenSplit(b *testing.B) {
	dir := b.TempDir()
	path := benchBundle(b, dir)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Split(context.Background(), path, 10e6, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		ra, size, c, ok, err := OpenSplit(context.Background(), path)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if _, err := openReaderAt(path, ra, size); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
