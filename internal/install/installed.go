package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/ctxio"
)

// manifestsDir keeps the ferry manifest of every bundle installed, so that
// a later delta can be read through what the prefix already holds.
const manifestsDir = ".ferry/manifests"

// saveManifest records the ferry manifest of the bundle being installed:
// its bytes as in the bundle where src has them (so that 'ferry state
// export' gives a file with the digest a delta names), else re-encoded.
func saveManifest(prefix string, src Source) error {
	digest, m := src.ManifestDigest(), src.Manifest()
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hex) != 64 || strings.ContainsAny(hex, `/\.`) {
		return fmt.Errorf("recording manifest: invalid digest %q", digest)
	}
	var data []byte
	if sr, err := src.Open(digest); err == nil && sr.Size() <= 512<<20 {
		if b, err := io.ReadAll(sr); err == nil && bundle.Digest(b) == digest {
			data = b
		}
	}
	if data == nil {
		var err error
		if data, err = bundle.EncodeManifest(m); err != nil {
			return fmt.Errorf("recording manifest %s: %w", digest, err)
		}
	}
	dir := filepath.Join(prefix, filepath.FromSlash(manifestsDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recording manifest: %w", err)
	}
	return writeBytes(filepath.Join(dir, hex+".json"), data)
}

// ManifestFile returns the path of the recorded manifest of an installed
// bundle.
func ManifestFile(prefix, digest string) (string, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hex) != 64 || strings.ContainsAny(hex, `/\.`) {
		return "", fmt.Errorf("invalid manifest digest %q", digest)
	}
	return filepath.Join(prefix, filepath.FromSlash(manifestsDir), hex+".json"), nil
}

// readManifest reads the manifest recorded for an installed bundle.
func readManifest(prefix, digest string) (*bundle.Manifest, error) {
	p, err := ManifestFile(prefix, digest)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return bundle.DecodeManifest(data)
}

// Installed is a bundle installed in a prefix, read back from the store
// files it put there, as the base of a delta (a bundle.BlobStore). Blobs
// are found by the item files the bundle's manifest lists, in the current
// store generation and in the one its install made; VerifyBlob re-hashes
// them, so a changed store file is never taken for the blob.
type Installed struct {
	prefix string
	files  map[string][]string // digest -> candidate paths
	sizes  map[string]int64
}

var _ bundle.BlobStore = (*Installed)(nil)

// OpenInstalled finds the bundle whose ferry manifest has digest
// manifestDigest among those installed in prefix. The error wraps
// fs.ErrNotExist if it is not installed there.
func OpenInstalled(prefix, manifestDigest string) (*Installed, error) {
	st, err := ReadState(prefix)
	if err != nil {
		return nil, err
	}
	i := st.find(manifestDigest)
	if i < 0 {
		return nil, fmt.Errorf("bundle %s is not installed in %s: %w", manifestDigest, prefix, fs.ErrNotExist)
	}
	m, err := readManifest(prefix, manifestDigest)
	if err != nil {
		return nil, fmt.Errorf("bundle %s is installed in %s, but its manifest is not recorded (installed by an older ferry?): %w", manifestDigest, prefix, err)
	}
	rec := st.Bundles[i]
	roots := []string{filepath.Join(prefix, modLink)}
	if _, ok := genNumber(rec.Generation); ok {
		gen := filepath.Join(prefix, filepath.FromSlash(genDir), rec.Generation)
		// The store tree of the generation its install made (directly
		// in it for a prefix laid out by an earlier ferry).
		roots = append(roots, filepath.Join(gen, genMod), gen)
	}
	in := &Installed{prefix: prefix, files: map[string][]string{}, sizes: map[string]int64{}}
	for _, it := range m.Items {
		if checkFile(it.File) != nil {
			continue
		}
		in.sizes[it.Digest] = it.Size
		for _, r := range roots {
			p := filepath.Join(r, filepath.FromSlash(it.File))
			if it.Encoded() {
				// The store holds the decoded zip; the blob is kept aside.
				p = blobPath(r, it.Digest)
			}
			in.files[it.Digest] = append(in.files[it.Digest], p)
		}
	}
	return in, nil
}

// Close releases nothing: Open's readers hold no open files.
func (in *Installed) Close() error { return nil }

// Stat reports the size the installed bundle's manifest gives the blob.
func (in *Installed) Stat(digest string) (int64, bool) {
	s, ok := in.sizes[digest]
	return s, ok
}

// candidates opens, one after the other, each store file that may hold the
// blob and has its size; fn returns true to stop.
func (in *Installed) candidates(digest string, fn func(f *os.File) bool) error {
	size, ok := in.sizes[digest]
	if !ok {
		return fmt.Errorf("installed bundle in %s: blob %s: %w", in.prefix, digest, fs.ErrNotExist)
	}
	for _, p := range in.files[digest] {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
			f.Close()
			continue
		}
		if fn(f) {
			return nil
		}
	}
	return fmt.Errorf("installed bundle in %s: blob %s: no store file holds it any more: %w", in.prefix, digest, fs.ErrNotExist)
}

// Open returns a reader of the first store file that has the blob's size.
// The reader opens the file for each read (a verify of a big base would
// otherwise hold thousands of files open at once).
func (in *Installed) Open(digest string) (*io.SectionReader, error) {
	var path string
	err := in.candidates(digest, func(f *os.File) bool {
		path = f.Name()
		f.Close()
		return true
	})
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(fileAt(path), 0, in.sizes[digest]), nil
}

// fileAt is an io.ReaderAt that opens its file for each read.
type fileAt string

func (p fileAt) ReadAt(b []byte, off int64) (int, error) {
	f, err := os.Open(string(p))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(b, off)
}

// VerifyBlob checks that a store file holds exactly the blob.
func (in *Installed) VerifyBlob(ctx context.Context, digest string) error {
	found := false
	var ferr error
	in.candidates(digest, func(f *os.File) bool {
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, ctxio.Reader(ctx, f)); err != nil {
			ferr = err
			return true
		}
		found = "sha256:"+hex.EncodeToString(h.Sum(nil)) == digest
		return found
	})
	switch {
	case ferr != nil:
		return fmt.Errorf("installed bundle in %s: verifying blob %s: %w", in.prefix, digest, ferr)
	case !found:
		return fmt.Errorf("installed bundle in %s: blob %s: no store file holds it (changed since install?)", in.prefix, digest)
	}
	return nil
}
