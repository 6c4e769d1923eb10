package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// filesDir holds the decoded files of encoded items: DIR/files/sha256/<hex
// of Item.FileDigest>.
const filesDir = "files/sha256"

var (
	_ store.FileStore   = (*Store)(nil)
	_ store.HashChecker = (*Store)(nil)
)

// File opens the decoded file of an encoded item, which Import wrote. The
// error wraps fs.ErrNotExist if the store has none (a bundle imported by a
// ferry that did not write them, or a file no stored bundle needs).
func (s *Store) File(ctx context.Context, digest string) (store.Blob, error) {
	h, err := digestHex(digest)
	if err != nil {
		return nil, err
	}
	return openFile(filepath.Join(s.dir, filepath.FromSlash(filesDir), h), "file "+digest)
}

// openFile opens the file at p as a store.Blob that a server can send with
// sendfile; what names it in errors.
func openFile(p, what string) (store.Blob, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return fileBlob{io.NewSectionReader(f, 0, fi.Size()), f, p}, nil
}

// fileBlob is a blob that is a whole file of the store.
type fileBlob struct {
	*io.SectionReader
	f    *os.File
	path string
}

func (b fileBlob) Close() error { return b.f.Close() }

// FileRange lets a server send the blob with sendfile.
func (b fileBlob) FileRange() (string, int64) { return b.path, 0 }

// decodeFiles writes the decoded file of every encoded item of the stored
// bundle bd, and its gzip, that the store does not have yet. Blobs are read
// through Blob, so a delta's come from its base. Each file is decoded into
// a temporary file of filesDir (checked against its size and digest) and
// compressed from there into a temporary file of gzDir (the bytes it reads
// checked again); all are made durable, then renamed into place (decoded
// files first, then gzips), then the directories are synced: a file is in
// place only whole and checked. With checkHashes every encoded item's h1:
// hash is recomputed too: from memory as its zip is decoded, or from the
// file the store already has. The caller holds the lock.
func (s *Store) decodeFiles(ctx context.Context, bd string, m *bundle.Manifest, checkHashes bool) (err error) {
	dir := filepath.Join(s.dir, filepath.FromSlash(filesDir))
	gdir := filepath.Join(s.dir, filepath.FromSlash(gzDir))
	type job struct {
		it             bundle.Item
		items          []bundle.Item // every encoded item with it.FileDigest
		dst, tmp       string
		gzDst, gzTmp   string
		have, haveGzip bool // dst, gzDst are there already
	}
	var jobs []*job
	byFile := map[string]*job{}
	for _, it := range m.Items {
		if !it.Encoded() {
			continue
		}
		if j := byFile[it.FileDigest]; j != nil {
			j.items = append(j.items, it)
			continue
		}
		h, err := digestHex(it.FileDigest)
		if err != nil {
			return fmt.Errorf("item %s: %w", it.File, err)
		}
		j := &job{it: it, items: []bundle.Item{it}, dst: filepath.Join(dir, h), gzDst: filepath.Join(gdir, h)}
		if fi, err := os.Stat(j.dst); err == nil && fi.Mode().IsRegular() && fi.Size() == it.FileSize {
			j.have = true
		}
		if fi, err := os.Stat(j.gzDst); err == nil && fi.Mode().IsRegular() {
			j.haveGzip = true
		}
		byFile[it.FileDigest] = j
		jobs = append(jobs, j)
	}
	// checked compares the h1: hash of a decoded zip with each item's.
	checked := func(j *job, h1 string) error {
		for _, it := range j.items {
			if it.Hash != h1 {
				return fmt.Errorf("%s: content hash %s, manifest says %s", it.File, h1, it.Hash)
			}
		}
		return nil
	}
	todo := 0
	for _, j := range jobs {
		if !j.have || !j.haveGzip {
			todo++
		}
	}
	if todo == 0 && !checkHashes {
		return nil
	}
	for _, d := range []string{dir, gdir} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return fmt.Errorf("decoded files: %w", err)
		}
	}
	defer func() {
		if err != nil {
			for _, j := range jobs {
				if j.tmp != "" {
					os.Remove(j.tmp)
				}
				if j.gzTmp != "" {
					os.Remove(j.gzTmp)
				}
			}
		}
	}()
	dec := &zipcodec.Checker{TempDir: dir}
	zw := &gzipWriters{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		if j.have && j.haveGzip {
			if checkHashes {
				g.Go(func() error {
					h1, err := zipcodec.HashZipFile(j.dst)
					if err != nil {
						return fmt.Errorf("%s: %w", j.it.File, err)
					}
					return checked(j, h1)
				})
			}
			continue
		}
		var tmp, gzTmp *os.File
		if !j.have {
			if tmp, err = createTemp(dir, ".decode-"); err != nil {
				g.Wait()
				return fmt.Errorf("decoding %s: %w", j.it.File, err)
			}
			j.tmp = tmp.Name()
		}
		if !j.haveGzip {
			if gzTmp, err = createTemp(gdir, ".gzip-"); err != nil {
				if tmp != nil {
					tmp.Close()
				}
				g.Wait()
				return fmt.Errorf("compressing %s: %w", j.it.File, err)
			}
			j.gzTmp = gzTmp.Name()
		}
		g.Go(func() (err error) {
			if tmp != nil {
				defer func() {
					if cerr := tmp.Close(); err == nil && cerr != nil {
						err = fmt.Errorf("decoding %s: %w", j.it.File, cerr)
					}
				}()
			}
			if gzTmp != nil {
				defer func() {
					if cerr := gzTmp.Close(); err == nil && cerr != nil {
						err = fmt.Errorf("compressing %s: %w", j.it.File, cerr)
					}
				}()
			}
			var src io.ReaderAt = tmp
			if j.have {
				f, err := os.Open(j.dst)
				if err != nil {
					return fmt.Errorf("compressing %s: %w", j.it.File, err)
				}
				defer f.Close()
				src = f
				if checkHashes {
					h1, err := zipcodec.HashZipFile(j.dst)
					if err != nil {
						return fmt.Errorf("%s: %w", j.it.File, err)
					}
					if err := checked(j, h1); err != nil {
						return err
					}
				}
			} else {
				h1, err := s.decodeTo(gctx, dec, bd, j.it, tmp, checkHashes)
				if err != nil {
					return err
				}
				if checkHashes {
					if err := checked(j, h1); err != nil {
						return err
					}
				}
			}
			if gzTmp != nil {
				if err := gzipTo(gctx, zw, gzTmp, src, j.it.FileSize, j.it.FileDigest); err != nil {
					return fmt.Errorf("%s: %w", j.it.File, err)
				}
			}
			return nil
		})
		if gctx.Err() != nil {
			break
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if todo == 0 {
		return nil
	}
	if !durable.PerFile { // else each file was synced as it was written
		if err := durable.Tree(dir); err != nil { // dir and gdir: one file system
			return fmt.Errorf("decoded files: %w", err)
		}
	}
	s.step(StepImportDecoded)
	for _, j := range jobs {
		if j.have {
			continue
		}
		if err := os.Rename(j.tmp, j.dst); err != nil {
			return fmt.Errorf("decoded files: %w", err)
		}
		j.tmp = ""
		s.step(StepImportFileRenamed)
	}
	for _, j := range jobs {
		if j.haveGzip {
			continue
		}
		if err := os.Rename(j.gzTmp, j.gzDst); err != nil {
			return fmt.Errorf("decoded files: %w", err)
		}
		j.gzTmp = ""
		s.step(StepImportGzipRenamed)
	}
	for _, d := range []string{dir, gdir} {
		if err := durable.Dir(d); err != nil {
			return err
		}
	}
	s.step(StepImportFilesSynced)
	return nil
}

// decodeTo decodes the blob of encoded item it of bundle bd into f, checking
// the decoded size and digest, and syncs f where durable.PerFile says so. With
// hash it returns the decoded zip's h1: hash.
func (s *Store) decodeTo(ctx context.Context, dec *zipcodec.Checker, bd string, it bundle.Item, f *os.File, hash bool) (string, error) {
	b, err := s.Blob(ctx, bd, it.Digest)
	if err != nil {
		return "", fmt.Errorf("decoding %s: %w", it.File, err)
	}
	defer b.Close()
	h1, err := dec.DecodeTo(ctx, f, io.NewSectionReader(b, 0, b.Size()), it.FileSize, it.FileDigest, hash)
	if err != nil {
		return "", fmt.Errorf("decoding %s: %w", it.File, err)
	}
	if durable.PerFile {
		if err := f.Sync(); err != nil {
			return "", fmt.Errorf("decoding %s: %w", it.File, err)
		}
	}
	return h1, nil
}

// sweep removes what no bundle of infos needs and returns the bytes
// freed: bundle files infos does not list (left by a Prune killed after it
// unlisted the bundle, or an Import killed before it listed it), decoded
// files and their gzips that no encoded item names (its FileDigest), and
// blobs Prune kept aside that no delta leaves to its base any more. The
// caller holds the lock (so no Import is between renaming a bundle file
// into place and listing it) and has already written infos as the index.
func (s *Store) sweep(infos []store.BundleInfo) (int64, error) {
	bundles, files, loose := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, in := range infos {
		bundles[strings.TrimPrefix(in.Digest, "sha256:")+".ferry"] = true
		r, err := s.reader(in.Digest)
		if err != nil {
			return 0, err
		}
		for _, it := range r.Manifest().Items {
			if it.Encoded() {
				files[strings.TrimPrefix(it.FileDigest, "sha256:")] = true
			}
		}
		for _, b := range r.BaseBlobs() {
			loose[strings.TrimPrefix(b.Digest, "sha256:")] = true
		}
	}
	freed, err := sweepDir(filepath.Join(s.dir, "bundles"), ".ferry", bundles, "pruning unlisted bundle files")
	if err != nil {
		return freed, err
	}
	n, err := sweepDir(filepath.Join(s.dir, filepath.FromSlash(filesDir)), "", files, "pruning decoded files")
	freed += n
	if err != nil {
		return freed, err
	}
	n, err = sweepDir(filepath.Join(s.dir, filepath.FromSlash(gzDir)), "", files, "pruning gzips of decoded files")
	freed += n
	if err != nil {
		return freed, err
	}
	n, err = sweepDir(filepath.Join(s.dir, filepath.FromSlash(looseDir)), "", loose, "pruning kept blobs")
	return freed + n, err
}

// sweepDir removes the files of dir named by a digest's hex and suffix
// that needed does not hold, and returns the bytes freed.
func sweepDir(dir, suffix string, needed map[string]bool, what string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	var freed int64
	removed := false
	for _, e := range ents {
		name := e.Name()
		if needed[name] || !e.Type().IsRegular() {
			continue
		}
		h, ok := strings.CutSuffix(name, suffix)
		if _, err := digestHex("sha256:" + h); !ok || err != nil {
			continue // not ours (leftover temporaries go in removeTemps)
		}
		fi, err := e.Info()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, fmt.Errorf("%s: %w", what, err)
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, fmt.Errorf("%s: %w", what, err)
		}
		if fi != nil {
			freed += fi.Size()
		}
		removed = true
	}
	if removed {
		return freed, durable.Dir(dir)
	}
	return freed, nil
}

// removeTemps removes the temporary files that an Import or Prune killed
// midway left in the store. Only Import and Prune write temporary files,
// under the exclusive lock, which the caller holds.
func (s *Store) removeTemps() {
	for _, pat := range []string{".index-*.tmp", "bundles/.import-*.tmp", looseDir + "/.keep-*.tmp", filesDir + "/.decode-*.tmp", gzDir + "/.gzip-*.tmp"} {
		ms, _ := filepath.Glob(filepath.Join(s.dir, filepath.FromSlash(pat)))
		for _, m := range ms {
			os.Remove(m)
		}
	}
}
