package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/image"
	"github.com/ferry-dev/ferry/internal/image/imagetest"
	"github.com/ferry-dev/ferry/internal/modtest"
)

// TestImageServePull is issue 5's serve check, through the ferry binary: a
// real service's image (built by ferry image build for linux/amd64 and
// linux/arm64) is carried in a bundle (pack --image oci:DIR), imported into
// a store and served by `ferry serve`; the machine's Docker engine pulls it
// from the server's OCI API on loopback, runs it with no network and its
// probe answers. The referrers API lists the image's SBOM.
func TestImageServePull(t *testing.T) {
	docker := imageTool(t, "docker")
	ferry := ferryBin(t)
	local := modtest.LocalToolchain(t)
	goVer := strings.TrimPrefix(local.Version, "v0.0.1-")
	goVer = goVer[:strings.LastIndexByte(goVer, '.')]
	srv := modtest.NewServer(t, local, imagetest.GreetModule())
	env := modtest.GoEnv(t, srv)
	work := t.TempDir()
	proj := filepath.Join(work, "svc")
	if err := imagetest.Write(proj); err != nil {
		t.Fatal(err)
	}
	mustRun(t, proj, env, "go", "mod", "tidy")
	t.Logf("%s: tidy", time.Now().Format(time.TimeOnly))
	buildEnv := append(env[:len(env):len(env)], "SOURCE_DATE_EPOCH=1700000000")
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		ca := filepath.Join(work, "ca.pem")
		os.WriteFile(ca, testCAPEM(t), 0o644)
		buildEnv = append(buildEnv, "SSL_CERT_FILE="+ca)
	}

	repo := "ferry-test-svc-" + randHex(t)
	layoutDir := filepath.Join(work, "svc-oci")
	out := mustRun(t, proj, buildEnv, ferry, "image", "build", ".", "--tag", repo+":1.0",
		"--platform", "linux/amd64,linux/arm64", "-o", "oci:"+layoutDir, "--json")
	var res image.Result
	decodeJSON(t, out, &res)
	t.Logf("%s: image built", time.Now().Format(time.TimeOnly))
	bundlePath := filepath.Join(work, "svc.ferry")
	mustRun(t, proj, env, ferry, "pack", ".", "-q", "-o", bundlePath, "--toolchain", goVer,
		"--image", "oci:"+layoutDir, "--cache", filepath.Join(work, "cache"))
	store := filepath.Join(work, "store")
	mustRun(t, work, env, ferry, "import", "-q", bundlePath, "--store", store)
	t.Logf("%s: packed and imported", time.Now().Format(time.TimeOnly))

	// ferry serve on loopback of the host network, where the Docker engine
	// (which treats 127.0.0.0/8 registries as insecure) reaches it over HTTP.
	addr := freeLoopbackAddr(t)
	serveLog := filepath.Join(work, "serve.log")
	logf, err := os.Create(serveLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(ferry, "serve", "--store", store, "--listen", addr, "--refresh", "0")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	failf := func(format string, args ...any) {
		t.Helper()
		data, _ := os.ReadFile(serveLog)
		t.Fatalf(format+"\nserver log:\n%s", append(args, data)...)
	}
	waitReady(t, "http://"+addr+"/readyz")
	t.Logf("%s: serving", time.Now().Format(time.TimeOnly))

	// The SBOM of each platform image is listed by the referrers API.
	for _, im := range res.Images {
		var refs struct {
			Manifests []struct{ ArtifactType string }
		}
		body := httpGet(t, "http://"+addr+"/v2/"+repo+"/referrers/"+im.Digest)
		if json.Unmarshal([]byte(body), &refs) != nil || len(refs.Manifests) != 1 || !strings.Contains(refs.Manifests[0].ArtifactType, "spdx") {
			t.Errorf("referrers of %s %s: %s", im.Platform, im.Digest, body)
		}
	}

	ref := addr + "/" + repo + ":1.0"
	t.Cleanup(func() { exec.Command(docker, "rmi", "-f", ref).Run() })
	if out, err := run(t, "", nil, docker, "pull", ref); err != nil {
		failf("docker pull %s: %v\n%s", ref, err, out)
	} else if !strings.Contains(out, res.Index.Digest) {
		t.Errorf("docker pull %s says:\n%s\nwant the index digest %s", ref, out, res.Index.Digest)
	}
	t.Logf("%s: pulled", time.Now().Format(time.TimeOnly))
	got := mustRun(t, "", nil, docker, "image", "inspect", "--format", "{{.Architecture}} {{.Config.User}} {{join .RepoDigests \" \"}}", ref)
	if want := runtime.GOARCH + " 65532:65532 " + addr + "/" + repo + "@" + res.Index.Digest; strings.TrimSpace(got) != want {
		t.Errorf("docker image inspect: %q, want %q", got, want)
	}
	name := "ferry-test-" + randHex(t)
	t.Cleanup(func() { exec.Command(docker, "rm", "-f", name).Run() })
	mustRun(t, "", nil, docker, "run", "-d", "--network", "none", "--name", name, ref)
	answer, err := run(t, "", nil, docker, "exec", name, "svc", "probe")
	if err != nil {
		logs, _ := run(t, "", nil, docker, "logs", name)
		t.Fatalf("docker exec %s svc probe: %v\n%s\ncontainer log:\n%s", name, err, answer, logs)
	}
	if strings.TrimSpace(answer) != imagetest.WantAnswer+" uid:65532" {
		t.Errorf("probe answered %q", answer)
	}
	metrics := httpGet(t, "http://"+addr+"/metrics")
	for _, k := range []string{`kind="oci-manifest"`, `kind="oci-blob"`} {
		found := false
		for _, line := range strings.Split(metrics, "\n") {
			found = found || strings.HasPrefix(line, "ferry_http_requests_total{") && strings.Contains(line, `code="200"`) && strings.Contains(line, k)
		}
		if !found {
			t.Errorf("metrics count no 200 answer of %s:\n%s", k, metrics)
		}
	}
	// Read-only: a push is refused.
	if out, err := run(t, "", nil, docker, "push", ref); err == nil {
		t.Errorf("docker push to ferry serve succeeded:\n%s", out)
	}
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls url until it answers 200 (at most a minute: the server
// only reads the store's manifests before it is ready).
func waitReady(t *testing.T, url string) {
	t.Helper()
	for range 600 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v\n%s", url, resp.StatusCode, err, data)
	}
	return string(data)
}
