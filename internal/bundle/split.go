package bundle

// Split bundles, for removable media.
//
// Split turns the bundle file NAME into parts NAME.001, NAME.002, ... (plain
// byte ranges of the bundle, each at most the part size, the last one may be
// smaller; more digits when there are more than 999 parts, always the same
// number of digits in one set) and replaces NAME itself with a small JSON
// index (SplitIndex, media type SplitMediaType) that lists, for each part, its
// base name, size and sha256 digest, plus the size and sha256 of the whole
// bundle and the digest of its OCI image manifest. Because NAME ends up as the
// index, every command that takes NAME keeps working, and OpenSplit also
// takes the path of any listed part (NAME.001 on the first disc). When the
// index is lost but every part is there, `cat NAME.[0-9]* > NAME` rebuilds the
// bundle, byte for byte.
//
// Invariants:
//
//   - Split never leaves a half-written set: it writes every part and the
//     index to temporary files in the same directory and syncs them, renames
//     the parts into place, then renames the index over NAME last. Until that
//     last rename NAME is the whole bundle; after it, the index. On any error
//     before it, every part and temporary file it wrote is removed. After it,
//     files NAME.<digits> that are not parts of the new set (left by an
//     earlier split of the same NAME) are removed.
//   - OpenSplit identifies parts by the index only: names come from the index
//     (base names only; path separators, "..", control characters and ':' are
//     refused) and each part's content must have the recorded size and
//     sha256. It reads every part fully once, through the file handle it then
//     keeps open and reads the bundle from, and reports every missing,
//     truncated, damaged or swapped part, one line each, each line starting
//     with "bundle NAME:". A part holding another part's content (parts
//     renamed or out of order) is named with the part whose content it holds.
//   - The ReaderAt of OpenSplit reads the concatenation of the parts in index
//     order and is safe for concurrent use.

import (
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
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SplitMediaType is the media type of the index of a split bundle.
const SplitMediaType = "application/vnd.ferry.split.v1+json"

// SplitSchemaVersion is the version of the SplitIndex format written by this code.
const SplitSchemaVersion = 1

// MaxSplitParts is the largest number of parts Split writes and OpenSplit accepts.
const MaxSplitParts = 10000

const (
	maxSplitIndexSize = 4 << 20
	minPartDigits     = 3
	maxPartNameLen    = 255
	splitChunk        = 1 << 20
)

// SplitIndex is the index of a split bundle, written where the bundle was.
type SplitIndex struct {
	MediaType     string      `json:"mediaType"` // SplitMediaType
	SchemaVersion int         `json:"schemaVersion"`
	Bundle        string      `json:"bundle"`             // base name of the bundle file that was split
	Size          int64       `json:"size"`               // of the whole bundle
	Digest        string      `json:"digest"`             // sha256 of the whole bundle (the parts concatenated)
	Manifest      string      `json:"manifest,omitempty"` // digest of the bundle's OCI image manifest (Reader.Digest)
	Parts         []SplitPart `json:"parts"`
}

// SplitPart is one part of a split bundle.
type SplitPart struct {
	Name   string `json:"name"` // base name, in the index's directory
	Size   int64  `json:"size"`
	Digest string `json:"digest"` // sha256 of the part
}

// EncodeSplitIndex returns the JSON encoding of idx as Split writes it.
func EncodeSplitIndex(idx *SplitIndex) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(idx); err != nil {
		return nil, fmt.Errorf("encoding split index: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeSplitIndex parses and checks the index of a split bundle: known
// fields only, safe part names (base names, distinct), positive sizes that add
// up to the bundle's size, and valid digests.
func DecodeSplitIndex(data []byte) (*SplitIndex, error) {
	if len(data) > maxSplitIndexSize {
		return nil, fmt.Errorf("split index: %d bytes, more than the limit of %d", len(data), maxSplitIndexSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	idx := new(SplitIndex)
	if err := dec.Decode(idx); err != nil {
		return nil, fmt.Errorf("split index: %v", oneLine(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("split index: data after the JSON object")
	}
	if idx.MediaType != SplitMediaType {
		return nil, fmt.Errorf("not a ferry split index: mediaType %q, want %q", idx.MediaType, SplitMediaType)
	}
	if idx.SchemaVersion != SplitSchemaVersion {
		return nil, fmt.Errorf("split index: schemaVersion %d, this ferry reads %d", idx.SchemaVersion, SplitSchemaVersion)
	}
	if err := checkPartName(idx.Bundle); err != nil {
		return nil, fmt.Errorf("split index: bundle name: %v", err)
	}
	if idx.Size <= 0 {
		return nil, fmt.Errorf("split index: bundle size %d", idx.Size)
	}
	if !validDigest(idx.Digest) {
		return nil, fmt.Errorf("split index: invalid bundle digest %q", idx.Digest)
	}
	if idx.Manifest != "" && !validDigest(idx.Manifest) {
		return nil, fmt.Errorf("split index: invalid manifest digest %q", idx.Manifest)
	}
	if len(idx.Parts) == 0 || len(idx.Parts) > MaxSplitParts {
		return nil, fmt.Errorf("split index: %d parts, want 1 to %d", len(idx.Parts), MaxSplitParts)
	}
	names := make(map[string]bool, len(idx.Parts))
	var total int64
	for i, p := range idx.Parts {
		if err := checkPartName(p.Name); err != nil {
			return nil, fmt.Errorf("split index: part %d: %v", i+1, err)
		}
		if p.Name == idx.Bundle {
			return nil, fmt.Errorf("split index: part %d has the bundle's own name %q", i+1, p.Name)
		}
		if names[p.Name] {
			return nil, fmt.Errorf("split index: part %q listed twice", p.Name)
		}
		names[p.Name] = true
		if p.Size <= 0 {
			return nil, fmt.Errorf("split index: part %s: size %d", p.Name, p.Size)
		}
		if p.Size > math.MaxInt64-total {
			return nil, fmt.Errorf("split index: part sizes overflow at part %s", p.Name)
		}
		total += p.Size
		if !validDigest(p.Digest) {
			return nil, fmt.Errorf("split index: part %s: invalid digest %q", p.Name, p.Digest)
		}
	}
	if total != idx.Size {
		return nil, fmt.Errorf("split index: parts add up to %d bytes, the bundle has %d", total, idx.Size)
	}
	return idx, nil
}

// checkPartName accepts a plain file name: no directory, nothing that a
// file system could take for a path, a volume or a parent.
func checkPartName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case len(name) > maxPartNameLen:
		return fmt.Errorf("file name of %d bytes, more than %d", len(name), maxPartNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %q is not UTF-8", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("file name %q has a path separator", name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("file name %q has \"..\"", name)
	case name == ".":
		return fmt.Errorf("file name %q", name)
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("file name %q has ':'", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("file name %q has a control character", name)
		}
	}
	return nil
}

// partName is the name of part i (from 1) of n of the bundle file base.
func partName(base string, i, n int) string {
	width := max(minPartDigits, len(strconv.Itoa(n)))
	return fmt.Sprintf("%s.%0*d", base, width, i)
}

// partStem splits a part's file name NAME.NNN (three digits or more) into NAME.
func partStem(name string) (string, bool) {
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 || len(name)-dot-1 < minPartDigits {
		return "", false
	}
	for _, c := range name[dot+1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return name[:dot], true
}

// Split turns the bundle file at path into parts of at most partSize bytes
// named path.001, path.002, ... and replaces path with their index (see the
// comment at the top of this file). It checks that path is a bundle (Open's
// structural checks) first. progress, if not nil, is called with the number
// of bytes written so far. It needs free space for one more copy of the
// bundle while it runs.
func Split(ctx context.Context, path string, partSize int64, progress func(done int64)) (*SplitIndex, error) {
	fail := func(format string, args ...any) (*SplitIndex, error) {
		return nil, fmt.Errorf("splitting %s: "+format, append([]any{path}, args...)...)
	}
	if partSize <= 0 {
		return fail("part size %d, want at least 1 byte", partSize)
	}
	f, fi, err := openRegular(path)
	if err != nil {
		return fail("%v", unwrapPath(err))
	}
	defer f.Close()
	size := fi.Size()
	r, err := openReaderAt(path, f, size)
	if err != nil {
		return nil, fmt.Errorf("splitting bundle: %w", err)
	}
	n64 := (size + partSize - 1) / partSize
	if n64 > MaxSplitParts {
		return fail("%d bytes in parts of %d bytes makes %d parts, more than %d: choose a larger part size", size, partSize, n64, MaxSplitParts)
	}
	n := int(n64)
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := checkPartName(partName(base, n, n)); err != nil {
		return fail("%v", err)
	}

	idx := &SplitIndex{
		MediaType:     SplitMediaType,
		SchemaVersion: SplitSchemaVersion,
		Bundle:        base,
		Size:          size,
		Manifest:      r.Digest(),
	}
	var tmps []string   // temporary files, parts then index
	var placed []string // parts renamed into place
	committed := false
	defer func() {
		if committed {
			return
		}
		for _, t := range tmps {
			os.Remove(t)
		}
		for _, p := range placed {
			os.Remove(p)
		}
	}()

	total := sha256.New()
	buf := make([]byte, splitChunk)
	var done int64
	for i := 1; i <= n; i++ {
		name := partName(base, i, n)
		off := int64(i-1) * partSize
		sz := min(partSize, size-off)
		t, err := os.CreateTemp(dir, name+".tmp-*")
		if err != nil {
			return fail("%v", err)
		}
		tmps = append(tmps, t.Name())
		h := sha256.New()
		_, err = copyHashing(ctx, io.MultiWriter(t, total), h, io.NewSectionReader(f, off, sz), sz, buf, func(k int64) {
			if progress != nil {
				progress(done + k)
			}
		})
		if err == nil {
			err = t.Sync()
		}
		if cerr := t.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(t.Name(), 0o644)
		}
		if err != nil {
			return fail("writing part %s: %v", name, err)
		}
		done += sz
		idx.Parts = append(idx.Parts, SplitPart{Name: name, Size: sz, Digest: sumDigest(h)})
	}
	idx.Digest = sumDigest(total)
	data, err := EncodeSplitIndex(idx)
	if err != nil {
		return fail("%v", err)
	}
	if _, err := DecodeSplitIndex(data); err != nil {
		return fail("%v", err) // a bug: Split must write what OpenSplit accepts
	}
	t, err := os.CreateTemp(dir, base+".index.tmp-*")
	if err != nil {
		return fail("%v", err)
	}
	tmps = append(tmps, t.Name())
	_, err = t.Write(data)
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(t.Name(), 0o644)
	}
	if err != nil {
		return fail("writing the index: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return fail("%v", err)
	}
	f.Close()

	// Commit: the parts, then the index over the bundle.
	for i, p := range idx.Parts {
		dst := filepath.Join(dir, p.Name)
		if err := os.Rename(tmps[i], dst); err != nil {
			return fail("%v", err)
		}
		placed = append(placed, dst)
	}
	syncDir(dir)
	if err := os.Rename(tmps[len(tmps)-1], path); err != nil {
		return fail("%v", err)
	}
	committed = true
	syncDir(dir)
	removeStaleParts(dir, base, idx)
	return idx, nil
}

// removeStaleParts removes files base.<digits> in dir that idx does not list.
func removeStaleParts(dir, base string, idx *SplitIndex) {
	listed := make(map[string]bool, len(idx.Parts))
	for _, p := range idx.Parts {
		listed[p.Name] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if stem, ok := partStem(e.Name()); ok && stem == base && !listed[e.Name()] && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// copyHashing copies n bytes from src to dst (nil: nowhere) and into h, in
// chunks, checking ctx between them; progress gets the running count.
func copyHashing(ctx context.Context, dst io.Writer, h hash.Hash, src io.Reader, n int64, buf []byte, progress func(int64)) (int64, error) {
	var w io.Writer = h
	if dst != nil {
		w = io.MultiWriter(dst, h)
	}
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		chunk := buf[:min(int64(len(buf)), n-done)]
		k, err := io.ReadFull(src, chunk)
		if k > 0 {
			if _, werr := w.Write(chunk[:k]); werr != nil {
				return done, werr
			}
			done += int64(k)
			if progress != nil {
				progress(done)
			}
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return done, fmt.Errorf("file ends after %d of %d bytes", done, n)
			}
			return done, err
		}
	}
	return done, nil
}

func sumDigest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// splitFile is one open part of a split bundle.
type splitFile struct {
	name string
	f    *os.File
	off  int64 // in the bundle
	size int64
}

// splitReader reads the concatenation of the parts of a split bundle.
type splitReader struct {
	name  string // the index's path, for errors
	size  int64
	parts []splitFile
	index *SplitIndex
}

// ReadAt reads the bundle bytes at off, across part boundaries.
func (s *splitReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bundle %s: read at negative offset %d", s.name, off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	i := sort.Search(len(s.parts), func(i int) bool { return s.parts[i].off+s.parts[i].size > off })
	n := 0
	for n < len(p) && i < len(s.parts) {
		pt := s.parts[i]
		rel := off + int64(n) - pt.off
		k := int(min(int64(len(p)-n), pt.size-rel))
		m, err := pt.f.ReadAt(p[n:n+k], rel)
		n += m
		if m < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("bundle %s: reading part %s at offset %d: %w", s.name, pt.name, rel+int64(m), err)
		}
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close closes every part.
func (s *splitReader) Close() error {
	var first error
	for _, p := range s.parts {
		if err := p.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.parts = nil
	return first
}

// OpenSplit opens a split bundle given the path of its index or of one of its
// parts (NAME.001). ok is false, with no error, when path is neither (Open
// then reads path as a bundle file). Otherwise it checks every part listed by
// the index, reading each fully once, and either returns one error naming
// every missing, truncated, damaged or swapped part (one line each), or a
// ReaderAt over the whole bundle, its size, and the Closer of the parts.
func OpenSplit(ctx context.Context, path string) (ra io.ReaderAt, size int64, closer io.Closer, ok bool, err error) {
	s, ok, err := openSplit(ctx, path)
	if err != nil || !ok {
		return nil, 0, nil, false, err
	}
	return s, s.size, s, true, nil
}

func openSplit(ctx context.Context, path string) (*splitReader, bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if first := firstPart(path); first != "" {
				return nil, false, fmt.Errorf("bundle %s: no such file, but %s is there: the index of a split bundle is missing (if every part is there, cat %s.[0-9]* > %s rebuilds the bundle)", path, filepath.Base(first), path, path)
			}
		}
		return nil, false, nil // Open reports it
	}
	if !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	self, selfIsIndex, selfErr := readSplitIndexFile(path)
	indexPath, given := "", ""
	var data []byte
	if stem, ok := partStem(filepath.Base(path)); ok {
		// A part: its index is NAME beside it.
		ip := filepath.Join(filepath.Dir(path), stem)
		d, ipIsIndex, err := readSplitIndexFile(ip)
		switch {
		case err != nil:
			return nil, false, fmt.Errorf("bundle %s: %v", ip, err)
		case ipIsIndex:
			indexPath, given, data = ip, filepath.Base(path), d
		case !selfIsIndex && !exists(ip) && !wholeBundle(path):
			return nil, false, fmt.Errorf("bundle %s: the index of the split bundle that %s belongs to is missing (if every part is there, cat %s.[0-9]* > %s rebuilds the bundle)", ip, filepath.Base(path), ip, ip)
		}
	}
	if indexPath == "" {
		if selfErr != nil {
			return nil, false, fmt.Errorf("bundle %s: %v", path, selfErr)
		}
		if !selfIsIndex {
			return nil, false, nil // a bundle file (or not a bundle): Open reads it
		}
		indexPath, data = path, self
	}
	idx, err := DecodeSplitIndex(data)
	if err != nil {
		return nil, false, fmt.Errorf("bundle %s: %v", indexPath, err)
	}
	if given != "" && !slices.ContainsFunc(idx.Parts, func(p SplitPart) bool { return p.Name == given }) {
		return nil, false, fmt.Errorf("bundle %s: %s is not one of the %d parts its index lists (%s ... %s)", indexPath, given, len(idx.Parts), idx.Parts[0].Name, idx.Parts[len(idx.Parts)-1].Name)
	}
	s, err := checkSplitParts(ctx, indexPath, idx)
	if err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// firstPart returns the path of the first part of a split bundle at path, if
// there is one.
func firstPart(path string) string {
	for w := minPartDigits; w <= len(strconv.Itoa(MaxSplitParts)); w++ {
		p := fmt.Sprintf("%s.%0*d", path, w, 1)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// wholeBundle reports whether path passes Open's structural checks.
func wholeBundle(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	_, err = openReaderAt(path, f, fi.Size())
	return err == nil
}

// exists reports whether something is at path.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// readSplitIndexFile reads path if it is a regular file that looks like a
// split index (JSON, where a bundle starts with a tar header). A file that
// cannot be opened is not an index (Open reports why); something there that
// is not a regular file is an error, and is not opened.
func readSplitIndexFile(path string) (data []byte, isIndex bool, err error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, false, checkRegular(fi) // never opened: a named pipe would block
	}
	f, _, err := openRegular(path)
	if err != nil {
		return nil, false, nil
	}
	defer f.Close()
	var head [64]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, false, nil
	}
	if t := bytes.TrimLeft(head[:n], " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, false, nil
	}
	data, err = io.ReadAll(io.MultiReader(bytes.NewReader(head[:n]), io.LimitReader(f, maxSplitIndexSize+1-int64(n))))
	if err != nil {
		return nil, true, fmt.Errorf("reading split index: %v", unwrapPath(err))
	}
	if len(data) > maxSplitIndexSize {
		return nil, true, fmt.Errorf("split index: more than the limit of %d bytes", maxSplitIndexSize)
	}
	return data, true, nil
}

// checkSplitParts opens and hashes every part listed by idx.
func checkSplitParts(ctx context.Context, indexPath string, idx *SplitIndex) (_ *splitReader, err error) {
	dir := filepath.Dir(indexPath)
	s := &splitReader{name: indexPath, size: idx.Size, index: idx}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	owner := make(map[string]string, len(idx.Parts)) // digest -> first part with it
	sizes := make(map[int64]bool)
	for _, p := range idx.Parts {
		if _, ok := owner[p.Digest]; !ok {
			owner[p.Digest] = p.Name
		}
		sizes[p.Size] = true
	}
	var problems []error
	problem := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("bundle %s: "+format, append([]any{indexPath}, args...)...))
	}
	total := sha256.New()
	buf := make([]byte, splitChunk)
	var off int64
	for _, p := range idx.Parts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bundle %s: checking parts: %w", indexPath, err)
		}
		start := off
		off += p.Size
		if fi, err := os.Stat(filepath.Join(dir, p.Name)); err == nil && !fi.Mode().IsRegular() {
			problem("part %s is %v", p.Name, checkRegular(fi)) // never opened: a named pipe would block
			continue
		}
		f, err := os.Open(filepath.Join(dir, p.Name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				problem("part %s is missing", p.Name)
			} else {
				problem("part %s: %v", p.Name, unwrapPath(err))
			}
			continue
		}
		s.parts = append(s.parts, splitFile{name: p.Name, f: f, off: start, size: p.Size})
		fi, err := f.Stat()
		if err != nil {
			problem("part %s: %v", p.Name, unwrapPath(err))
			continue
		}
		if err := checkRegular(fi); err != nil {
			problem("part %s is %v", p.Name, err)
			continue
		}
		got := fi.Size()
		if got != p.Size && !sizes[got] {
			problem("part %s: %d bytes, the index says %d (truncated, damaged or from another bundle)", p.Name, got, p.Size)
			continue
		}
		h := sha256.New()
		var dst io.Writer
		if len(problems) == 0 {
			dst = total
		}
		if _, err := copyHashing(ctx, dst, h, io.NewSectionReader(f, 0, got), got, buf, nil); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("bundle %s: checking parts: %w", indexPath, ctx.Err())
			}
			problem("part %s: %v", p.Name, unwrapPath(err))
			continue
		}
		d := sumDigest(h)
		switch other := owner[d]; {
		case d == p.Digest && got == p.Size:
		case other != "" && other != p.Name:
			problem("part %s holds the content of part %s (parts renamed or out of order)", p.Name, other)
		case got != p.Size:
			problem("part %s: %d bytes, the index says %d (truncated, damaged or from another bundle)", p.Name, got, p.Size)
		default:
			problem("part %s: sha256 mismatch (damaged or from another bundle)", p.Name)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if d := sumDigest(total); d != idx.Digest {
		return nil, fmt.Errorf("bundle %s: every part matches the index, but together they hash to %s, the index says %s (the index is damaged)", indexPath, d, idx.Digest)
	}
	return s, nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// ParseSize parses a size such as 650M, 4.7G, 4GiB, 700MB or 123456 (bytes).
// K, M, G, T (with or without B) are powers of 1000, as media are labelled;
// KiB, MiB, GiB, TiB powers of 1024. Units are case-insensitive; a fraction
// is rounded down to whole bytes. The size must be at least one byte.
func ParseSize(s string) (int64, error) {
	fail := func(format string, args ...any) (int64, error) {
		return 0, fmt.Errorf("size %q: "+format, append([]any{s}, args...)...)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return fail("empty")
	}
	if len(t) > 64 {
		return fail("too long")
	}
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	whole := t[:i]
	frac := ""
	if i < len(t) && t[i] == '.' {
		j := i + 1
		for j < len(t) && '0' <= t[j] && t[j] <= '9' {
			j++
		}
		frac = t[i+1 : j]
		if frac == "" {
			return fail("no digits after the decimal point")
		}
		i = j
	}
	if whole == "" {
		if strings.HasPrefix(t, "-") {
			return fail("negative")
		}
		return fail("want a number and an optional unit, such as 650M, 4.7G, 4GiB, 700MB")
	}
	unit := strings.TrimLeft(t[i:], " ")
	var mult int64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "k", "kb":
		mult = 1e3
	case "m", "mb":
		mult = 1e6
	case "g", "gb":
		mult = 1e9
	case "t", "tb":
		mult = 1e12
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "tib":
		mult = 1 << 40
	default:
		return fail("unknown unit %q (use B, K, M, G, T: powers of 1000, or KiB, MiB, GiB, TiB: powers of 1024)", unit)
	}
	if frac != "" && mult == 1 {
		return fail("a number of bytes must be whole")
	}
	num, _ := new(big.Int).SetString(whole+frac, 10)
	num.Mul(num, big.NewInt(mult))
	num.Quo(num, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !num.IsInt64() {
		return fail("more than %d bytes", int64(math.MaxInt64))
	}
	n := num.Int64()
	if n < 1 {
		return fail("less than one byte")
	}
	return n, nil
}
