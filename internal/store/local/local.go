// Package local is a store.Store in a directory of the local file system.
//
// Layout:
//
//	DIR/bundles/<hex>.ferry    a whole bundle file, named by the hex of its OCI manifest digest
//	DIR/index.json             the imported bundles (a JSON array of store.BundleInfo), oldest first
//	DIR/files/sha256/<hex>     the decoded file of an encoded item (a module zip), named by
//	                           the hex of its Item.FileDigest, which a server sends as it is
//	DIR/gz/sha256/<hex>        the gzip of that decoded file (same name), which a server sends
//	                           with Content-Encoding: gzip to a client that accepts it
//	DIR/blobs/sha256/<hex>     a blob a delta reads from a base that Prune dropped
//	DIR/lock                   flock taken by Import and Prune (List needs none: index.json is replaced by rename)
//
// Invariants:
//   - Bundle files are never unpacked or modified: Import copies the file to a
//     temporary name, checks the copy (structure, identity and every blob's
//     digest), syncs it and renames it into place; blobs are served straight
//     from the file.
//   - Before a bundle is listed, the decoded file of each of its encoded
//     items is in DIR/files: decoded into a temporary file (whose size and
//     sha256 must be the manifest's FileSize and FileDigest), made durable,
//     renamed into place. A file there is whole and checked; one that is
//     missing (a bundle imported by an older ferry) is decoded by the
//     server instead, and written by the next import of that bundle.
//   - Likewise, before a bundle is listed, the gzip of each of those
//     decoded files is in DIR/gz (level GzipLevel, no name or time in its
//     header): compressed once, at import, from the decoded file (whose
//     bytes are checked against size and digest as they are read) into a
//     temporary file, made durable, renamed into place after the decoded
//     files. A gzip there is whole and decompresses to its decoded file;
//     one that is missing (an older ferry) means the server sends the
//     decoded file uncompressed, until the next import of that bundle
//     writes it. Prune removes a gzip with its decoded file.
//   - index.json is replaced atomically (temporary file, fsync, rename, fsync
//     of the directory) after the bundle file and its decoded files and
//     gzips are durable, under an exclusive flock, so a bundle is listed
//     only when all of it is stored, several importers serialise, and
//     readers see either the old or the new list.
//   - A bundle file whose digest is not in index.json is invisible; a rerun of
//     an interrupted Import replaces it, and Prune removes it. Temporary
//     files (".*.tmp") are only written under the exclusive flock, so Import
//     and Prune remove the ones a killed process left.
//   - Prune removes, after index.json no longer lists the bundle, its file,
//     every other bundle file index.json does not list, every decoded file
//     and gzip that no listed bundle's encoded items name, and every blob
//     it kept aside that no listed delta leaves to its base; it keeps the
//     others.
//   - What Import stores and later serves or decodes is read from its own
//     checked copy only, never again from the file it was given: a file
//     changed after the caller verified it is refused (identity or blob
//     digest of the copy), or, once the copy is checked, no longer read.
//   - Paths inside the store are built from digests checked to be
//     "sha256:<64 hex>", never from anything else.
//   - Permissions follow the umask, as in the go command's module cache:
//     on unix every file is created read-only for all (0444, see filePerm;
//     the lock file, opened for writing, 0666) and every directory 0777,
//     and the kernel clears the bits the umask names as it creates them.
//     Under the usual umask 022 a server run as another user than the
//     importer reads everything (files 0444, directories 0755); under 077
//     the store stays private to its owner. Files are never written in
//     place (temporary file, then rename; unlink), so read-only files do
//     not hinder Import or Prune. The umask is never read or set
//     (syscall.Umask would change it for the whole process). Files an
//     older ferry wrote stay 0600: chmod -R a+rX DIR once.
//   - Options.Hook is called at each step boundary of Import and Prune
//     (the Step* constants). A process killed at any of them leaves the
//     store listing exactly the bundles it listed before or exactly the
//     ones it lists after, every listed bundle whole and served as before
//     or after. A rerun finishes; what the killed run left is removed by
//     the rerun (temporary files) or by the next Prune (a bundle file or
//     decoded files and gzips nothing lists).
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/ctxio"
	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/store"
)

// maxIndexSize bounds index.json.
const maxIndexSize = 64 << 20

// Store is a store in a local directory. It is safe for concurrent use.
type Store struct {
	dir  string
	hook func(step string) // Options.Hook, or nil

	// mu guards readers. Every request of a server reads it (Blob), so
	// lookups take only the read lock; opening a bundle takes the write lock.
	mu      sync.RWMutex
	readers map[string]*bundle.Reader // bundle digest -> open reader
	bases   map[string]string         // manifest digest -> bundle digest, as found in index.json
}

var _ store.Store = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// Hook, if not nil, is called at each step boundary of Import and
	// Prune with the step's name (one of the Step* constants), in the
	// goroutine that runs them, with the store's lock held. It is for
	// tests that stop or kill a run there; a step repeated for several
	// files (StepImportFileRenamed) is reported each time.
	Hook func(step string)
	// Existing makes OpenWith fail, with an error wrapping
	// fs.ErrNotExist, when dir holds no store, instead of creating one:
	// for whatever only reads a store or drops from it.
	Existing bool
}

// The step boundaries of Import and Prune, as Options.Hook names them.
// What is on disk (and durable) when the hook is called:
const (
	StepImportLocked       = "import:locked"        // the exclusive lock is held; nothing written
	StepImportTempsRemoved = "import:temps-removed" // temporary files of killed runs removed
	StepImportCopied       = "import:copied"        // the bundle copied to a temporary file, synced
	StepImportChecked      = "import:checked"       // the copy's identity and blobs checked
	StepImportRenamed      = "import:renamed"       // the copy renamed into bundles/, directory synced (not listed)
	StepImportDecoded      = "import:decoded"       // decoded files and their gzips written to temporary files, durable
	StepImportFileRenamed  = "import:file-renamed"  // one decoded file renamed into place (once per file)
	StepImportGzipRenamed  = "import:gzip-renamed"  // one gzip of a decoded file renamed into place (once per file)
	StepImportFilesSynced  = "import:files-synced"  // every decoded file and gzip in place, directories synced
	StepImportIndexWritten = "import:index-written" // the new index.json written to a temporary file, synced
	StepImportListed       = "import:listed"        // index.json replaced, directory synced: the bundle is listed

	StepPruneLocked        = "prune:locked"         // the exclusive lock is held; nothing written
	StepPruneTempsRemoved  = "prune:temps-removed"  // temporary files of killed runs removed
	StepPruneBlobKept      = "prune:blob-kept"      // one blob a delta still reads copied aside (once per blob)
	StepPruneIndexWritten  = "prune:index-written"  // the new index.json written to a temporary file, synced
	StepPruneUnlisted      = "prune:unlisted"       // index.json replaced: the bundle is no longer listed
	StepPruneBundleRemoved = "prune:bundle-removed" // its file removed, directory synced
	StepPruneSwept         = "prune:swept"          // files no listed bundle needs removed
)

// ImportSteps returns the steps an Import that copies a bundle holding
// encoded zips passes, in order; PruneSteps those of a Prune that keeps
// blobs for a delta.
func ImportSteps() []string {
	return []string{StepImportLocked, StepImportTempsRemoved, StepImportCopied, StepImportChecked, StepImportRenamed,
		StepImportDecoded, StepImportFileRenamed, StepImportGzipRenamed, StepImportFilesSynced, StepImportIndexWritten, StepImportListed}
}

// PruneSteps: see ImportSteps.
func PruneSteps() []string {
	return []string{StepPruneLocked, StepPruneTempsRemoved, StepPruneBlobKept, StepPruneIndexWritten,
		StepPruneUnlisted, StepPruneBundleRemoved, StepPruneSwept}
}

// step reports a step boundary to the hook.
func (s *Store) step(name string) {
	if s.hook != nil {
		s.hook(name)
	}
}

// Open opens (creating it if needed) the store in dir.
func Open(dir string) (*Store, error) {
	return OpenWith(dir, Options{})
}

// OpenWith is Open with options.
func OpenWith(dir string, opt Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("opening store: no directory given")
	}
	if opt.Existing {
		if err := checkExists(dir); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(filepath.Join(dir, "bundles"), dirPerm); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	return &Store{dir: dir, hook: opt.Hook, readers: map[string]*bundle.Reader{}, bases: map[string]string{}}, nil
}

// checkExists checks that dir holds a store (its bundles directory, which
// OpenWith creates first). The error wraps fs.ErrNotExist if it does not.
func checkExists(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return noStoreError("store " + dir + " does not exist")
	}
	if err != nil {
		return fmt.Errorf("opening store %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return noStoreError("store " + dir + " is not a directory")
	}
	fi, err = os.Stat(filepath.Join(dir, "bundles"))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return noStoreError(dir + " is not a ferry store (it has no bundles directory)")
	}
	if err != nil {
		return fmt.Errorf("opening store %s: %w", dir, err)
	}
	return nil
}

// noStoreError says that a directory holds no store; it is an
// fs.ErrNotExist.
type noStoreError string

func (e noStoreError) Error() string { return string(e) }
func (e noStoreError) Unwrap() error { return fs.ErrNotExist }

// dirPerm is the mode directories of the store are created with, before
// the umask (see filePerm).
const dirPerm = 0o777

// createTemp creates a new file in dir named prefix, a random number and
// ".tmp", open for reading and writing, with mode filePerm less the umask
// (os.CreateTemp makes it 0600 whatever the umask). The kernel applies the
// umask; a file created read-only is still writable through this handle.
func createTemp(dir, prefix string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("creating a temporary file in %s: too many attempts", dir)
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close closes the bundle files the store holds open.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for d, r := range s.readers {
		errs = append(errs, r.Close())
		delete(s.readers, d)
	}
	return errors.Join(errs...)
}

func digestHex(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("invalid bundle digest %q", d)
	}
	return h, nil
}

func (s *Store) bundlePath(digest string) (string, error) {
	h, err := digestHex(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, "bundles", h+".ferry"), nil
}

// List returns the imported bundles, oldest import first.
func (s *Store) List(ctx context.Context) ([]store.BundleInfo, error) {
	return s.readIndex()
}

func (s *Store) readIndex() ([]store.BundleInfo, error) {
	p := filepath.Join(s.dir, "index.json")
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading store index: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading store index %s: %w", p, err)
	}
	if len(data) > maxIndexSize {
		return nil, fmt.Errorf("reading store index %s: larger than %d bytes", p, maxIndexSize)
	}
	var infos []store.BundleInfo
	if err := json.Unmarshal(data, &infos); err != nil {
		return nil, fmt.Errorf("reading store index %s: %w", p, err)
	}
	for _, in := range infos {
		if _, err := digestHex(in.Digest); err != nil {
			return nil, fmt.Errorf("reading store index %s: %w", p, err)
		}
	}
	return infos, nil
}

// reader returns the open reader of an imported bundle.
func (s *Store) reader(bundleDigest string) (*bundle.Reader, error) {
	p, err := s.bundlePath(bundleDigest)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	r, ok := s.readers[bundleDigest]
	s.mu.RUnlock()
	if ok {
		return r, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.readers[bundleDigest]; ok {
		return r, nil
	}
	r, err = bundle.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening stored bundle: %w", err)
	}
	if r.Digest() != bundleDigest {
		r.Close()
		return nil, fmt.Errorf("stored bundle %s has digest %s", p, r.Digest())
	}
	s.readers[bundleDigest] = r
	return r, nil
}

// Manifest returns the ferry manifest of an imported bundle.
func (s *Store) Manifest(ctx context.Context, bundleDigest string) (*bundle.Manifest, error) {
	r, err := s.reader(bundleDigest)
	if err != nil {
		return nil, err
	}
	return r.Manifest(), nil
}

// Blob opens a blob of an imported bundle. Closing it does not close the
// bundle file, which stays open for the next request.
func (s *Store) Blob(ctx context.Context, bundleDigest, digest string) (store.Blob, error) {
	r, err := s.reader(bundleDigest)
	if err != nil {
		return nil, err
	}
	sr, err := r.Open(digest)
	if errors.Is(err, fs.ErrNotExist) && r.Manifest().Base != nil {
		return s.baseBlob(ctx, r, digest)
	}
	if err != nil {
		return nil, err
	}
	_, off, _ := sr.Outer()
	return blob{sr, r.Path(), off}, nil
}

// baseBlob reads a blob that the delta r leaves to its base: from the base
// bundle while it is in the store, else from the blobs Prune kept for it.
func (s *Store) baseBlob(ctx context.Context, r *bundle.Reader, digest string) (store.Blob, error) {
	if !r.InBase(digest) {
		return nil, fmt.Errorf("%s: blob %s: %w", r.Path(), digest, fs.ErrNotExist)
	}
	md := r.Manifest().Base.ManifestDigest
	base, err := s.bundleByManifest(md)
	if err == nil {
		b, err := s.Blob(ctx, base, digest)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
		// Pruned since (perhaps by another process): Prune kept the blob.
		s.mu.Lock()
		delete(s.bases, md)
		s.mu.Unlock()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return s.looseBlob(digest)
}

// bundleByManifest returns the digest of the stored bundle whose ferry
// manifest has digest md; the error wraps fs.ErrNotExist if there is none.
// Answers are remembered (a manifest digest always names the same bundle),
// so that serving a delta's base blobs does not read index.json each time.
func (s *Store) bundleByManifest(md string) (string, error) {
	s.mu.RLock()
	d, ok := s.bases[md]
	s.mu.RUnlock()
	if ok {
		return d, nil
	}
	infos, err := s.readIndex()
	if err != nil {
		return "", err
	}
	for _, in := range infos {
		if in.ManifestDigest == md {
			s.mu.Lock()
			s.bases[md] = in.Digest
			s.mu.Unlock()
			return in.Digest, nil
		}
	}
	return "", fmt.Errorf("store %s: no bundle with manifest %s: %w", s.dir, md, fs.ErrNotExist)
}

// blob is a byte range of a stored bundle file.
type blob struct {
	*io.SectionReader
	path string
	off  int64
}

func (blob) Close() error { return nil }

// FileRange returns the bundle file that holds the blob and the blob's
// offset in it, so that a server can send it with sendfile.
func (b blob) FileRange() (path string, offset int64) { return b.path, b.off }

// Import copies the bundle file of r into the store and lists it. The bundle
// must have been verified by the caller; Import checks that the copy has the
// same identity and that every blob of the copy matches its digest. Its
// errors begin "importing PATH:".
func (s *Store) Import(ctx context.Context, r *bundle.Reader, info store.BundleInfo) error {
	return s.importBundle(ctx, r, info, false)
}

// ImportChecked is Import, and also checks the h1: hash of every encoded
// zip of r as it is decoded (store.HashChecker).
func (s *Store) ImportChecked(ctx context.Context, r *bundle.Reader, info store.BundleInfo) error {
	return s.importBundle(ctx, r, info, true)
}

func (s *Store) importBundle(ctx context.Context, r *bundle.Reader, info store.BundleInfo, checkHashes bool) error {
	dst, err := s.bundlePath(r.Digest())
	if err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	unlock, err := lockFile(ctx, filepath.Join(s.dir, "lock"), true)
	if err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	defer unlock()
	s.step(StepImportLocked)
	s.removeTemps()
	s.step(StepImportTempsRemoved)
	infos, err := s.readIndex()
	if err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	for _, in := range infos {
		if in.Digest == r.Digest() {
			// Already there, with the same manifest, checked when it
			// was imported; write the decoded files and gzips a ferry
			// that did not keep them left out.
			if err := s.decodeFiles(ctx, in.Digest, r.Manifest(), false); err != nil {
				return fmt.Errorf("importing %s: %w", r.Path(), err)
			}
			return nil
		}
	}
	if b := r.Manifest().Base; b != nil {
		found := false
		for _, in := range infos {
			found = found || in.ManifestDigest == b.ManifestDigest
		}
		if !found {
			return fmt.Errorf("importing %s: it is a delta of %s, which is not in store %s: import that bundle first", r.Path(), b, s.dir)
		}
	}
	size, err := s.copyBundle(ctx, r, dst)
	if err != nil {
		return err
	}
	if err := s.decodeFiles(ctx, r.Digest(), r.Manifest(), checkHashes); err != nil {
		// Listed nowhere, the copy would only take space.
		os.Remove(dst)
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	info = store.Describe(r, size, info)
	if err := s.writeIndex(append(infos, info), StepImportIndexWritten); err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	s.step(StepImportListed)
	return nil
}

// copyBundle copies the file of r to dst through a checked temporary file.
func (s *Store) copyBundle(ctx context.Context, r *bundle.Reader, dst string) (size int64, err error) {
	if r.Path() == "" {
		return 0, errors.New("importing bundle: the reader has no file")
	}
	var in io.Reader = r.Content() // a split bundle: across its parts
	if !r.Split() {
		f, err := os.Open(r.Path()) // a file: the kernel may copy it
		if err != nil {
			return 0, fmt.Errorf("importing bundle: %w", err)
		}
		defer f.Close()
		in = f
	}
	tmp, err := createTemp(filepath.Dir(dst), ".import-")
	if err != nil {
		return 0, fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if size, err = io.Copy(tmp, ctxio.Reader(ctx, in)); err != nil {
		return 0, fmt.Errorf("importing %s: copying to %s: %w", r.Path(), tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	s.step(StepImportCopied)
	// Check the copy: same bundle, every blob intact.
	cr, err := bundle.Open(tmp.Name())
	if err != nil {
		return 0, fmt.Errorf("importing %s: checking the copy: %w", r.Path(), err)
	}
	defer cr.Close()
	if cr.Digest() != r.Digest() || cr.ManifestDigest() != r.ManifestDigest() {
		return 0, fmt.Errorf("importing %s: the file changed after it was verified", r.Path())
	}
	for _, b := range cr.Blobs() {
		if err := cr.VerifyBlob(ctx, b.Digest); err != nil {
			return 0, fmt.Errorf("importing %s: checking the copy: %w", r.Path(), err)
		}
	}
	s.step(StepImportChecked)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	if err := durable.Dir(filepath.Dir(dst)); err != nil {
		return 0, err
	}
	s.step(StepImportRenamed)
	return size, nil
}

// writeIndex replaces index.json atomically; written is the step reported
// between writing the temporary file and renaming it.
func (s *Store) writeIndex(infos []store.BundleInfo, written string) (err error) {
	data, err := json.MarshalIndent(infos, "", "  ")
	if err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	data = append(data, '\n')
	tmp, err := createTemp(s.dir, ".index-")
	if err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing store index %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	s.step(written)
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, "index.json")); err != nil {
		return fmt.Errorf("writing store index: %w", err)
	}
	return durable.Dir(s.dir)
}
