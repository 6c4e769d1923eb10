package bundle

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// imageLayout writes an OCI image layout of one random image with
// go-containerregistry (another tool than ferry) and returns its directory.
func imageLayout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarDir writes the tree at dir as a tar file, as tar(1) or skopeo's
// oci-archive transport would (file info headers, names relative to dir,
// with prefix before each), and returns its path.
func tarDir(t *testing.T, dir, prefix string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = prefix + filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// An OCI archive another tool wrote is "not a ferry bundle", said as such
// with what to do, whatever its tar headers look like; a ferry bundle
// rewritten by another tool, or damaged, is not called one.
func TestOpenForeignOCIArchive(t *testing.T) {
	dir := imageLayout(t)
	archives := map[string]string{
		"tar of a go-containerregistry layout":      tarDir(t, dir, ""),
		"tar of a go-containerregistry layout, ./":  tarDir(t, dir, "./"),
		"skopeo oci-archive of that layout (on CI)": "",
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		p := filepath.Join(t.TempDir(), "skopeo.tar")
		if out, err := exec.Command(skopeo, "copy", "--quiet", "oci:"+dir, "oci-archive:"+p).CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		archives["skopeo oci-archive of that layout (on CI)"] = p
	}
	for name, p := range archives {
		t.Run(name, func(t *testing.T) {
			if p == "" {
				t.Skip("no skopeo here")
			}
			_, err := Open(p)
			if err == nil {
				t.Fatal("Open accepted it")
			}
			msg := err.Error()
			for _, want := range []string{p + ": not a ferry bundle (an OCI archive without a ferry manifest", "ferry pack --image oci:"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "not as ferry writes it") {
				t.Errorf("error %q", msg)
			}
			t.Log(msg)
		})
	}

	// A ferry bundle whose tar another tool rewrote keeps the precise error.
	path, _, _, _ := splitTestBundle(t, t.TempDir())
	unpacked := filepath.Join(t.TempDir(), "unpacked")
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := untar(path, unpacked); err != nil {
		t.Fatal(err)
	}
	retarred := tarDir(t, unpacked, "")
	if _, err := Open(retarred); err == nil || strings.Contains(err.Error(), "without a ferry manifest") {
		t.Errorf("a ferry bundle tarred again by another tool: %v", err)
	}
}

// untar extracts the regular files and directories of the tar at src into dir.
func untar(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
}
