package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/image"
)

func (a *app) imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build container images of Go programs, offline and without a Docker daemon",
	}
	cmd.AddCommand(a.imageBuildCmd())
	return cmd
}

func (a *app) imageBuildCmd() *cobra.Command {
	var (
		opt       image.Options
		platforms []string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "build [PKG ...] --tag NAME:VERSION (-o oci:DIR | -o tar:FILE | --push REGISTRY/REPO)",
		Short: "Compile Go main packages into a multi-platform OCI image",
		Long: `Build compiles each main package (default ".") with the go command on PATH
(after 'ferry install', the installed toolchain and module store, so it
works with no network) for every --platform, with CGO_ENABLED=0 -trimpath,
and assembles one image per platform and an OCI image index over them.
No Docker daemon is used.

Each image is the base (scratch by default) plus the binaries in
/usr/local/bin (the first is the entrypoint) and, when the base lacks them,
the host's CA certificates and the go command's time-zone data. It runs as
65532:65532 unless --user says otherwise; a root user needs --allow-root.
Annotations org.opencontainers.image.{version,revision,source,created} come
from --tag, --revision/--source (else the main module's build info) and
SOURCE_DATE_EPOCH (default 0). An SPDX SBOM of the Go modules compiled in is
attached to every platform image as an OCI referrer.

The same sources, toolchain, flags and SOURCE_DATE_EPOCH give the same
digests. Outputs: an OCI layout directory (index.json names the index with
ref.name = --tag), a tar that 'docker load' reads (an OCI layout plus
docker-save's manifest.json for the host platform's image), or a registry.`,
		Example: `  ferry image build ./cmd/api --tag api:1.4.0 --platform linux/amd64,linux/arm64 -o oci:api-image
  ferry image build --tag api:1.4.0 -o tar:api.tar && docker load -i api.tar
  ferry image build ./cmd/api --tag api:1.4.0 --base oci:distroless --push registry.internal/team/api
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) ferry image build ./cmd/api --tag api:1.4.0 -o oci:out --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Packages = args
			opt.Platforms = splitList(platforms)
			if output != "" {
				opt.Outputs = []string{output}
			}
			if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
				sec, err := strconv.ParseInt(e, 10, 64)
				if err != nil {
					return fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", e)
				}
				opt.Created = time.Unix(sec, 0)
			}
			opt.Log = a.logger()
			prog := a.newProgress()
			opt.Phase, opt.Bytes = prog.phase, prog.add
			res, err := image.Build(cmd.Context(), opt)
			prog.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "built %s: index %s (%d platforms)\n", res.Tag, res.Index.Digest, len(res.Images))
			for _, im := range res.Images {
				var added []string
				if im.AddedCACerts {
					added = append(added, "CA certificates")
				}
				if im.AddedZoneinfo {
					added = append(added, "zoneinfo")
				}
				extra := ""
				if len(added) > 0 {
					extra = ", added " + strings.Join(added, " and ")
				}
				fmt.Fprintf(a.stdout, "  %-14s %s  %d layers, %s, user %s, SBOM %d modules%s\n",
					im.Platform, im.Digest, im.Layers, human(im.LayersSize), im.User, im.Modules, extra)
			}
			for _, o := range res.Outputs {
				switch o.Kind {
				case image.OutputTar:
					fmt.Fprintf(a.stdout, "wrote %s (%s; docker load gets %s)\n", o.Output, human(o.Size), o.DockerPlatform)
				default:
					fmt.Fprintf(a.stdout, "wrote %s (%s of new blobs)\n", o.Output, human(o.Size))
				}
			}
			if res.Pushed != "" {
				fmt.Fprintf(a.stdout, "pushed %s\n", res.Pushed)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opt.Tag, "tag", "t", "", "image name and version, NAME:VERSION (required)")
	f.StringSliceVar(&platforms, "platform", nil, "linux/ARCH[/VARIANT] platforms, comma-separated (default: linux/<host arch>)")
	f.StringVar(&opt.Base, "base", "scratch", "base image: scratch, oci:DIR[:REF] (an OCI layout) or a registry reference")
	f.StringVarP(&output, "output", "o", "", "write to oci:DIR (OCI layout) or tar:FILE (docker load)")
	f.StringVar(&opt.Push, "push", "", "push to REGISTRY/REPO as REPO:VERSION (credentials from docker's config.json)")
	f.BoolVar(&opt.AllowRoot, "allow-root", false, "allow a user that is root")
	f.StringVar(&opt.User, "user", image.DefaultUser, "user the image runs as, UID[:GID] or a name the base knows")
	f.StringVar(&opt.Workdir, "workdir", "/", "working directory")
	f.BoolVar(&opt.PlainHTTP, "plain-http", false, "talk plain HTTP to the base and push registries")
	f.StringVar(&opt.Revision, "revision", "", "source revision annotation (default: vcs.revision from the build info)")
	f.StringVar(&opt.Source, "source", "", "source URL annotation (default: https://MODULE-PATH when it names a host)")
	f.StringVar(&opt.DockerPlatform, "docker-platform", "", "platform whose image a tar output's docker manifest names (default: host, else the first)")
	cmd.MarkFlagRequired("tag")
	cmd.RegisterFlagCompletionFunc("platform", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x", "linux/riscv64"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}
