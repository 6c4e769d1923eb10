package main

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/push"
	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

// pushLayout writes an OCI layout holding a two-platform image named name.
func pushLayout(t *testing.T, name string) (string, v1.Hash) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for i, arch := range []string{"amd64", "arm64"} {
		l, err := random.Layer(100<<10, types.OCILayer, random.WithSource(rand.NewSource(int64(i+1))))
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{OS: "linux", Architecture: arch})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{push.AnnotationRefName: name})); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return dir, d
}

// ferryPush runs ferry push and returns its standard output and error.
func ferryPush(t *testing.T, home string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(ferryBin(t), append([]string{"push"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "DOCKER_CONFIG="+filepath.Join(home, "docker"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestPushCommand(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	dir, index := pushLayout(t, "example.com/svc:1.0")
	home := t.TempDir()

	out, errOut, err := ferryPush(t, home, "oci:"+dir, reg.Host+"/mirror", "--plain-http", "--json")
	if err != nil {
		t.Fatalf("ferry push: %v\n%s", err, errOut)
	}
	var rep push.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(rep.Images) != 1 || rep.Images[0].Ref != reg.Host+"/mirror/svc:1.0" || rep.Images[0].Digest != index.String() {
		t.Fatalf("report %+v; want %s/mirror/svc:1.0 at %s", rep.Images, reg.Host, index)
	}
	if rep.Total.BlobsUploaded != 4 || rep.Total.BytesSent == 0 || rep.Total.BytesSent != rep.Total.BytesUploaded {
		t.Errorf("first push: %+v; want 4 blobs uploaded", rep.Total)
	}

	// Again, human-readable: nothing sent.
	out, errOut, err = ferryPush(t, home, "oci:"+dir, reg.Host+"/mirror", "--plain-http")
	if err != nil {
		t.Fatalf("ferry push: %v\n%s", err, errOut)
	}
	for _, want := range []string{reg.Host + "/mirror/svc:1.0@" + index.String(), "sent 0 B (0 blobs uploaded)", "present", "total: "} {
		if !strings.Contains(out, want) {
			t.Errorf("second push said:\n%s\nwant %q", out, want)
		}
	}

	// Mistakes: one line, non-zero exit.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dir, reg.Host}, "give oci:DIR"},
		{[]string{"oci:" + filepath.Join(home, "nope"), reg.Host}, "not an OCI image layout"},
		{[]string{"oci:" + dir, "127.0.0.1:1", "--plain-http"}, "registry 127.0.0.1:1 unreachable"},
		{[]string{"oci:" + dir, reg.Host}, "--plain-http"},
		{[]string{"oci:" + dir, reg.Host + "/Bad", "--plain-http"}, "prefix"},
		{[]string{"oci:" + dir, reg.Host, "--plain-http", "--platform", "plan9"}, `platform "plan9"`},
		{[]string{"oci:" + dir}, "accepts 2 arg(s)"},
	} {
		out, errOut, err := ferryPush(t, home, c.args...)
		if err == nil {
			t.Errorf("ferry push %v succeeded:\n%s", c.args, out)
			continue
		}
		// One line of error; a usage error adds one "usage: ..." line.
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if !strings.Contains(lines[0], c.want) || len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[1], "usage: ferry push") {
			t.Errorf("ferry push %v said:\n%s\nwant one line mentioning %q (and a usage line for a usage error)", c.args, errOut, c.want)
		}
	}
}
