// Package image builds minimal OCI container images of Go programs with no
// Docker daemon and no network: it compiles main packages with the go
// command found on PATH (after `ferry install`, the installed toolchain,
// whose GOPROXY points at the installed module store), and assembles one
// image per linux platform and an OCI image index over them with
// go-containerregistry.
//
// Image layout (scratch base):
//
//	/usr/local/bin/NAME                    every binary; entrypoint = the first package's
//	/etc/ssl/certs/ca-certificates.crt     the host's CA bundle (SSL_CERT_FILE or that path)
//	/usr/local/share/go/zoneinfo.zip       GOROOT/lib/time/zoneinfo.zip; ZONEINFO points at it
//
// Certificates and zoneinfo form one layer, the binaries another, so a
// changed program changes only the binary layer (and the manifests). Neither
// file is added when the base image already has a CA bundle (at one of the
// paths crypto/x509 reads on linux, or SSL_CERT_FILE set in its config) or
// time-zone data (/usr/share/zoneinfo and the other directories package time
// reads, or ZONEINFO set in its config); whiteouts in later base layers count.
//
// Invariants:
//   - Reproducible: the same sources, toolchain, flags and SOURCE_DATE_EPOCH
//     give byte-identical blobs and so identical digests. Binaries are built
//     with CGO_ENABLED=0 -trimpath -ldflags=-buildid=; layer tars have sorted
//     entries, uid/gid 0, fixed modes (0755 directories and binaries, 0644
//     files) and every mtime at Created; gzip headers carry no name and no
//     time; config "created", history and the created annotation are Created;
//     the SBOM has no random identifiers.
//   - GOPROXY, GOSUMDB and the rest of the go command's environment are
//     passed through untouched; only CGO_ENABLED, GOOS, GOARCH, GOARM and
//     GOAMD64 are set, per platform.
//   - Images run as a non-root user (65532:65532 by default). A user that is
//     root (empty, "root", "0", or "0:GROUP") is refused unless AllowRoot.
//   - Every manifest is OCI (image manifest, config, layer and index media
//     types), also on a Docker-typed base: its manifest is rewritten with
//     the equivalent OCI types over the same blobs.
//   - Annotations org.opencontainers.image.{version,revision,source,created}
//     are on every image manifest and on the index; base.name and base.digest
//     name a non-scratch base.
//   - SBOM: one SPDX 2.3 JSON document per platform image, listing the Go
//     modules compiled into its binaries (from debug/buildinfo) and the
//     standard library, attached as an OCI referrer: an artifact manifest
//     (artifactType application/spdx+json, empty config) whose subject is
//     the platform image. It is not a file inside the image. In an OCI layout
//     it is listed in index.json (without a ref.name); on push it goes up by
//     digest and the registry's referrers API (or ggcr's fallback tag) finds
//     it. docker-save's manifest.json has no place for it.
//   - Outputs are never half-written: an OCI layout is staged in a sibling
//     temporary directory and renamed into place, or, when the directory is
//     already a layout, blobs are added by temporary file and rename and
//     index.json is replaced by rename last; a tar is written to a temporary
//     file in the same directory, synced and renamed. On error the
//     temporaries are removed.
//   - A tar output is an OCI layout (the whole index and its referrers) that
//     also carries a docker-save manifest.json for one platform's image (the
//     host's when built, else the first), so `docker load` of engines old and
//     new accepts it and OCI tools (skopeo oci-archive:) read all platforms.
//   - Base images are read, never changed: scratch, an OCI layout directory
//     (oci:DIR, or oci:DIR:REF to choose by ref.name), or a registry
//     reference read with the docker config.json credentials
//     (authn.DefaultKeychain); the platform's manifest is picked from an
//     index.
package image
