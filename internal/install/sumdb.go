package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
)

// maxSigned bounds the size of a lookup or tree head read into memory.
const maxSigned = 1 << 20

// sumdbFileKind classifies sumdb/<name>/<rest>: "latest", "lookup", "tile",
// "supported" or "".
func sumdbFileKind(file string) string {
	parts := strings.SplitN(file, "/", 4)
	if len(parts) < 3 || parts[0] != "sumdb" {
		return ""
	}
	switch parts[2] {
	case "latest", "supported":
		if len(parts) == 3 {
			return parts[2]
		}
	case "lookup", "tile":
		if len(parts) == 4 {
			return parts[2]
		}
	}
	return ""
}

// placeSigned places a lookup or "latest" item, keeping whichever of the
// store's copy and the bundle's is signed with the larger tree.
func placeSigned(ctx context.Context, src Source, it bundle.Item, dst string, lookup bool) (action, string, error) {
	old, err := readLimited(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return actWritten, "", writeItem(ctx, src, it, dst, "", nil, false)
	}
	if err != nil {
		return 0, "", fmt.Errorf("reading %s: %w", dst, err)
	}
	data, err := readBlob(ctx, src, it.Digest, it.Size, maxSigned)
	if err != nil {
		return 0, "", fmt.Errorf("reading item %s: %w", it.File, err)
	}
	if bytes.Equal(old, data) {
		return actPresent, "", nil
	}
	newSize, err := sumdbsnap.SignedTreeSize(data, lookup)
	if err != nil {
		return 0, "", fmt.Errorf("item %s: %w", it.File, err)
	}
	oldSize, err := sumdbsnap.SignedTreeSize(old, lookup)
	if err != nil {
		// The store's copy is unreadable; the bundle's was verified.
		if err := writeBytes(dst, data); err != nil {
			return 0, "", err
		}
		return actWritten, fmt.Sprintf("store file %s was malformed (%v); replaced it", it.File, err), nil
	}
	if newSize <= oldSize {
		return actPresent, "", nil
	}
	if err := writeBytes(dst, data); err != nil {
		return 0, "", err
	}
	return actWritten, "", nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSigned+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSigned {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSigned)
	}
	return data, nil
}
