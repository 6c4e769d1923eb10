package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/ferry-dev/ferry/internal/gocmd"
)

// Paths inside the image.
const (
	BinDir       = "/usr/local/bin"
	CACertPath   = "/etc/ssl/certs/ca-certificates.crt"
	ZoneinfoPath = "/usr/local/share/go/zoneinfo.zip"
	defaultPATH  = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// DefaultUser is the non-root user images run as unless told otherwise.
	DefaultUser = "65532:65532"
	hostCACerts = "/etc/ssl/certs/ca-certificates.crt"
)

// Annotation keys.
const (
	AnnVersion    = "org.opencontainers.image.version"
	AnnRevision   = "org.opencontainers.image.revision"
	AnnSource     = "org.opencontainers.image.source"
	AnnCreated    = "org.opencontainers.image.created"
	AnnBaseName   = "org.opencontainers.image.base.name"
	AnnBaseDigest = "org.opencontainers.image.base.digest"
	AnnRefName    = "org.opencontainers.image.ref.name"
	annImageName  = "io.containerd.image.name"
)

// Options configure Build. Flag-like fields are parsed by Build, so that
// every mistake is reported before anything is compiled or written.
type Options struct {
	Dir       string   // directory the go command runs in; "" = current
	Packages  []string // main packages or patterns; none = "."
	Tag       string   // NAME:VERSION (required)
	Platforms []string // linux/ARCH[/VARIANT]; none = linux/GOARCH of this process
	Base      string   // scratch (or ""), oci:DIR, oci:DIR:REF, or a registry reference
	Outputs   []string // oci:DIR or tar:FILE
	Push      string   // REGISTRY/REPO to push to as REPO:VERSION; "" = no push
	PlainHTTP bool     // plain HTTP for the base and push registries
	AllowRoot bool     // allow a root user
	User      string   // "" = DefaultUser; a bare UID U becomes U:U
	Workdir   string   // "" = "/"
	Created   time.Time
	Revision  string // "" = vcs.revision of the main module's build info
	Source    string // "" = https:// + the main module path, when it names a host
	// DockerPlatform chooses the image a tar output's docker-save
	// manifest.json names; "" = this process's linux/GOARCH if built, else
	// the first platform.
	DockerPlatform string
	Go             string   // go binary; "" = gocmd.Find()
	Env            []string // the go command's environment; nil = os.Environ()
	// CACertFile is the host CA bundle to copy; "" = $SSL_CERT_FILE from
	// Env, else /etc/ssl/certs/ca-certificates.crt.
	CACertFile string
	TempDir    string // for staging; "" = os.TempDir()
	Jobs       int    // concurrent uploads on push; <= 0 = 4
	Log        *slog.Logger
	Phase      func(name string, total int64) // a new phase of the work starts
	Bytes      func(n int64)                  // n more bytes (of the phase) done
}

// Descriptor names a blob.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Result reports a build.
type Result struct {
	Tag         string            `json:"tag"`
	Version     string            `json:"version"`
	Base        string            `json:"base"`
	Index       Descriptor        `json:"index"`
	Images      []ImageResult     `json:"images"`
	Annotations map[string]string `json:"annotations"`
	Outputs     []OutputResult    `json:"outputs,omitempty"`
	Pushed      string            `json:"pushed,omitempty"` // REPO:VERSION@DIGEST
}

// ImageResult reports one platform image.
type ImageResult struct {
	Platform      string         `json:"platform"`
	Digest        string         `json:"digest"`
	Size          int64          `json:"size"` // manifest size
	Config        string         `json:"config"`
	Layers        int            `json:"layers"`
	LayersSize    int64          `json:"layersSize"` // compressed, base layers included
	AddedCACerts  bool           `json:"addedCACerts"`
	AddedZoneinfo bool           `json:"addedZoneinfo"`
	User          string         `json:"user"`
	Entrypoint    []string       `json:"entrypoint"`
	Binaries      []BinaryResult `json:"binaries"`
	SBOM          Descriptor     `json:"sbom"` // the referrer manifest
	Modules       int            `json:"modules"`
}

// BinaryResult reports one compiled program.
type BinaryResult struct {
	Name    string `json:"name"`
	Package string `json:"package"`
	Path    string `json:"path"`
	Size    int64  `json:"size"`
}

// OutputResult reports one written output.
type OutputResult struct {
	Output
	Size           int64  `json:"size"`                     // bytes of the tar, or of the blobs added to a layout
	DockerPlatform string `json:"dockerPlatform,omitempty"` // the image docker load reads from a tar
}

// plan is everything Build parsed before doing any work.
type plan struct {
	tag     Tag
	plats   []Platform
	base    Base
	outs    []Output
	push    *name.Repository
	user    string
	workdir string
	docker  Platform
}

func parse(opt *Options) (*plan, error) {
	var p plan
	var err error
	if opt.Tag == "" {
		return nil, fmt.Errorf("no --tag NAME:VERSION given")
	}
	if p.tag, err = ParseTag(opt.Tag); err != nil {
		return nil, err
	}
	plats := opt.Platforms
	if len(plats) == 0 {
		plats = []string{"linux/" + runtime.GOARCH}
	}
	if p.plats, err = ParsePlatforms(plats); err != nil {
		return nil, err
	}
	if p.base, err = ParseBase(opt.Base); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range opt.Outputs {
		o, err := ParseOutput(s)
		if err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(o.Path)
		if err != nil {
			return nil, err
		}
		if seen[abs] {
			return nil, fmt.Errorf("output %s given twice", s)
		}
		seen[abs] = true
		p.outs = append(p.outs, o)
	}
	if opt.Push != "" {
		var nopts []name.Option
		if opt.PlainHTTP {
			nopts = append(nopts, name.Insecure)
		}
		repo, err := name.NewRepository(opt.Push, nopts...)
		if err != nil {
			return nil, fmt.Errorf("--push %q: want REGISTRY/REPOSITORY (the tag comes from --tag): %v", opt.Push, err)
		}
		p.push = &repo
	}
	if len(p.outs) == 0 && p.push == nil {
		return nil, fmt.Errorf("nowhere to put the image: give -o oci:DIR, -o tar:FILE or --push REGISTRY/REPO")
	}
	p.user = normalizeUser(opt.User)
	if opt.User == "" {
		p.user = DefaultUser
	}
	if isRootUser(p.user) && !opt.AllowRoot {
		return nil, fmt.Errorf("user %q is root: images run as a non-root user; pass --allow-root to build it anyway", p.user)
	}
	p.workdir = opt.Workdir
	if p.workdir == "" {
		p.workdir = "/"
	}
	if !path.IsAbs(p.workdir) {
		return nil, fmt.Errorf("workdir %q: must be an absolute path", p.workdir)
	}
	p.workdir = path.Clean(p.workdir)
	p.docker = p.plats[0]
	if opt.DockerPlatform != "" {
		dp, err := ParsePlatform(opt.DockerPlatform)
		if err != nil {
			return nil, err
		}
		found := false
		for _, q := range p.plats {
			found = found || q == dp
		}
		if !found {
			return nil, fmt.Errorf("docker platform %s is not one of the platforms built", dp)
		}
		p.docker = dp
	} else {
		for _, q := range p.plats {
			if q.Arch == runtime.GOARCH && runtime.GOOS == "linux" {
				p.docker = q
				break
			}
		}
	}
	return &p, nil
}

// built is the assembled result before it is written.
type built struct {
	index     v1.ImageIndex
	indexDesc v1.Descriptor // with ref.name annotations, for index.json
	images    []v1.Image    // per platform
	referrers []v1.Image    // SBOM artifacts
	docker    v1.Image      // the image for docker-save manifest.json
	tag       Tag
}

// Build compiles the main packages for every platform, assembles the
// images and the index, and writes or pushes them.
func Build(ctx context.Context, opt Options) (*Result, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Phase == nil {
		opt.Phase = func(string, int64) {}
	}
	if opt.Bytes == nil {
		opt.Bytes = func(int64) {}
	}
	if opt.Created.IsZero() {
		opt.Created = time.Unix(0, 0)
	}
	opt.Created = opt.Created.UTC()
	pl, err := parse(&opt)
	if err != nil {
		return nil, err
	}
	if opt.Go == "" {
		if opt.Go, err = gocmd.Find(); err != nil {
			return nil, err
		}
	}
	if opt.Env == nil {
		opt.Env = os.Environ()
	}
	if opt.Dir == "" {
		if opt.Dir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	runner := &gocmd.Runner{Go: opt.Go, Env: opt.Env}

	known, err := knownPlatforms(ctx, runner, opt.Dir)
	if err != nil {
		return nil, err
	}
	for _, p := range pl.plats {
		if !known[p.OS+"/"+p.Arch] {
			return nil, fmt.Errorf("platform %s: unknown platform for the go command in use (%s)", p, opt.Go)
		}
	}
	genv, err := runner.GoEnv(ctx, opt.Dir, nil, "GOROOT", "GOVERSION")
	if err != nil {
		return nil, fmt.Errorf("asking the go command for GOROOT: %w", err)
	}

	tmp, err := os.MkdirTemp(opt.TempDir, "ferry-image-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	if !pl.base.Scratch {
		opt.Phase("base "+pl.base.String(), 0)
	}
	bases, err := resolveBase(ctx, pl.base, pl.plats, opt.PlainHTTP, filepath.Join(tmp, "base-cache"))
	if err != nil {
		return nil, err
	}
	pkgs, err := listMains(ctx, runner, opt.Dir, opt.Packages, pl.plats[0])
	if err != nil {
		return nil, err
	}

	bins := make([][]*binary, len(pl.plats))
	for i, p := range pl.plats {
		for _, pkg := range pkgs {
			opt.Phase(fmt.Sprintf("compile %s %s", pkg.Name, p), 0)
			opt.Log.Info("compiling", "package", pkg.ImportPath, "platform", p.String())
			b, err := compile(ctx, runner, opt.Dir, tmp, pkg, p)
			if err != nil {
				return nil, err
			}
			opt.Bytes(int64(len(b.Data)))
			bins[i] = append(bins[i], b)
		}
	}

	anns := map[string]string{AnnVersion: pl.tag.Version, AnnCreated: opt.Created.Format(time.RFC3339)}
	main0 := bins[0][0].Info
	if rev := firstNonEmpty(opt.Revision, setting(main0, "vcs.revision")); rev != "" {
		anns[AnnRevision] = rev
	}
	if src := firstNonEmpty(opt.Source, moduleSource(main0.Main.Path)); src != "" {
		anns[AnnSource] = src
	}

	opt.Phase("assemble", 0)
	host := &hostFiles{caFile: opt.CACertFile, env: opt.Env, goroot: genv["GOROOT"]}
	b := &built{tag: pl.tag}
	res := &Result{Tag: pl.tag.String(), Version: pl.tag.Version, Base: pl.base.String(), Annotations: anns}
	var adds []mutate.IndexAddendum
	for i, p := range pl.plats {
		img, ir, err := assemble(pl, p, bases[i], bins[i], anns, host, opt.Created)
		if err != nil {
			return nil, fmt.Errorf("assembling the image for %s: %w", p, err)
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		sbom, err := makeSBOM(pl.tag.String(), p, bins[i], opt.Created)
		if err != nil {
			return nil, fmt.Errorf("writing the SBOM for %s: %w", p, err)
		}
		ref, err := referrer(*desc, SBOMMediaType, sbom, "sbom.spdx.json", map[string]string{AnnCreated: anns[AnnCreated]})
		if err != nil {
			return nil, fmt.Errorf("attaching the SBOM for %s: %w", p, err)
		}
		rd, err := partial.Descriptor(ref)
		if err != nil {
			return nil, err
		}
		mods, _ := SBOMModules(sbom)
		ir.SBOM = Descriptor{string(rd.MediaType), rd.Digest.String(), rd.Size}
		ir.Modules = len(mods)
		b.images = append(b.images, img)
		b.referrers = append(b.referrers, ref)
		if p == pl.docker {
			b.docker = img
		}
		res.Images = append(res.Images, *ir)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p.oci()}})
	}
	b.index = mutate.Annotations(mutate.AppendManifests(empty.Index, adds...), anns).(v1.ImageIndex)
	idesc, err := partial.Descriptor(b.index)
	if err != nil {
		return nil, fmt.Errorf("computing the image index: %w", err)
	}
	res.Index = Descriptor{string(idesc.MediaType), idesc.Digest.String(), idesc.Size}
	b.indexDesc = v1.Descriptor{
		MediaType: idesc.MediaType, Digest: idesc.Digest, Size: idesc.Size,
		Annotations: map[string]string{AnnRefName: pl.tag.String(), annImageName: pl.tag.String()},
	}

	for _, o := range pl.outs {
		or, err := writeOutput(ctx, o, b, pl.docker, opt)
		if err != nil {
			return nil, err
		}
		res.Outputs = append(res.Outputs, *or)
	}
	if pl.push != nil {
		pushed, err := push(ctx, *pl.push, b, opt)
		if err != nil {
			return nil, err
		}
		res.Pushed = pushed
	}
	return res, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// moduleSource guesses a source URL from a module path whose first element
// is a host name (example.com/team/svc -> https://example.com/team/svc),
// without a major-version suffix.
func moduleSource(modPath string) string {
	first, _, _ := strings.Cut(modPath, "/")
	if !strings.Contains(first, ".") || strings.ContainsAny(modPath, " \t\n") {
		return ""
	}
	if majorSuffix.MatchString(path.Base(modPath)) && path.Dir(modPath) != "." {
		modPath = path.Dir(modPath)
	}
	return "https://" + modPath
}

// hostFiles reads the files copied from the host, once.
type hostFiles struct {
	caFile string
	env    []string
	goroot string
	ca, zi []byte
}

func (h *hostFiles) caCerts() ([]byte, error) {
	if h.ca != nil {
		return h.ca, nil
	}
	p := h.caFile
	if p == "" {
		for _, e := range h.env {
			if v, ok := strings.CutPrefix(e, "SSL_CERT_FILE="); ok {
				p = v
			}
		}
	}
	if p == "" {
		p = hostCACerts
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the host's CA certificates (set SSL_CERT_FILE): %w", err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("the host's CA certificates %s hold no PEM certificate (set SSL_CERT_FILE)", p)
	}
	h.ca = data
	return data, nil
}

func (h *hostFiles) zoneinfo() ([]byte, error) {
	if h.zi != nil {
		return h.zi, nil
	}
	p := filepath.Join(h.goroot, "lib", "time", "zoneinfo.zip")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the go command's time-zone data: %w", err)
	}
	h.zi = data
	return data, nil
}

// assemble builds the image for one platform.
func assemble(pl *plan, p Platform, base baseImage, bins []*binary, anns map[string]string, host *hostFiles, created time.Time) (v1.Image, *ImageResult, error) {
	ir := &ImageResult{Platform: p.String(), User: pl.user}
	hasCerts, hasZone, err := baseHas(base.img)
	if err != nil {
		return nil, nil, err
	}
	hist := func(what string) v1.History {
		return v1.History{Created: v1.Time{Time: created}, CreatedBy: "ferry image build: " + what, Comment: "ferry"}
	}
	var adds []mutate.Addendum
	var rt []file
	if !hasCerts {
		ca, err := host.caCerts()
		if err != nil {
			return nil, nil, err
		}
		rt = append(rt, file{CACertPath, 0o644, ca})
		ir.AddedCACerts = true
	}
	if !hasZone {
		zi, err := host.zoneinfo()
		if err != nil {
			return nil, nil, err
		}
		rt = append(rt, file{ZoneinfoPath, 0o644, zi})
		ir.AddedZoneinfo = true
	}
	if len(rt) > 0 {
		l, err := buildLayer(rt, created)
		if err != nil {
			return nil, nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: hist("CA certificates and time-zone data")})
	}
	var files []file
	var names []string
	for _, b := range bins {
		files = append(files, file{BinDir + "/" + b.Name, 0o755, b.Data})
		names = append(names, b.Name)
		ir.Binaries = append(ir.Binaries, BinaryResult{Name: b.Name, Package: b.ImportPath, Path: BinDir + "/" + b.Name, Size: int64(len(b.Data))})
	}
	l, err := buildLayer(files, created)
	if err != nil {
		return nil, nil, err
	}
	adds = append(adds, mutate.Addendum{Layer: l, History: hist(strings.Join(names, " "))})
	img, err := mutate.Append(base.img, adds...)
	if err != nil {
		return nil, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Arch, p.Variant
	cf.Config.Entrypoint = []string{BinDir + "/" + bins[0].Name}
	cf.Config.Cmd = nil
	cf.Config.User = pl.user
	cf.Config.WorkingDir = pl.workdir
	cf.Config.Env = setEnv(cf.Config.Env, ir.AddedZoneinfo)
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range anns {
		cf.Config.Labels[k] = v
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, nil, err
	}
	manns := map[string]string{}
	for k, v := range anns {
		manns[k] = v
	}
	if base.digest != "" {
		manns[AnnBaseName] = base.name
		manns[AnnBaseDigest] = base.digest
	}
	img = mutate.Annotations(img, manns).(v1.Image)

	m, err := img.Manifest()
	if err != nil {
		return nil, nil, err
	}
	for _, l := range m.Layers {
		ir.LayersSize += l.Size
	}
	ir.Layers = len(m.Layers)
	ir.Config = m.Config.Digest.String()
	ir.Entrypoint = cf.Config.Entrypoint
	d, err := img.Digest()
	if err != nil {
		return nil, nil, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, nil, err
	}
	ir.Digest, ir.Size = d.String(), int64(len(raw))
	return img, ir, nil
}

// setEnv adds PATH when the base has none, and ZONEINFO when ferry added
// the time-zone data.
func setEnv(env []string, zoneinfo bool) []string {
	out := append([]string(nil), env...)
	hasPath := false
	for i, e := range out {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
		if zoneinfo && strings.HasPrefix(e, "ZONEINFO=") {
			out[i] = "ZONEINFO=" + ZoneinfoPath
			zoneinfo = false
		}
	}
	if !hasPath {
		out = append(out, defaultPATH)
	}
	if zoneinfo {
		out = append(out, "ZONEINFO="+ZoneinfoPath)
	}
	return out
}
