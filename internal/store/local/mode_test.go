//go:build unix

package local_test

import (
	"bufio"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// buildStore has a helper process with the given umask import the
// fixture's base and delta into a new store and prune the base (so that
// the store has bundles, decoded files, kept blobs and an index), and
// returns the store's directory.
func buildStore(t *testing.T, f killFixture, umask string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	base := open(t, f.base).Digest()
	ps, out := helper(t, envStore+"="+dir, envUmask+"="+umask,
		envImport+"="+f.base+string(os.PathListSeparator)+f.delta, envPrune+"="+base)
	if !ps.Success() {
		t.Fatalf("building the store under umask %s: %v\n%s", umask, ps, out)
	}
	for _, sub := range []string{"bundles", "files/sha256", "blobs/sha256", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(sub))); err != nil {
			t.Fatalf("the store has no %s: %v", sub, err)
		}
	}
	return dir
}

// TestStoreModes: files and directories of a store follow the umask of the
// importer as the go command's module cache does: under 022 a server run as
// another user reads everything (files read-only for all, directories
// 0755); under 077 nobody else gets anything.
func TestStoreModes(t *testing.T) {
	f := newKillFixture(t)
	for _, c := range []struct {
		umask           string
		file, lock, dir fs.FileMode
	}{
		{"022", 0o444, 0o644, 0o755},
		{"077", 0o400, 0o600, 0o700},
	} {
		t.Run("umask"+c.umask, func(t *testing.T) {
			dir := buildStore(t, f, c.umask)
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				want := c.file
				switch {
				case d.IsDir():
					want = c.dir | fs.ModeDir
				case d.Name() == "lock" && filepath.Dir(p) == dir:
					want = c.lock // opened for writing, to be locked
				}
				if fi.Mode() != want {
					t.Errorf("%s: mode %v, want %v", strings.TrimPrefix(p, dir), fi.Mode(), want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestServeAsAnotherUser: a store imported by root under umask 022 is
// served, whole, by a process running as nobody (uid and gid 65534), as a
// 'ferry serve' run as a service user: every listed bundle's blobs, every
// decoded file and every GOPROXY file over HTTP.
func TestServeAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a process as another user")
	}
	f := newKillFixture(t)
	dir := buildStore(t, f, "022")
	// t.TempDir makes its directories 0700: open the way to the store (and
	// to a copy of this test binary, whose build directory is private too).
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for d := tmp; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("other users cannot reach %s (%v): set TMPDIR", d, err)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	exe := filepath.Join(filepath.Dir(dir), "bin", "local.test")
	copyFile(t, os.Args[0], exe)
	ps, out := helperAs(t, exe, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}},
		envStore+"="+dir, envServe+"=1")
	if !ps.Success() {
		t.Fatalf("serving the store as nobody: %v\n%s", ps, out)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "served "); ok {
			p, d, _ := strings.Cut(rest, " ")
			got[p] = d
		}
	}
	if w := want(t, nil, f.delta); !maps.Equal(got, w) {
		t.Fatalf("served as nobody:\n%v\nwant\n%v\n%s", got, w, out)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
}
