package bundle

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// detectCorruption reports how a damaged bundle at path is caught: by Open
// (whole-file structure and metadata digests) or by VerifyBlob of one blob. It
// returns "" when nothing catches the damage. A verify package checking a
// bundle must do at least these two steps to see every changed byte.
func detectCorruption(ctx context.Context, path string) (caughtBy string, err error) {
	r, err := Open(path)
	if err != nil {
		return "Open", err
	}
	defer r.Close()
	for _, b := range r.Blobs() {
		if err := r.VerifyBlob(ctx, b.Digest); err != nil {
			return "VerifyBlob " + b.Digest, err
		}
	}
	return "", nil
}

// blobAt returns the blob whose data holds byte pos, if any.
func blobAt(blobs []Blob, pos int64) (Blob, bool) {
	for _, b := range blobs {
		if b.Offset <= pos && pos < b.Offset+b.Size {
			return b, true
		}
	}
	return Blob{}, false
}

func TestEveryFlippedByteIsCaught(t *testing.T) {
	ctx := context.Background()
	signer, _ := testSigner(t, "ferry-test")
	path, _ := writeTest(t, t.TempDir(), "good.ferry", WriteOptions{Signer: signer})
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	blobs := r.Blobs()
	r.Close()
	metadata := map[string]bool{r.Digest(): true, r.ManifestDigest(): true}

	bad := filepath.Join(t.TempDir(), "bad.ferry")
	step := 1
	if testing.Short() {
		step = 7
	}
	checked := 0
	for pos := 0; pos < len(good); pos += step {
		b, inBlob := blobAt(blobs, int64(pos))
		if inBlob && !metadata[b.Digest] && pos%61 != 0 {
			continue // item data: sample it, VerifyBlob hashes every byte anyway
		}
		// One of several masks per position: 0x20 turns NUL into space and
		// back, which lenient tar parsers ignore; 0x80 changes the sign of a
		// byte, which tar checksums may treat specially.
		// Rotating masks hit every field of every header (the 8-byte checksum
		// field included) with each of them.
		masks := []byte{0x01, 0x20, 0x80, 0xff}
		for _, mask := range masks[pos%4 : pos%4+1] {
			data := append([]byte(nil), good...)
			data[pos] ^= mask
			if err := os.WriteFile(bad, data, 0o644); err != nil {
				t.Fatal(err)
			}
			checked++
			by, err := detectCorruption(ctx, bad)
			switch {
			case by == "":
				t.Fatalf("byte %d ^ %#x: not detected", pos, mask)
			case strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), bad+": "):
				t.Fatalf("byte %d ^ %#x: error not one line starting with the file name: %q", pos, mask, err)
			case by != "Open":
				// Open succeeded: only item data may have changed, and it must be
				// the item holding the byte that fails.
				if !inBlob || by != "VerifyBlob "+b.Digest {
					t.Fatalf("byte %d ^ %#x: caught by %s, want Open or VerifyBlob of the blob holding it", pos, mask, by)
				}
			}
		}
	}
	t.Logf("checked %d corruptions of a %d-byte bundle", checked, len(good))
}

func TestTruncated(t *testing.T) {
	path, _ := writeTest(t, t.TempDir(), "good.ferry", WriteOptions{})
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.ferry")
	lengths := []int{1, 10, 100, 511, 512, 513, 1000, 1024, 1536, 2048, len(good) / 2, len(good) - 1025, len(good) - 1024, len(good) - 513, len(good) - 512, len(good) - 1}
	for n := 1; n < len(good); n += 997 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		os.WriteFile(bad, good[:n], 0o644)
		_, err := Open(bad)
		if err == nil || !strings.HasPrefix(err.Error(), bad+": truncated: ") {
			t.Errorf("truncated to %d of %d bytes: err = %v, want truncated", n, len(good), err)
		}
	}
	// The message for a cut blob names the entry, its size and offset.
	r, _ := Open(path)
	var last Blob
	for _, b := range r.Blobs() {
		if b.Size > 100 {
			last = b
		}
	}
	r.Close()
	cut := last.Offset + last.Size/2
	os.WriteFile(bad, good[:cut], 0o644)
	_, err = Open(bad)
	want := fmt.Sprintf("%s: truncated: entry %s needs %d bytes at offset %d, file ends at %d", bad, blobName(last.Digest), last.Size, last.Offset, cut)
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// Appended data is refused too.
	os.WriteFile(bad, append(append([]byte(nil), good...), make([]byte, 512)...), 0o644)
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "after the end-of-archive marker") {
		t.Errorf("appended zeros: err = %v", err)
	}
}

func TestNotABundle(t *testing.T) {
	dir := t.TempDir()
	check := func(name string, data []byte, want string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		_, err := Open(p)
		if err == nil || !strings.HasPrefix(err.Error(), p+": "+want) {
			t.Errorf("%s: err = %v, want prefix %q", name, err, p+": "+want)
		}
	}
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7 + i/13)
	}
	check("random", random, "not a tar file")
	check("short", []byte("hello"), "not a tar file")
	check("empty", nil, "not a ferry bundle: empty file")
	check("zeros", make([]byte, 1024), "not a ferry bundle: no oci-layout entry")

	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hi\n"), 0o644)
	if _, err := exec.LookPath("tar"); err == nil {
		plain := filepath.Join(dir, "plain.tar")
		if out, err := exec.Command("tar", "-C", src, "-cf", plain, "hello.txt").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(plain)
		check("plain-tar", data, "not a ferry bundle: no oci-layout entry")
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "missing")+": ") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
}

func TestSkopeoInspect(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("skopeo is not installed (required in CI)")
		}
		t.Skip("skopeo is not installed")
	}
	path, digest := writeTest(t, t.TempDir(), "b.ferry", WriteOptions{})
	out, err := exec.Command("skopeo", "inspect", "--raw", "oci-archive:"+path).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if Digest(out) != digest {
		t.Errorf("skopeo reports a manifest with digest %s, want %s:\n%s", Digest(out), digest, out)
	}
	if !strings.Contains(string(out), ArtifactType) {
		t.Errorf("manifest lacks artifactType: %s", out)
	}
}
