package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// blob is one content-addressed blob of the output.
type blob struct {
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
}

func bytesBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		size:   int64(len(data)),
		open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// blobs lists every blob of b once, sorted by digest.
func (b *built) blobs() ([]blob, error) {
	seen := map[v1.Hash]bool{}
	var out []blob
	add := func(x blob) {
		if !seen[x.digest] {
			seen[x.digest] = true
			out = append(out, x)
		}
	}
	raw, err := b.index.RawManifest()
	if err != nil {
		return nil, err
	}
	add(bytesBlob(raw))
	for _, img := range append(append([]v1.Image(nil), b.images...), b.referrers...) {
		raw, err := img.RawManifest()
		if err != nil {
			return nil, err
		}
		add(bytesBlob(raw))
		cfg, err := img.RawConfigFile()
		if err != nil {
			return nil, err
		}
		add(bytesBlob(cfg))
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, err
			}
			size, err := l.Size()
			if err != nil {
				return nil, err
			}
			add(blob{digest: d, size: size, open: l.Compressed})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].digest.String() < out[j].digest.String() })
	return out, nil
}

// rootIndex returns index.json's descriptors: the image index (with its
// ref.name) and the SBOM referrers.
func (b *built) rootDescriptors() ([]v1.Descriptor, error) {
	out := []v1.Descriptor{b.indexDesc}
	for _, r := range b.referrers {
		d, err := partial.Descriptor(r)
		if err != nil {
			return nil, err
		}
		d.ArtifactType = SBOMMediaType
		out = append(out, *d)
	}
	return out, nil
}

func marshalIndex(descs []v1.Descriptor) ([]byte, error) {
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs}
	out, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// dockerManifest is docker-save's manifest.json for img, tagged tag.
func dockerManifest(img v1.Image, tag string) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	e := entry{Config: blobPath(m.Config.Digest), RepoTags: []string{tag}}
	for _, l := range m.Layers {
		e.Layers = append(e.Layers, blobPath(l.Digest))
	}
	return json.Marshal([]entry{e})
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// writeOutput writes b to one output.
func writeOutput(ctx context.Context, o Output, b *built, docker Platform, opt Options) (*OutputResult, error) {
	blobs, err := b.blobs()
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", o, err)
	}
	descs, err := b.rootDescriptors()
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", o, err)
	}
	var total int64
	for _, x := range blobs {
		total += x.size
	}
	opt.Phase("write "+o.String(), total)
	res := &OutputResult{Output: o}
	switch o.Kind {
	case OutputTar:
		dm, err := dockerManifest(b.docker, b.tag.String())
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", o, err)
		}
		idx, err := marshalIndex(descs)
		if err != nil {
			return nil, err
		}
		res.Size, err = writeTar(ctx, o.Path, blobs, idx, dm, opt)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", o, err)
		}
		res.DockerPlatform = docker.String()
	case OutputLayout:
		res.Size, err = writeLayout(ctx, o.Path, blobs, descs, b.tag.String(), opt)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", o, err)
		}
	}
	return res, nil
}

// copyBlob copies x to w, checking its size and digest.
func copyBlob(ctx context.Context, w io.Writer, x blob, progress func(int64)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := x.open()
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", x.digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h, progressWriter(progress)), io.LimitReader(rc, x.size+1))
	if err != nil {
		return fmt.Errorf("copying blob %s: %w", x.digest, err)
	}
	if n != x.size || !sameHash(h, x.digest) {
		return fmt.Errorf("blob %s: content does not match its digest and size %d (read %d bytes)", x.digest, x.size, n)
	}
	return nil
}

func sameHash(h hash.Hash, d v1.Hash) bool {
	return d.Algorithm == "sha256" && hex.EncodeToString(h.Sum(nil)) == d.Hex
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	p(int64(len(b)))
	return len(b), nil
}

// writeTar writes a deterministic tar: an OCI layout plus docker-save's
// manifest.json, to a temporary file that is synced and renamed to dst.
func writeTar(ctx context.Context, dst string, blobs []blob, index, dockerManifest []byte, opt Options) (size int64, err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	hdr := func(name string, typ byte, size int64) *tar.Header {
		mode := int64(0o644)
		if typ == tar.TypeDir {
			mode = 0o755
		}
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: opt.Created, Format: tar.FormatPAX}
	}
	small := func(name string, data []byte) error {
		if err := tw.WriteHeader(hdr(name, tar.TypeReg, int64(len(data)))); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(hdr("blobs/", tar.TypeDir, 0)); err != nil {
		return 0, err
	}
	if err := tw.WriteHeader(hdr("blobs/sha256/", tar.TypeDir, 0)); err != nil {
		return 0, err
	}
	for _, x := range blobs {
		if err := tw.WriteHeader(hdr(blobPath(x.digest), tar.TypeReg, x.size)); err != nil {
			return 0, err
		}
		if err := copyBlob(ctx, tw, x, opt.Bytes); err != nil {
			return 0, err
		}
	}
	if err := small("index.json", index); err != nil {
		return 0, err
	}
	if err := small("manifest.json", dockerManifest); err != nil {
		return 0, err
	}
	if err := small("oci-layout", []byte(ociLayoutFile)); err != nil {
		return 0, err
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if size, err = f.Seek(0, io.SeekCurrent); err != nil {
		return 0, err
	}
	if err := f.Chmod(0o644); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return 0, err
	}
	return size, nil
}

// writeLayout writes an OCI layout at dir. A missing or empty dir is staged
// beside it and renamed into place; an existing layout gets the new blobs
// (each by temporary file and rename) and then a new index.json (by rename)
// in which ref.name tag now names the new index. It returns the bytes of
// blobs written.
func writeLayout(ctx context.Context, dir string, blobs []blob, descs []v1.Descriptor, tag string, opt Options) (int64, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0):
		return stageLayout(ctx, dir, blobs, descs, opt)
	case err != nil:
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return 0, fmt.Errorf("%s exists and is not an OCI image layout (no oci-layout file); not writing into it", dir)
	}
	old, err := readRootIndex(dir)
	if err != nil {
		return 0, err
	}
	n, err := writeBlobs(ctx, dir, blobs, opt)
	if err != nil {
		return n, err
	}
	merged, err := mergeIndex(dir, old, descs, tag)
	if err != nil {
		return n, err
	}
	data, err := marshalIndex(merged)
	if err != nil {
		return n, err
	}
	return n, writeFileAtomic(filepath.Join(dir, "index.json"), data)
}

func stageLayout(ctx context.Context, dir string, blobs []blob, descs []v1.Descriptor, opt Options) (n int64, err error) {
	stage, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o755); err != nil {
		return 0, err
	}
	if n, err = writeBlobs(ctx, stage, blobs, opt); err != nil {
		return n, err
	}
	data, err := marshalIndex(descs)
	if err != nil {
		return n, err
	}
	if err := writeFileAtomic(filepath.Join(stage, "index.json"), data); err != nil {
		return n, err
	}
	if err := writeFileAtomic(filepath.Join(stage, "oci-layout"), []byte(ociLayoutFile)); err != nil {
		return n, err
	}
	// rename(2) replaces an empty directory, and fails on a non-empty one
	// that appeared meanwhile.
	if err := os.Rename(stage, dir); err != nil {
		return n, err
	}
	return n, nil
}

// writeBlobs adds the blobs missing from dir/blobs and returns the bytes written.
func writeBlobs(ctx context.Context, dir string, blobs []blob, opt Options) (int64, error) {
	var n int64
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return 0, err
	}
	for _, x := range blobs {
		p := filepath.Join(dir, filepath.FromSlash(blobPath(x.digest)))
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == x.size {
			opt.Bytes(x.size)
			continue
		}
		if err := writeAtomic(p, func(f *os.File) error { return copyBlob(ctx, f, x, opt.Bytes) }); err != nil {
			return n, err
		}
		n += x.size
	}
	return n, nil
}

func writeFileAtomic(p string, data []byte) error {
	return writeAtomic(p, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomic writes p through a temporary file beside it: fill writes the
// content, which is synced and renamed into place; on any error the
// temporary file is removed and p is untouched.
func writeAtomic(p string, fill func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func readRootIndex(dir string) ([]v1.Descriptor, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the layout's index: %w", err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "index.json"), err)
	}
	return im.Manifests, nil
}

// mergeIndex returns the existing descriptors of a layout's index.json
// without the ones the new build replaces (the same ref.name, the same
// digest, and referrers whose subject no remaining image has), followed by
// the new ones.
func mergeIndex(dir string, old, add []v1.Descriptor, tag string) ([]v1.Descriptor, error) {
	adding := map[v1.Hash]bool{}
	for _, d := range add {
		adding[d.Digest] = true
	}
	var kept []v1.Descriptor
	for _, d := range old {
		if d.Annotations[AnnRefName] == tag || adding[d.Digest] {
			continue
		}
		kept = append(kept, d)
	}
	// The images still named, to keep only referrers of those.
	live := map[v1.Hash]bool{}
	subjects := map[v1.Hash]v1.Hash{}
	for _, d := range append(append([]v1.Descriptor(nil), kept...), add...) {
		live[d.Digest] = true
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(blobPath(d.Digest))))
		if err != nil {
			continue // added in this build or not ours to judge
		}
		var m struct {
			Manifests []v1.Descriptor `json:"manifests"`
			Subject   *v1.Descriptor  `json:"subject"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		for _, c := range m.Manifests {
			live[c.Digest] = true
		}
		if m.Subject != nil {
			subjects[d.Digest] = m.Subject.Digest
		}
	}
	var out []v1.Descriptor
	for _, d := range kept {
		if s, ok := subjects[d.Digest]; ok && !live[s] {
			continue
		}
		out = append(out, d)
	}
	return append(out, add...), nil
}

// push writes the index, its images and the SBOM referrers to repo, tagged
// with the version.
func push(ctx context.Context, repo name.Repository, b *built, opt Options) (string, error) {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	tag := repo.Tag(b.tag.Version)
	opt.Phase("push "+tag.String(), 0)
	withProgress := func() ([]remote.Option, func()) {
		ch := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			var last int64
			for u := range ch {
				if u.Complete > last {
					opt.Bytes(u.Complete - last)
					last = u.Complete
				}
			}
		}()
		return []remote.Option{
			remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithJobs(jobs), remote.WithProgress(ch),
		}, func() { <-done }
	}
	ropts, wait := withProgress()
	err := remote.WriteIndex(tag, b.index, ropts...)
	wait()
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", tag, err)
	}
	for _, r := range b.referrers {
		d, err := r.Digest()
		if err != nil {
			return "", err
		}
		ropts, wait := withProgress()
		err = remote.Write(repo.Digest(d.String()), r, ropts...)
		wait()
		if err != nil {
			return "", fmt.Errorf("pushing the SBOM %s to %s: %w", d, repo, err)
		}
	}
	return tag.String() + "@" + b.indexDesc.Digest.String(), nil
}
