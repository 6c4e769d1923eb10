package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/install"
	"github.com/ferry-dev/ferry/internal/store"
)

// baseFinder looks up the base of a delta where the command keeps bundles
// (an install prefix, a store). It returns a nil BlobStore when the base is
// not there, and where names that place in messages.
type baseFinder struct {
	where string
	find  func(ctx context.Context, b *bundle.Base) (bundle.BlobStore, func(), error)
}

// installedBase finds a delta's base among the bundles installed in prefix.
func installedBase(prefix string) *baseFinder {
	return &baseFinder{
		where: "installed in " + prefix,
		find: func(ctx context.Context, b *bundle.Base) (bundle.BlobStore, func(), error) {
			in, err := install.OpenInstalled(prefix, b.ManifestDigest)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, nil
			}
			if err != nil {
				return nil, nil, err
			}
			return in, func() { in.Close() }, nil
		},
	}
}

// storedBase finds a delta's base among the bundles of a store.
func storedBase(st store.Store, where string) *baseFinder {
	return &baseFinder{
		where: "in store " + where,
		find: func(ctx context.Context, b *bundle.Base) (bundle.BlobStore, func(), error) {
			s, err := store.FindByManifest(ctx, st, b.ManifestDigest)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, nil
			}
			if err != nil {
				return nil, nil, err
			}
			return s, func() { s.Close() }, nil
		},
	}
}

// fileOf returns the bundle file of a Source.
func fileOf(src bundle.Source) *bundle.Reader {
	if l, ok := src.(*bundle.Layered); ok {
		return l.Reader
	}
	return src.(*bundle.Reader)
}

// withBase reads the delta r through its base: one of the bundle files
// given with --base (itself perhaps a delta of another), else what finder
// holds. It fails, naming the base, when the base is in neither.
func withBase(ctx context.Context, r *bundle.Reader, files []string, finder *baseFinder) (bundle.Source, func(), error) {
	want := r.Manifest().Base
	for _, f := range files {
		b, err := bundle.Open(f)
		if err != nil {
			return nil, nil, err
		}
		if b.ManifestDigest() != want.ManifestDigest {
			b.Close()
			continue
		}
		var bs bundle.BlobStore = b
		closeAll := func() { b.Close() }
		if b.NeedsBase() {
			bsrc, closeBase, err := withBase(ctx, b, files, finder)
			if err != nil {
				b.Close()
				return nil, nil, err
			}
			bs = bsrc
			closeAll = func() { closeBase(); b.Close() }
		}
		l, err := bundle.WithBase(r, bs, want.ManifestDigest, f)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		return l, closeAll, nil
	}
	where := "among the --base files"
	if finder != nil {
		bs, closeBase, err := finder.find(ctx, want)
		if err != nil {
			return nil, nil, fmt.Errorf("%s is a delta of %s: %w", r.Path(), want, err)
		}
		if bs != nil {
			l, err := bundle.WithBase(r, bs, want.ManifestDigest, finder.where)
			if err != nil {
				closeBase()
				return nil, nil, err
			}
			return l, closeBase, nil
		}
		where = finder.where
		if len(files) > 0 {
			where += " nor among the --base files"
		}
	}
	return nil, nil, fmt.Errorf("%s is a delta of %s, which is not %s: install or import that bundle first, or give it with --base FILE", r.Path(), want, where)
}
