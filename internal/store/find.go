package store

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// Info returns what st records of the bundle whose OCI manifest digest is
// bundleDigest; the error wraps fs.ErrNotExist if st does not list it.
func Info(ctx context.Context, st Store, bundleDigest string) (BundleInfo, error) {
	infos, err := st.List(ctx)
	if err != nil {
		return BundleInfo{}, err
	}
	for _, in := range infos {
		if in.Digest == bundleDigest {
			return in, nil
		}
	}
	return BundleInfo{}, fmt.Errorf("no stored bundle has digest %s: %w", bundleDigest, fs.ErrNotExist)
}

// Find finds one of infos by what a user types (bundle.MatchRef): its
// bundle or manifest digest or a prefix of either, NAME@VERSION or a name.
// It refuses an ambiguous answer.
func Find(infos []BundleInfo, q string) (BundleInfo, error) {
	var hits []BundleInfo
	for _, in := range infos {
		if bundle.MatchRef(q, in.Digest, in.ManifestDigest, in.Name, in.Version) {
			hits = append(hits, in)
		}
	}
	switch len(hits) {
	case 0:
		return BundleInfo{}, fmt.Errorf("no bundle matches %q: %s", q, bundle.RefHint(q, "NAME@VERSION, NAME"))
	case 1:
		return hits[0], nil
	}
	names := make([]string, len(hits))
	for i, in := range hits {
		names[i] = strings.TrimSpace(in.Name+" "+in.Version) + " (" + in.Digest + ")"
	}
	return BundleInfo{}, fmt.Errorf("%q matches %d bundles: %s; give more of a digest", q, len(hits), strings.Join(names, ", "))
}
