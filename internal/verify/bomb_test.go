package verify

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// sharedStreamZip returns a module zip of n entries whose central directory
// records all point at one local header holding a deflate stream of usize
// zeros: about 100 KB that inflate to n*usize bytes.
func sharedStreamZip(t *testing.T, prefix string, n, usize int) []byte {
	t.Helper()
	var stream bytes.Buffer
	fw, _ := flate.NewWriter(&stream, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	var crc uint32
	for left := usize; left > 0; left -= len(zeros) {
		c := zeros[:min(left, len(zeros))]
		fw.Write(c)
		crc = crc32.Update(crc, crc32.IEEETable, c)
	}
	fw.Close()
	le := binary.LittleEndian
	header := func(sig uint32, central bool, name string) []byte {
		b := le.AppendUint32(nil, sig)
		if central {
			b = le.AppendUint16(b, 20) // made by
		}
		b = le.AppendUint16(b, 20)  // needed
		b = le.AppendUint16(b, 0)   // flags
		b = le.AppendUint16(b, 8)   // deflate
		b = le.AppendUint32(b, 0)   // time, date
		b = le.AppendUint32(b, crc) //
		b = le.AppendUint32(b, uint32(stream.Len()))
		b = le.AppendUint32(b, uint32(usize))
		b = le.AppendUint16(b, uint16(len(name)))
		b = le.AppendUint16(b, 0) // extra
		if central {
			b = le.AppendUint32(b, 0) // comment, disk
			b = le.AppendUint16(b, 0) // internal attributes
			b = le.AppendUint32(b, 0) // external attributes
			b = le.AppendUint32(b, 0) // local header offset: all the same
		}
		return append(b, name...)
	}
	z := append(header(0x04034b50, false, prefix+"f00.go"), stream.Bytes()...)
	dir := len(z)
	for i := range n {
		z = append(z, header(0x02014b50, true, fmt.Sprintf("%sf%02d.go", prefix, i))...)
	}
	end := le.AppendUint32(nil, 0x06054b50)
	end = le.AppendUint32(end, 0)
	end = le.AppendUint16(end, uint16(n))
	end = le.AppendUint16(end, uint16(n))
	end = le.AppendUint32(end, uint32(len(z)-dir))
	end = le.AppendUint32(end, uint32(dir))
	end = le.AppendUint16(end, 0)
	return append(z, end...)
}

// The zip bomb: an unsigned bundle with a 100 KB module zip of 50
// entries sharing one 100 MiB stream made verify hash 5 GiB (20 s). It is
// refused, as a problem of that zip, before anything is inflated.
func TestZipBombRefusedQuickly(t *testing.T) {
	bomb := sharedStreamZip(t, "example.com/bomb@v1.0.0/", 50, 100<<20)
	d := bundle.Digest(bomb)
	const file = "example.com/bomb/@v/v1.0.0.zip"
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "bomb", Items: []bundle.Item{{
		File: file, Kind: bundle.KindZip, Module: "example.com/bomb", Version: "v1.0.0",
		Hash: "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", Size: int64(len(bomb)), Digest: d,
	}}}
	path := filepath.Join(t.TempDir(), "bomb.ferry")
	if _, err := bundle.Write(context.Background(), path, m, bundle.MemSource{d: bomb}, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	rep, err := Bundle(context.Background(), r, Options{Jobs: 2, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	var found bool
	for _, p := range rep.Problems {
		if p.File == file && strings.Contains(p.Msg, "uncompressed") {
			found = true
			t.Log(p)
		}
	}
	if !found {
		t.Errorf("verify did not refuse the bomb as such; problems: %v", rep.Problems)
	}
	if took > 3*time.Second {
		t.Errorf("verify took %v", took)
	}
}
