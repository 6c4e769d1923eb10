// Package verify checks a ferry bundle completely and offline.
//
// Invariants: Bundle refuses a manifest that bundle.Manifest.Check refuses
// before reading anything (Open already did; a Source that did not gets no
// further), and chooses the checks of an item by the kind its file implies
// (bundle.KindOf), so every file install or serve places as a module zip or
// go.mod is checked as one. Bundle reads every byte of every blob; it never
// stops at the first problem but reports each one it finds, one line each
// naming the file and what is wrong; it needs no network. A bundle passes
// only if every blob matches its digest and size, every zip and go.mod
// matches its h1: hash, every such hash is proved by the checksum snapshot
// (record inclusion against the stored signed tree head, checked with a
// verifier key the caller trusts), and, when keys are given, the manifest
// signature holds.
// The h1: hashes are recomputed from the zips unless a signature by a key
// the caller trusts vouches for the manifest that lists them (Deep forces
// the recomputation anyway); an encoded zip is decoded for that, and must
// decode to the size and digest its item gives (LeaveEncoded leaves encoded
// zips to a caller that decodes them anyway, such as install).
// Modules marked as outside the checksum database are accepted only when the
// caller's own GONOSUMDB/GOPRIVATE patterns cover them.
package verify

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// Options say what the caller trusts.
type Options struct {
	// Signers, when not nil, must have signed the bundle.
	Signers note.Verifiers
	// SumDBKey is the verifier key of the checksum database the caller
	// trusts. "" is an error unless TrustBundleKey.
	SumDBKey string
	// TrustBundleKey accepts the key recorded in the bundle (only sound when
	// the signature was checked).
	TrustBundleKey bool
	// NoSumDB is the caller's GONOSUMDB (or GOPRIVATE) pattern list.
	NoSumDB string
	Jobs    int
	// Deep recomputes every h1: hash even when a trusted signature
	// vouches for the manifest.
	Deep bool
	// LeaveEncoded skips the h1: hashes of encoded zips, which the caller
	// recomputes itself as it decodes them (install does, on the zips it
	// stages), so that each is decoded once. Report.Recomputed then holds
	// for the other items only.
	LeaveEncoded bool
	// TempDir is where large encoded zips are decoded to be hashed ("" for
	// the system's temporary directory).
	TempDir string
	// Bytes is told how many blob bytes were checked (progress).
	Bytes func(n int64)
}

// Problem is one thing wrong with a bundle.
type Problem struct {
	File string `json:"file,omitempty"`
	Msg  string `json:"problem"`
}

func (p Problem) String() string {
	if p.File == "" {
		return p.Msg
	}
	return p.File + ": " + p.Msg
}

// Report is the result of Bundle.
type Report struct {
	Bundle string `json:"bundle"`
	Digest string `json:"digest"`
	Signer string `json:"signer,omitempty"`
	Items  int    `json:"items"`
	Bytes  int64  `json:"bytes"`
	Proved int    `json:"proved"` // module versions proved by the checksum snapshot
	// Recomputed says whether every zip's h1: hash was recomputed (always,
	// unless a trusted signature vouches for the manifest and not Deep).
	Recomputed bool      `json:"recomputed"`
	Problems   []Problem `json:"problems,omitempty"`
}

// OK reports whether the bundle passed.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Err returns nil or one error listing every problem.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	lines := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		lines[i] = p.String()
	}
	return fmt.Errorf("%s: %d problem(s):\n  %s", r.Bundle, len(lines), strings.Join(lines, "\n  "))
}

// Bundle checks everything in r.
func Bundle(ctx context.Context, r bundle.Source, opt Options) (*Report, error) {
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.GOMAXPROCS(0)
	}
	m := r.Manifest()
	// Open checked the manifest; a Source that did not must not get further.
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%s: checking manifest: %w", r.Path(), err)
	}
	rep := &Report{Bundle: r.Path(), Digest: r.Digest(), Items: len(m.Items)}
	var mu sync.Mutex
	add := func(file, format string, args ...any) {
		mu.Lock()
		rep.Problems = append(rep.Problems, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
		mu.Unlock()
	}

	if r.NeedsBase() {
		return nil, fmt.Errorf("%s is a delta of %s: give that bundle too (--base FILE), or install into a prefix that has it", r.Path(), m.Base)
	}
	if opt.Signers != nil {
		signer, err := r.CheckSignature(opt.Signers)
		if err != nil {
			add("", "%v", err)
		}
		rep.Signer = signer
	}

	// Every blob: digest and size.
	items := map[string][]bundle.Item{}
	for _, it := range m.Items {
		items[it.Digest] = append(items[it.Digest], it)
	}
	blobs := r.Blobs()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Jobs)
	badBlob := map[string]bool{}
	for _, b := range blobs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			err := r.VerifyBlob(gctx, b.Digest)
			if opt.Bytes != nil {
				opt.Bytes(b.Size)
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				mu.Lock()
				badBlob[b.Digest] = true
				mu.Unlock()
				add(blobName(b.Digest, items), "%v", err)
			}
			return nil
		})
		rep.Bytes += b.Size
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for _, b := range blobs {
		sizes[b.Digest] = b.Size
	}
	for _, it := range m.Items {
		if s, ok := sizes[it.Digest]; !ok {
			add(it.File, "blob %s is not in the bundle", it.Digest)
		} else if s != it.Size {
			add(it.File, "size %d, manifest says %d", s, it.Size)
		}
	}

	// Every zip and go.mod against its h1: hash. A manifest signed by a key
	// the caller trusts vouches for the h1: hashes the packer computed and
	// proved against the checksum database, and the digests just checked
	// bind these bytes to that manifest; so with a good signature the
	// (costly: every zip is inflated) recomputation is skipped unless Deep.
	// The go command recomputes each zip's hash again when it extracts it.
	rep.Recomputed = opt.Signers == nil || rep.Signer == "" || opt.Deep
	if rep.Recomputed {
		if err := checkHashes(ctx, r, badBlob, opt, add); err != nil {
			return nil, err
		}
	}

	// The checksum snapshot proves every hash.
	n, problems := checkSumDB(ctx, r, opt)
	rep.Proved = n
	mu.Lock()
	rep.Problems = append(rep.Problems, problems...)
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].File < rep.Problems[j].File })
	mu.Unlock()
	return rep, nil
}

// checkHashes recomputes the h1: hash of every zip and go.mod item whose
// blob passed its digest check.
func checkHashes(ctx context.Context, r bundle.Source, badBlob map[string]bool, opt Options, add func(file, format string, args ...any)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Jobs)
	dec := &zipcodec.Checker{TempDir: opt.TempDir}
	for _, it := range r.Manifest().Items {
		if !hashed(it) || badBlob[it.Digest] || it.Encoded() && opt.LeaveEncoded {
			continue
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			h, err := itemHash(gctx, r, it, dec)
			if err != nil {
				add(it.File, "%v", err)
			} else if h != it.Hash {
				add(it.File, "content hash %s, manifest says %s", h, it.Hash)
			}
			return nil
		})
	}
	return g.Wait()
}

// fileKind is the kind of it derived from its file, whatever its Kind says
// (Manifest.Check makes them agree).
func fileKind(it bundle.Item) bundle.Kind {
	k, _ := bundle.KindOf(it.File)
	return k
}

// hashed reports whether it is a zip or a go.mod file, which have h1: hashes
// the checksum database proves.
func hashed(it bundle.Item) bool {
	k := fileKind(it)
	return k == bundle.KindZip || k == bundle.KindMod
}

func blobName(digest string, items map[string][]bundle.Item) string {
	if its := items[digest]; len(its) > 0 {
		return its[0].File
	}
	return "blob " + digest
}

// itemHash computes the h1: hash of a zip or go.mod item from the bundle;
// an encoded zip is decoded (by dec) and must have the size and digest the
// manifest gives its file.
func itemHash(ctx context.Context, r bundle.Source, it bundle.Item, dec *zipcodec.Checker) (string, error) {
	sr, err := r.Open(it.Digest)
	if err != nil {
		return "", err
	}
	if it.Encoded() {
		return dec.Check(ctx, sr, it.FileSize, it.FileDigest)
	}
	if fileKind(it) == bundle.KindMod {
		data, err := io.ReadAll(sr)
		if err != nil {
			return "", err
		}
		return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(string(data))), nil
		})
	}
	z, err := zip.NewReader(sr, sr.Size())
	if err != nil {
		return "", fmt.Errorf("not a valid zip: %w", err)
	}
	return zipcodec.HashZip(z)
}

// checkSumDB proves every module's hashes with the bundle's checksum snapshot.
func checkSumDB(ctx context.Context, r bundle.Source, opt Options) (int, []Problem) {
	m := r.Manifest()
	var problems []Problem
	var wants []sumdbsnap.Want
	byMod := map[module.Version]int{}
	for _, it := range m.Items {
		if !hashed(it) {
			continue
		}
		if it.NoSumDB {
			if !module.MatchPrefixPatterns(opt.NoSumDB, it.Module) {
				problems = append(problems, Problem{File: it.File, Msg: fmt.Sprintf("marked as outside the checksum database, but GONOSUMDB/GOPRIVATE here (%q) does not cover %s", opt.NoSumDB, it.Module)})
			}
			continue
		}
		mv := module.Version{Path: it.Module, Version: it.Version}
		i, ok := byMod[mv]
		if !ok {
			i = len(wants)
			byMod[mv] = i
			wants = append(wants, sumdbsnap.Want{Path: it.Module, Version: it.Version})
		}
		if fileKind(it) == bundle.KindZip {
			wants[i].ZipHash = it.Hash
		} else {
			wants[i].ModHash = it.Hash
		}
	}
	if len(wants) == 0 {
		return 0, problems
	}
	if m.SumDB == nil {
		return 0, append(problems, Problem{Msg: "bundle has no checksum database snapshot"})
	}
	key := opt.SumDBKey
	if key == "" {
		if !opt.TrustBundleKey {
			return 0, append(problems, Problem{Msg: fmt.Sprintf("no trusted verifier key for checksum database %s (set GOSUMDB with its key, pass --sumdb-key, or sign the bundle and pass --key)", m.SumDB.Name)})
		}
		key = m.SumDB.Key
	}
	snap := &sumdbsnap.Snapshot{Name: m.SumDB.Name, Key: key, Head: []byte(m.SumDB.Head), Files: map[string][]byte{}}
	prefix := "sumdb/" + m.SumDB.Name + "/"
	for _, it := range m.Items {
		if fileKind(it) != bundle.KindSumDB {
			continue
		}
		rel, ok := strings.CutPrefix(it.File, prefix)
		if !ok {
			problems = append(problems, Problem{File: it.File, Msg: "checksum file outside " + prefix})
			continue
		}
		sr, err := r.Open(it.Digest)
		if err != nil {
			problems = append(problems, Problem{File: it.File, Msg: err.Error()})
			continue
		}
		data, err := io.ReadAll(sr)
		if err != nil {
			problems = append(problems, Problem{File: it.File, Msg: err.Error()})
			continue
		}
		snap.Files[rel] = data
	}
	for _, err := range sumdbsnap.Verify(ctx, key, snap, wants) {
		problems = append(problems, Problem{File: prefix, Msg: err.Error()})
	}
	// Earlier heads the bundle claims to extend: a go command that holds one
	// of them must accept the new head from the bundle's tiles alone.
	if len(m.SumDB.Heads) > 0 {
		heads := make([][]byte, len(m.SumDB.Heads))
		for i, h := range m.SumDB.Heads {
			heads[i] = []byte(h)
		}
		if err := snap.CheckConsistency(heads); err != nil {
			problems = append(problems, Problem{File: prefix, Msg: "earlier tree heads: " + err.Error()})
		}
	}
	return len(wants), problems
}
