package zipcodec

import (
	"archive/zip"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	modzip "golang.org/x/mod/zip"
)

// Limits the go command puts on a module zip (golang.org/x/mod/zip).
const (
	MaxGoMod   = modzip.MaxGoMod   // bytes of the module's go.mod
	MaxLICENSE = modzip.MaxLICENSE // bytes of the module's LICENSE
)

// refuse ends the errors about a zip no honest writer makes.
const refuse = "a zip bomb or a damaged zip, not one the go command or ferry writes: get the bundle again from its source, or pack it again"

// CheckZip checks the layout of zip zr, whose archive is size bytes,
// before anything reads an entry. It refuses
//
//   - two entries with one name, two names that differ only in case
//     (Unicode simple folding, as golang.org/x/mod/zip refuses them), and a
//     name that is both a file and a directory ("a" and "a/b"); a directory
//     entry may repeat;
//   - entries whose declared uncompressed sizes add up to more than
//     maxUncompressed;
//   - an entry whose bytes (local header, data and data descriptor) overlap
//     another entry's, or run past size.
//
// Once it passes, reading every entry once inflates at most maxUncompressed
// bytes in all (archive/zip fails a read past an entry's declared size),
// from compressed bytes that are each read once. It reads the fixed part of
// every local header (30 bytes), and no data. Its errors name the entries.
func CheckZip(zr *zip.Reader, size int64, maxUncompressed uint64) error {
	if size < 0 {
		return fmt.Errorf("checking zip: size %d is negative", size)
	}
	return checkZip(zr, size, maxUncompressed)
}

// checkZip is CheckZip, with size -1 for a zip of unknown size (its entries
// are then not checked against its end; reading past it fails anyway).
func checkZip(zr *zip.Reader, size int64, maxUncompressed uint64) error {
	// Names: as x/mod/zip's collision check, each name and its parents.
	type seen struct {
		name string
		dir  bool
	}
	names := make(map[string]seen, len(zr.File))
	for _, f := range zr.File {
		p, dir := strings.CutSuffix(f.Name, "/")
		for {
			fold := strToFold(p)
			if other, ok := names[fold]; ok {
				if other.name != p {
					return fmt.Errorf("zip entries %q and %q differ only in case (a case-insensitive file name collision, which the go command refuses): %s", other.name, p, refuse)
				}
				if other.dir != dir {
					return fmt.Errorf("zip entry %q is both a file and a directory: %s", p, refuse)
				}
				if !dir {
					return fmt.Errorf("zip has duplicate entries named %q: %s", p, refuse)
				}
				break // a directory seen before, with its parents
			}
			names[fold] = seen{p, dir}
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p, dir = p[:i], true
		}
	}

	var total uint64
	for _, f := range zr.File {
		if f.UncompressedSize64 > maxUncompressed-total {
			return fmt.Errorf("zip entries declare more than %d bytes uncompressed in all (%q declares %d): %s", maxUncompressed, f.Name, f.UncompressedSize64, refuse)
		}
		total += f.UncompressedSize64
	}

	// Extents: sorted by start, each must end before the next begins.
	type extent struct {
		start, end int64
		name       string
	}
	ext := make([]extent, 0, len(zr.File))
	for _, f := range zr.File {
		data, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("zip entry %q: reading its local header: %w", f.Name, err)
		}
		// The local header is 30 bytes, then the entry's name and extra
		// field. Its name is the central directory's in every zip a
		// writer makes; the extra field may differ, so it is left out
		// (what is counted lies within the header either way).
		start := data - 30 - int64(len(f.Name))
		if start < 0 {
			start = data - 30
		}
		if f.CompressedSize64 > math.MaxInt64-uint64(data)-24 {
			return fmt.Errorf("zip entry %q declares %d bytes compressed, past any file: %s", f.Name, f.CompressedSize64, refuse)
		}
		end := data + int64(f.CompressedSize64)
		if f.Flags&0x8 != 0 {
			end += 12 // the smallest data descriptor
		}
		if size >= 0 && end > size {
			return fmt.Errorf("zip entry %q runs to byte %d, past the end of the %d-byte zip: %s", f.Name, end, size, refuse)
		}
		ext = append(ext, extent{start, end, f.Name})
	}
	slices.SortFunc(ext, func(a, b extent) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	for i := 1; i < len(ext); i++ {
		if a, b := ext[i-1], ext[i]; b.start < a.end {
			return fmt.Errorf("zip entries %q and %q overlap (bytes %d-%d and %d-%d): %s", a.name, b.name, a.start, a.end, b.start, b.end, refuse)
		}
	}
	return nil
}

// checkModule checks the limits the go command puts on the files of a
// module zip (whose names are module@version/file) beyond CheckZip's.
func checkModule(zr *zip.Reader) error {
	for _, f := range zr.File {
		at := strings.IndexByte(f.Name, '@') // module paths have no @
		if at < 0 {
			continue
		}
		slash := strings.IndexByte(f.Name[at:], '/')
		if slash < 0 {
			continue
		}
		switch f.Name[at+slash+1:] {
		case "go.mod":
			if f.UncompressedSize64 > MaxGoMod {
				return fmt.Errorf("zip entry %q declares %d bytes, more than the %d the go command accepts in a go.mod: %s", f.Name, f.UncompressedSize64, MaxGoMod, refuse)
			}
		case "LICENSE":
			if f.UncompressedSize64 > MaxLICENSE {
				return fmt.Errorf("zip entry %q declares %d bytes, more than the %d the go command accepts in a LICENSE: %s", f.Name, f.UncompressedSize64, MaxLICENSE, refuse)
			}
		}
	}
	return nil
}

// strToFold returns a string with the property that strings.EqualFold(s, t)
// iff strToFold(s) == strToFold(t) (golang.org/x/mod/zip's, which is not
// exported).
func strToFold(s string) string {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		c := s[i]
		ascii = c < utf8.RuneSelf && !('A' <= c && c <= 'Z')
	}
	if ascii {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		// SimpleFold cycles to the next equivalent rune > r, or wraps
		// around to smaller values: stop at the smallest.
		for {
			r0 := r
			r = unicode.SimpleFold(r0)
			if r <= r0 {
				break
			}
		}
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
