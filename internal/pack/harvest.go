package pack

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
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// file is an item of the bundle-to-be with the place its bytes are.
type file struct {
	bundle.Item
	src  string // path on disk
	data []byte // or the bytes themselves
	want int64  // image blobs: the size their descriptor gives
}

// harvest collects the .info, .mod and .zip files the go command fetched into
// its download cache (which has exactly the GOPROXY layout).
func harvest(cacheDownload string, out map[string]*file) error {
	return filepath.WalkDir(cacheDownload, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == cacheDownload {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(cacheDownload, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "sumdb" {
				return filepath.SkipDir
			}
			return nil
		}
		it, ok := parseProxyFile(rel)
		if !ok {
			return nil
		}
		if _, dup := out[rel]; !dup {
			out[rel] = &file{Item: it, src: path}
		}
		return nil
	})
}

// parseProxyFile recognises "<escaped module>/@v/<escaped version>.{info,mod,zip}".
func parseProxyFile(rel string) (bundle.Item, bool) {
	emod, name, ok := strings.Cut(rel, "/@v/")
	if !ok || strings.Contains(name, "/") {
		return bundle.Item{}, false
	}
	ext := filepath.Ext(name)
	var kind bundle.Kind
	switch ext {
	case ".info":
		kind = bundle.KindInfo
	case ".mod":
		kind = bundle.KindMod
	case ".zip":
		kind = bundle.KindZip
	default:
		return bundle.Item{}, false
	}
	mod, err := module.UnescapePath(emod)
	if err != nil {
		return bundle.Item{}, false
	}
	ver, err := module.UnescapeVersion(strings.TrimSuffix(name, ext))
	if err != nil {
		return bundle.Item{}, false
	}
	it := bundle.Item{File: rel, Kind: kind, Module: mod, Version: ver}
	if mod == toolchainModule && kind == bundle.KindZip {
		it.Platform = toolchainPlatform(ver)
	}
	return it, true
}

// hashFiles fills Size, Digest and (for zips and go.mod files) the h1: hash
// of every file, jobs at a time.
func hashFiles(ctx context.Context, files []*file, jobs int, done func(n int64)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, f := range files {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := f.hash(); err != nil {
				return fmt.Errorf("hashing %s: %w", f.File, err)
			}
			if done != nil {
				done(f.Size)
			}
			return nil
		})
	}
	return g.Wait()
}

func (f *file) hash() error {
	h := sha256.New()
	var data []byte
	if f.data != nil {
		data = f.data
		h.Write(data)
		f.Size = int64(len(data))
	} else {
		r, err := os.Open(f.src)
		if err != nil {
			return err
		}
		defer r.Close()
		if f.Kind == bundle.KindMod {
			data, err = io.ReadAll(io.TeeReader(r, h))
			f.Size = int64(len(data))
		} else {
			f.Size, err = io.Copy(h, r)
		}
		if err != nil {
			return err
		}
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if (f.Kind == bundle.KindOCI || f.Kind == bundle.KindImage) && (got != f.Digest || f.Size != f.want) {
		// Image blobs are named by their digest: the bytes must match it.
		return fmt.Errorf("image blob %s: %d bytes hashing to %s, want %d bytes", f.Digest, f.Size, got, f.want)
	}
	f.Digest = got
	switch f.Kind {
	case bundle.KindMod:
		h1, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(string(data))), nil
		})
		if err != nil {
			return err
		}
		f.Hash = h1
	case bundle.KindZip:
		h1, err := dirhash.HashZip(f.src, dirhash.Hash1)
		if err != nil {
			return fmt.Errorf("not a valid module zip: %w", err)
		}
		f.Hash = h1
	}
	return nil
}

// fetchInfos adds the .info file of every version that has a .mod file but
// no .info. A proxy that does not have it (404/410) is not an error: the
// version is then only usable as a go.mod, as upstream.
func fetchInfos(ctx context.Context, f fetcher, files map[string]*file, noProxy string, jobs int) error {
	var need []string
	for rel, fl := range files {
		if fl.Kind != bundle.KindMod || fl.Module == toolchainModule || module.MatchPrefixPatterns(noProxy, fl.Module) {
			continue
		}
		info := strings.TrimSuffix(rel, ".mod") + ".info"
		if _, ok := files[info]; !ok {
			need = append(need, info)
		}
	}
	sort.Strings(need)
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, rel := range need {
		g.Go(func() error {
			data, err := f.Get(ctx, rel)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("fetching %s: %w", rel, err)
			}
			it, _ := parseProxyFile(rel)
			mu.Lock()
			files[rel] = &file{Item: it, data: data}
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}
