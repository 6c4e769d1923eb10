// Package push pushes container images from a Source (an OCI image layout
// directory, or a ferry bundle) into a registry, sending only what the
// registry lacks and saying exactly what was already there and what moved.
//
// An image NAME:TAG of the source goes to REGISTRY/PREFIX/NAME:TAG (a
// registry host in NAME is dropped). Image manifests, image indexes (all
// platforms, or Options.Platforms) and the referrers found in the source
// (SBOMs, signatures: manifests whose subject is a pushed manifest) are
// pushed. The distribution API is driven directly, through
// go-containerregistry's authenticating transport (credentials from
// docker's config.json), so that every blob's fate is known.
//
// Invariants:
//
//   - Order: a manifest is pushed (by digest) only after all its blobs are
//     in the repository, an index only after all its manifests, a referrer
//     after its subject, and the tag is set last, once everything it names
//     is stored. A push killed at any point leaves no tag naming anything
//     incomplete; a rerun checks every blob and manifest with HEAD first and
//     sends only what is still missing.
//   - Per blob: HEAD; if missing, a cross-repository mount (POST
//     ?mount=&from=) when a repository is known to hold it (pushed to in this
//     run or recorded in Options.StateDir by an earlier one); on refusal
//     (202) the session the registry opened is used for a plain upload: one
//     PUT, or PATCH chunks for blobs over Options.ChunkSize. The registry
//     verifies the digest on completion; push also hashes what it reads from
//     the source and aborts the upload if the content does not match.
//   - Each blob is stored once per repository per run, and a blob needed in
//     several repositories is uploaded once and mounted into the others.
//     Within an image every blob is counted exactly once, as present,
//     mounted or uploaded; a blob another image of the same run stored in
//     the same repository counts as present. Totals are the sum of images.
//   - Counts.BytesSent counts every blob byte handed to the network,
//     interrupted and retried attempts included, so it is what the registry
//     received. Manifest bytes are counted apart (ManifestBytesSent).
//   - Retries: only on 5xx answers, timeouts and cut connections, with
//     exponential backoff and jitter; a 4xx answer, a cancelled context or
//     a damaged source fails at once. At most Options.Jobs registry
//     operations run at once; nothing waits while holding a slot.
//   - Without Options.PlainHTTP every request goes over https, loopback
//     included.
//   - Everything read from the source (manifests, configs, blobs) is checked
//     against its digest and size; manifests over 4 MiB are refused.
//   - Mount hints (Options.StateDir) are only hints: a wrong one costs one
//     refused mount, whose upload session is then used. The file is
//     replaced atomically.
//   - A registry without the referrers API (no OCI-Subject answer, no
//     /referrers endpoint) gets the OCI referrers tag schema: an index
//     tagged <alg>-<hex of subject> listing the referrers, updated under a
//     lock so that one push loses none of its own entries.
package push
