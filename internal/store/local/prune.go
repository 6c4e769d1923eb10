package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/ctxio"
	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/store"
)

// looseDir holds blobs that deltas still read after Prune dropped the
// bundle file that held them: DIR/blobs/sha256/<hex>.
const looseDir = "blobs/sha256"

// looseBlob opens a blob Prune kept.
func (s *Store) looseBlob(digest string) (store.Blob, error) {
	h, err := digestHex(digest)
	if err != nil {
		return nil, err
	}
	return openFile(filepath.Join(s.dir, filepath.FromSlash(looseDir), h), "blob "+digest)
}

// Prune drops a bundle from the store. Blobs of its file that another
// stored delta still reads through it (reference counting by blob) are
// first copied, checked, to DIR/blobs; then the bundle leaves index.json;
// then its file is removed; then the files no listed bundle needs are
// removed (sweep: bundle files not listed, decoded files no remaining
// encoded item names, kept blobs no delta reads). A kill at any point
// leaves every listed bundle readable, and a rerun (or the next Prune)
// finishes: a Prune of a bundle that is not listed sweeps too, then
// returns an error that wraps fs.ErrNotExist.
func (s *Store) Prune(ctx context.Context, bundleDigest string) (store.PruneReport, error) {
	var rep store.PruneReport
	unlock, err := lockFile(ctx, filepath.Join(s.dir, "lock"), true)
	if err != nil {
		return rep, err
	}
	defer unlock()
	s.step(StepPruneLocked)
	s.removeTemps()
	s.step(StepPruneTempsRemoved)
	infos, err := s.readIndex()
	if err != nil {
		return rep, err
	}
	idx := -1
	for i, in := range infos {
		if in.Digest == bundleDigest {
			idx = i
		}
	}
	if idx < 0 {
		// Perhaps a rerun of a Prune killed after it unlisted the bundle:
		// finish its work (remove the files nothing listed needs).
		if _, err := s.sweep(infos); err != nil {
			return rep, err
		}
		return rep, fmt.Errorf("pruning: bundle %s is not in store %s: %w", bundleDigest, s.dir, fs.ErrNotExist)
	}
	rep.Bundle = infos[idx]
	target, err := s.reader(bundleDigest)
	if err != nil {
		return rep, err
	}
	rest := append(append([]store.BundleInfo(nil), infos[:idx]...), infos[idx+1:]...)
	needed := map[string]bool{}
	for _, in := range rest {
		r, err := s.reader(in.Digest)
		if err != nil {
			return rep, err
		}
		for _, b := range r.BaseBlobs() {
			if _, ok := target.Stat(b.Digest); ok {
				needed[b.Digest] = true
			}
		}
	}
	for d := range needed {
		n, err := s.keepBlob(ctx, target, d)
		if err != nil {
			return rep, err
		}
		rep.KeptBlobs++
		rep.KeptBytes += n
		s.step(StepPruneBlobKept)
	}
	if err := s.writeIndex(rest, StepPruneIndexWritten); err != nil {
		return rep, err
	}
	s.step(StepPruneUnlisted)
	p, _ := s.bundlePath(bundleDigest)
	s.mu.Lock()
	if r, ok := s.readers[bundleDigest]; ok {
		r.Close()
		delete(s.readers, bundleDigest)
	}
	delete(s.bases, rep.Bundle.ManifestDigest)
	s.mu.Unlock()
	if fi, err := os.Stat(p); err == nil {
		rep.FreedBytes = fi.Size() - rep.KeptBytes
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("pruning %s: %w", bundleDigest, err)
	}
	if err := durable.Dir(filepath.Dir(p)); err != nil {
		return rep, err
	}
	s.step(StepPruneBundleRemoved)
	freed, err := s.sweep(rest)
	rep.FreedBytes += freed
	if err == nil {
		s.step(StepPruneSwept)
	}
	return rep, err
}

// keepBlob copies a blob of r to DIR/blobs through a checked temporary file.
func (s *Store) keepBlob(ctx context.Context, r *bundle.Reader, digest string) (int64, error) {
	h, err := digestHex(digest)
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(s.dir, filepath.FromSlash(looseDir))
	dst := filepath.Join(dir, h)
	if fi, err := os.Stat(dst); err == nil {
		return fi.Size(), nil
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return 0, fmt.Errorf("keeping blob %s: %w", digest, err)
	}
	sr, err := r.Open(digest)
	if err != nil {
		return 0, err
	}
	tmp, err := createTemp(dir, ".keep-")
	if err != nil {
		return 0, fmt.Errorf("keeping blob %s: %w", digest, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, hash), ctxio.Reader(ctx, sr))
	if err != nil {
		return 0, fmt.Errorf("keeping blob %s: %w", digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(hash.Sum(nil)); got != digest {
		return 0, fmt.Errorf("keeping blob %s: %s holds other bytes (%s)", digest, r.Path(), got)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("keeping blob %s: %w", digest, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("keeping blob %s: %w", digest, err)
	}
	return n, durable.Dir(dir)
}
