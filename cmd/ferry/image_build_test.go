package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
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

// imageTool returns the path of a tool the image test needs, skipping the
// test when it is missing, or failing it under CI=true.
func imageTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil && name == "docker" {
		if out, derr := exec.Command(p, "version").CombinedOutput(); derr != nil {
			err = fmt.Errorf("docker engine unreachable: %v: %s", derr, strings.TrimSpace(string(out)))
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not usable: %v", name, err)
		}
		t.Skipf("%s is not usable here: %v", name, err)
	}
	return p
}

// TestImageBuildOffline is issue 5's build check, through the ferry binary:
// pack a small real service with its toolchain and modules, install the
// bundle with no network, and build its image for linux/amd64 and
// linux/arm64 in a network namespace with no network, using the installed
// go command. skopeo reads the OCI layout and the tar; the machine's Docker
// engine loads the tar, runs the image with no network and its probe
// answers.
func TestImageBuildOffline(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	needNetNS(t)
	skopeo := imageTool(t, "skopeo")
	ferry := ferryBin(t)

	local := modtest.LocalToolchain(t)
	goVer := strings.TrimPrefix(local.Version, "v0.0.1-")
	goVer = goVer[:strings.LastIndexByte(goVer, '.')]
	srv := modtest.NewServer(t, local, modtest.FakeToolchain(goVer, "linux", "arm64"), imagetest.GreetModule())
	env := modtest.GoEnv(t, srv)
	work := t.TempDir()
	proj := filepath.Join(work, "svc")
	if err := imagetest.Write(proj); err != nil {
		t.Fatal(err)
	}
	mustRun(t, proj, env, "go", "mod", "tidy")
	bundlePath := filepath.Join(work, "svc.ferry")
	mustRun(t, proj, env, ferry, "pack", "--no-sign", ".", "-o", bundlePath, "--platform", "linux/amd64,linux/arm64",
		"--toolchain", goVer, "--cache", filepath.Join(work, "cache"))

	// The far side: fresh HOME, no network, the organisation's GOSUMDB.
	home := t.TempDir()
	prefix := filepath.Join(home, "ferry")
	farEnv := []string{
		"PATH=" + filepath.Join(prefix, "go", "bin") + ":/usr/bin:/bin",
		"HOME=" + home,
		"GOENV=" + filepath.Join(home, ".config", "go", "env"),
		"GOSUMDB=" + srv.GOSUMDB,
		"GOFLAGS=-modcacherw",
		"GOCACHE=" + modtest.SharedGoCache(t), // compiled packages only: nothing to do with the network
		"SOURCE_DATE_EPOCH=1700000000",
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		// A host without a CA bundle: give ferry one to copy.
		ca := filepath.Join(work, "ca.pem")
		os.WriteFile(ca, testCAPEM(t), 0o644)
		farEnv = append(farEnv, "SSL_CERT_FILE="+ca)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	goDir := filepath.Dir(goBin)
	if out, err := offline(t, work, append(farEnv[:len(farEnv):len(farEnv)], "PATH=/usr/bin:/bin:"+goDir), ferry,
		"install", bundlePath, "--prefix", prefix); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	far := filepath.Join(home, "svc")
	mustRun(t, "", nil, "cp", "-r", proj, far)

	tarPath := filepath.Join(home, "svc.tar")
	layoutDir := filepath.Join(home, "svc-oci")
	tag := "ferry-test-svc-" + randHex(t) + ":1.0"
	build := func(out string) image.Result {
		t.Helper()
		stdout, err := offline(t, far, farEnv, ferry, "image", "build", ".", "--tag", tag,
			"--platform", "linux/amd64,linux/arm64", "-o", out, "--json")
		if err != nil {
			t.Fatalf("offline ferry image build -o %s: %v\n%s", out, err, stdout)
		}
		var res image.Result
		decodeJSON(t, stdout, &res)
		return res
	}
	resTar := build("tar:" + tarPath)
	resOCI := build("oci:" + layoutDir)
	if resTar.Index.Digest != resOCI.Index.Digest || len(resTar.Images) != 2 {
		t.Fatalf("two offline builds: index %s and %s, images %+v", resTar.Index.Digest, resOCI.Index.Digest, resTar.Images)
	}
	for i, plat := range []string{"linux/amd64", "linux/arm64"} {
		ir := resTar.Images[i]
		if ir.Platform != plat || ir.User != "65532:65532" || !ir.AddedCACerts || !ir.AddedZoneinfo || ir.Modules != 3 {
			t.Errorf("image %d: %+v", i, ir)
		}
	}
	if got := resTar.Outputs[0].DockerPlatform; got != "linux/"+runtime.GOARCH {
		t.Errorf("docker-save part holds %s", got)
	}

	// skopeo, an independent reader, sees the same index in both outputs.
	for _, ref := range []string{"oci:" + layoutDir + ":" + tag, "oci-archive:" + tarPath + ":" + tag} {
		raw := mustRun(t, "", nil, skopeo, "inspect", "--raw", ref)
		sum := sha256.Sum256([]byte(raw))
		if d := "sha256:" + hex.EncodeToString(sum[:]); d != resTar.Index.Digest {
			t.Errorf("skopeo inspect --raw %s: digest %s, built %s\n%s", ref, d, resTar.Index.Digest, raw)
		}
		for _, ir := range resTar.Images {
			if !strings.Contains(raw, ir.Digest) {
				t.Errorf("skopeo: %s lacks %s", ref, ir.Digest)
			}
		}
	}
	cfg := mustRun(t, "", nil, skopeo, "inspect", "--config", "oci:"+layoutDir+":"+tag)
	if !strings.Contains(cfg, `"User": "65532:65532"`) && !strings.Contains(cfg, `"User":"65532:65532"`) {
		t.Errorf("skopeo config lacks the user:\n%s", cfg)
	}

	// The Docker engine (no images, cannot pull) loads the tar, runs the
	// image with no network, and the service answers its probe.
	docker := imageTool(t, "docker")
	out := mustRun(t, "", nil, docker, "load", "-i", tarPath)
	t.Cleanup(func() { exec.Command(docker, "rmi", "-f", tag).Run() })
	if !strings.Contains(out, tag) {
		t.Fatalf("docker load said:\n%s", out)
	}
	name := "ferry-test-" + randHex(t)
	t.Cleanup(func() { exec.Command(docker, "rm", "-f", name).Run() })
	mustRun(t, "", nil, docker, "run", "-d", "--network", "none", "--name", name, tag)
	got, err := run(t, "", nil, docker, "exec", name, "svc", "probe")
	if err != nil {
		logs, _ := run(t, "", nil, docker, "logs", name)
		t.Fatalf("docker exec %s svc probe: %v\n%s\ncontainer log:\n%s", name, err, got, logs)
	}
	if strings.TrimSpace(got) != imagetest.WantAnswer+" uid:65532" {
		t.Errorf("probe answered %q", got)
	}
	arch := strings.TrimSpace(mustRun(t, "", nil, docker, "image", "inspect", "--format", "{{.Architecture}} {{.Config.User}}", tag))
	if arch != runtime.GOARCH+" 65532:65532" {
		t.Errorf("docker image inspect: %q", arch)
	}
}

func randHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testCAPEM returns a throwaway self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
