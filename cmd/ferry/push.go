package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/progress"
	"github.com/ferry-dev/ferry/internal/push"
)

func (a *app) pushCmd() *cobra.Command {
	var (
		opt       push.Options
		platforms []string
	)
	cmd := &cobra.Command{
		Use:   "push SOURCE REGISTRY[/PREFIX]",
		Short: "Push images into a registry, sending only the blobs it lacks",
		Long: `Push copies every named image of SOURCE into a registry: image manifests,
multi-platform image indexes and their referrers (SBOMs, signatures).

SOURCE is oci:DIR, an OCI image layout directory (an install's images are in
oci:PREFIX/mod/oci), whose images are named by the
org.opencontainers.image.ref.name annotations of index.json (a bare tag
names an image after the directory); or a bundle file, whose images (packed
with 'ferry pack --image') are pushed straight from it. Image NAME:TAG goes to
REGISTRY/PREFIX/NAME:TAG; a registry host in NAME is dropped.

Each blob is checked with HEAD first and counted as present if the registry
has it; a blob another repository holds is mounted from there; the rest is
uploaded. Manifests follow their blobs, and the tag is set last, so a push
that is interrupted can simply be run again: it sends only what is still
missing. Failures that may pass (5xx, timeouts, cut connections) are retried
with backoff.

Credentials come from docker's config.json (docker login). Without
--plain-http every request goes over https.`,
		Example: `  ferry push oci:./images registry.internal:5000/mirror
  ferry push oci:./images localhost:5000 --plain-http --platform linux/amd64
  ferry push oci:./images registry.internal/team --jobs 8 --json
  ferry push app.ferry registry.internal/mirror`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, closeSrc, err := openPushSource(ctx, args[0])
			if err != nil {
				return err
			}
			defer closeSrc()
			opt.Platforms = splitList(platforms)
			opt.Log = a.logger()
			if d, err := os.UserCacheDir(); err == nil {
				opt.StateDir = filepath.Join(d, "ferry", "push")
			}
			ui := a.newPushProgress()
			opt.Progress = ui
			start := time.Now()
			rep, err := push.Push(ctx, src, args[1], opt)
			ui.p.Wait()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rep)
			}
			for _, img := range rep.Images {
				fmt.Fprintf(a.stdout, "%s@%s\n  %s\n", img.Ref, img.Digest, pushSummary(img.Counts))
			}
			fmt.Fprintf(a.stdout, "total: %s, in %s\n", pushSummary(rep.Total), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opt.Jobs, "jobs", 4, "how many blobs and manifests to transfer at once")
	f.BoolVar(&opt.PlainHTTP, "plain-http", false, "allow the registry to be reached over plain HTTP")
	f.StringSliceVar(&platforms, "platform", nil, "push only these platforms of multi-platform images, os/arch[/variant], comma-separated (default: all)")
	cmd.RegisterFlagCompletionFunc("platform", completePlatforms)
	return cmd
}

// openPushSource opens what 'ferry push' pushes from: an OCI layout, or
// the images a bundle carries. The caller calls the returned close.
func openPushSource(_ context.Context, arg string) (push.Source, func(), error) {
	if dir, ok := strings.CutPrefix(arg, "oci:"); ok && dir != "" {
		src, err := push.OpenLayout(dir)
		return src, func() {}, err
	}
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		return bundleImages(arg)
	}
	return nil, nil, fmt.Errorf("source %q: give oci:DIR (an OCI image layout directory) or a bundle file", arg)
}

// pushSummary says in one line what was sent and what was already there.
func pushSummary(c push.Counts) string {
	s := fmt.Sprintf("sent %s (%d blobs uploaded), mounted %s (%d), present %s (%d); manifests: %d pushed, %d present",
		progress.HumanBytes(c.BytesSent), c.BlobsUploaded, progress.HumanBytes(c.BytesMounted), c.BlobsMounted,
		progress.HumanBytes(c.BytesPresent), c.BlobsPresent, c.ManifestsPushed, c.ManifestsPresent)
	if c.Retries > 0 {
		s += fmt.Sprintf("; %d retries", c.Retries)
	}
	return s
}

// pushProgress draws a bar per image and one for the total, each noting
// what was sent and what was already present.
type pushProgress struct {
	p             *progress.Progress
	total         *progress.Bar
	totalBytes    atomic.Int64
	present, sent atomic.Int64
}

func (a *app) newPushProgress() *pushProgress {
	enabled := !a.quiet && progress.Enabled(a.stderr, a.json)
	u := &pushProgress{p: progress.New(a.stderr, enabled)}
	u.total = u.p.BarNote("total", 0, func() string { return noteSentPresent(u.sent.Load(), u.present.Load()) })
	return u
}

func noteSentPresent(sent, present int64) string {
	return "sent " + progress.HumanBytes(sent) + ", present " + progress.HumanBytes(present)
}

func (u *pushProgress) Image(ref string, blobBytes int64) push.ImageProgress {
	u.total.SetTotal(u.totalBytes.Add(blobBytes))
	ip := &imagePushProgress{u: u}
	ip.bar = u.p.BarNote(ref, blobBytes, func() string { return noteSentPresent(ip.sent.Load(), ip.present.Load()) })
	return ip
}

type imagePushProgress struct {
	u             *pushProgress
	bar           *progress.Bar
	present, sent atomic.Int64
}

func (ip *imagePushProgress) Present(n int64) {
	ip.present.Add(n)
	ip.u.present.Add(n)
	ip.bar.Add(n)
	ip.u.total.Add(n)
}

func (ip *imagePushProgress) Sent(n int64) {
	ip.sent.Add(n)
	ip.u.sent.Add(n)
	ip.bar.Add(n)
	ip.u.total.Add(n)
}

func (ip *imagePushProgress) Done() { ip.bar.Done() }
