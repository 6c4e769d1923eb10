package serve

// The OCI distribution API, pull side only: the images carried in the
// bundles of the store (pack --image) answer /v2/... so that docker pull,
// podman pull, skopeo, crane and containerd read them from ferry serve.
//
// Invariants:
//   - Read-only: GET and HEAD only; every other method under /v2 is 405
//     UNSUPPORTED. Nothing is written, nothing is fetched upstream.
//   - Every answer is a blob of the store found in maps built with the
//     index (repository -> tag -> manifest, digest -> blob), or JSON made
//     from them; a request path is matched against the distribution
//     grammar (name, tag, sha256 digest) and never becomes a file path.
//   - A repository is an image reference carried (KindImage item) without
//     its registry host and tag: "registry.internal/team/app:1.0" is
//     team/app, tag 1.0. A tag imported again with another digest answers
//     the newest import's; blobs (KindOCI items) are content-addressed, so
//     any copy is the same bytes.
//   - Blobs are not scoped per repository: any blob of the store is served
//     under any repository the store carries (the server's access control
//     is store-wide anyway).
//   - Referrers (GET /v2/NAME/referrers/DIGEST) are the referrer items of
//     the bundles (images/@DIGEST, e.g. SBOMs) whose manifest's subject is
//     DIGEST: an OCI image index, empty when there are none.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
)

// Media types of the OCI distribution API answers.
const (
	mtOCIIndex          = "application/vnd.oci.image.index.v1+json"
	mtOCIManifest       = "application/vnd.oci.image.manifest.v1+json"
	mtDockerManifest    = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList        = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOctetStream       = "application/octet-stream"
	maxOCIManifest      = 4 << 20 // largest manifest read (referrers, media type sniffing)
	maxOCIName          = 255     // longest repository name
	ociAPIVersionHeader = "Docker-Distribution-API-Version"
)

var (
	// repository name components and tags, from the distribution spec.
	ociNameRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	ociTagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	ociDigestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	// a registry host[:port], as the distribution reference grammar has it.
	ociHostRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
)

// isManifestType reports whether mt is a manifest or index media type.
func isManifestType(mt string) bool {
	switch mt {
	case mtOCIIndex, mtOCIManifest, mtDockerManifest, mtDockerList:
		return true
	}
	return false
}

// ociIndex is what the OCI distribution API answers from: built with the
// index, immutable afterwards.
type ociIndex struct {
	repos     map[string]map[string]*target // repository -> tag -> manifest or index
	names     []string                      // repository names, sorted
	blobs     map[string]*target            // digest -> blob (manifests, configs, layers)
	referrers map[string][]ociDescriptor    // subject digest -> referrers, by digest
	pending   []*target                     // referrer manifests, read by finish
}

// ociDescriptor is a descriptor in a referrers index.
type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func newOCIIndex() *ociIndex {
	return &ociIndex{repos: map[string]map[string]*target{}, blobs: map[string]*target{}, referrers: map[string][]ociDescriptor{}}
}

// add records item it of bundle bd: image blobs by digest, image references
// by repository and tag (a later call wins), referrers for finish.
func (o *ociIndex) add(bd string, it bundle.Item, log *slog.Logger) {
	switch it.Kind {
	case bundle.KindOCI:
		if !ociDigestRE.MatchString(it.Digest) {
			return
		}
		if _, ok := o.blobs[it.Digest]; !ok {
			o.blobs[it.Digest] = &target{bundle: bd, digest: it.Digest, size: it.Size, kind: "oci-blob", mediaType: it.MediaType, immutable: true}
		}
	case bundle.KindImage:
		if !ociDigestRE.MatchString(it.Digest) {
			return
		}
		t := &target{bundle: bd, digest: it.Digest, size: it.Size, kind: "oci-manifest", mediaType: it.MediaType}
		if it.Module == "" {
			if strings.HasPrefix(it.File, "images/@") {
				o.pending = append(o.pending, t)
			}
			return
		}
		repo, tag, ok := splitImageRef(it.Module)
		if !ok {
			log.Warn("image reference not served by the OCI API: not a valid name", "ref", it.Module, "bundle", bd)
			return
		}
		tags := o.repos[repo]
		if tags == nil {
			tags = map[string]*target{}
			o.repos[repo] = tags
		}
		if tag != "" {
			tags[tag] = t
		}
	}
}

// finish completes the tables once every item is added: media types of
// tagged manifests that lack one, referrers by subject, sorted names.
func (o *ociIndex) finish(ctx context.Context, st store.Store, log *slog.Logger) {
	for repo, tags := range o.repos {
		o.names = append(o.names, repo)
		for tag, t := range tags {
			if t.mediaType == "" {
				if b := o.blobs[t.digest]; b != nil && b.mediaType != "" {
					t.mediaType = b.mediaType
				} else if raw, err := readManifest(ctx, st, t); err == nil {
					t.mediaType = sniffManifestType(raw)
				} else {
					log.Warn("image manifest unreadable; tag not served", "repo", repo, "tag", tag, "err", err)
					delete(tags, tag)
				}
			}
		}
	}
	sort.Strings(o.names)
	seen := map[string]bool{}
	for _, t := range o.pending {
		if seen[t.digest] {
			continue
		}
		seen[t.digest] = true
		raw, err := readManifest(ctx, st, t)
		if err != nil {
			log.Warn("referrer manifest unreadable; not listed", "digest", t.digest, "err", err)
			continue
		}
		var m struct {
			MediaType    string                     `json:"mediaType"`
			ArtifactType string                     `json:"artifactType"`
			Config       struct{ MediaType string } `json:"config"`
			Subject      *struct{ Digest string }   `json:"subject"`
			Annotations  map[string]string          `json:"annotations"`
		}
		if err := json.Unmarshal(raw, &m); err != nil || m.Subject == nil || !ociDigestRE.MatchString(m.Subject.Digest) {
			continue
		}
		d := ociDescriptor{MediaType: t.mediaType, Digest: t.digest, Size: t.size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if d.MediaType == "" {
			d.MediaType = sniffManifestType(raw)
		}
		if d.ArtifactType == "" {
			d.ArtifactType = m.Config.MediaType
		}
		o.referrers[m.Subject.Digest] = append(o.referrers[m.Subject.Digest], d)
	}
	for _, ds := range o.referrers {
		sort.Slice(ds, func(i, j int) bool { return ds[i].Digest < ds[j].Digest })
	}
	o.pending = nil
}

// readManifest reads the (small) blob of t.
func readManifest(ctx context.Context, st store.Store, t *target) ([]byte, error) {
	if t.size > maxOCIManifest {
		return nil, errTooLarge(t.size)
	}
	b, err := st.Blob(ctx, t.bundle, t.digest)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
}

type errTooLarge int64

func (e errTooLarge) Error() string {
	return strconv.FormatInt(int64(e), 10) + " bytes is too large for a manifest"
}

// sniffManifestType returns the media type a manifest declares, else what
// its fields make it: an OCI index (manifests) or an OCI image manifest.
func sniffManifestType(raw []byte) string {
	var m struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) == nil && m.MediaType != "" {
		return m.MediaType
	}
	if m.Manifests != nil {
		return mtOCIIndex
	}
	return mtOCIManifest
}

// splitImageRef splits an image reference into its repository (without the
// registry host) and its tag ("" for a reference by digest alone).
func splitImageRef(ref string) (repo, tag string, ok bool) {
	rest, _, _ := strings.Cut(ref, "@")
	tagged := false
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		rest, tag, tagged = rest[:i], rest[i+1:], true
	}
	if first, after, found := strings.Cut(rest, "/"); found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if !ociHostRE.MatchString(first) {
			return "", "", false
		}
		rest = after
	}
	if len(rest) > maxOCIName || !ociNameRE.MatchString(rest) || (tagged && !ociTagRE.MatchString(tag)) {
		return "", "", false
	}
	return rest, tag, true
}

// ociError writes an error answer of the distribution API.
func ociError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	for _, k := range []string{"ETag", "Cache-Control", "Accept-Ranges", "Content-Length", "Docker-Content-Digest"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// ociRequest is a parsed request path under /v2/.
type ociRequest struct {
	op   string // "base", "catalog", "tags", "manifests", "blobs", "referrers"
	name string
	arg  string // tag or digest
}

// parseOCIPath parses the path after "/v2/". ok is false for a path that
// is no endpoint of the API.
func parseOCIPath(p string) (req ociRequest, ok bool) {
	switch p {
	case "":
		return ociRequest{op: "base"}, true
	case "_catalog":
		return ociRequest{op: "catalog"}, true
	}
	if name, found := strings.CutSuffix(p, "/tags/list"); found {
		return ociRequest{op: "tags", name: name}, true
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return req, false
	}
	rest, arg := p[:i], p[i+1:]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return req, false
	}
	name, op := rest[:j], rest[j+1:]
	switch op {
	case "manifests", "blobs", "referrers":
		return ociRequest{op: op, name: name, arg: arg}, true
	}
	return req, false
}

// serveOCI answers a request under /v2 (the OCI distribution API, pull only).
func (s *Server) serveOCI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(ociAPIVersionHeader, "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		ociError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only: "+r.Method+" is not supported")
		return
	}
	raw := r.URL.EscapedPath()
	if len(raw) > maxPath || strings.ContainsAny(raw, "%\\") {
		ociError(w, http.StatusBadRequest, "NAME_INVALID", "bad request: path too long, or escaped characters in it")
		return
	}
	p := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v2"), "/")
	req, ok := parseOCIPath(p)
	if !ok {
		ociError(w, http.StatusNotFound, "UNSUPPORTED", "not an endpoint of the OCI distribution API: "+r.URL.Path)
		return
	}
	if req.op == "base" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "{}")
		return
	}
	if req.name != "" && (len(req.name) > maxOCIName || !ociNameRE.MatchString(req.name)) {
		ociError(w, http.StatusBadRequest, "NAME_INVALID", "invalid repository name: "+req.name)
		return
	}
	ix := s.ix.Load()
	if ix == nil {
		ociError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "not ready: the store has not been read yet")
		return
	}
	o := ix.oci
	if req.op == "catalog" {
		list, next := paginate(o.names, r.URL.Query())
		if next != "" {
			setNextLink(w, "/v2/_catalog", r.URL.Query(), next)
		}
		writeOCIJSON(w, map[string]any{"repositories": list})
		return
	}
	tags, known := o.repos[req.name]
	if !known {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository "+req.name+" is not in the store")
		return
	}
	switch req.op {
	case "tags":
		all := make([]string, 0, len(tags))
		for tag := range tags {
			all = append(all, tag)
		}
		sort.Strings(all)
		list, next := paginate(all, r.URL.Query())
		if next != "" {
			setNextLink(w, "/v2/"+req.name+"/tags/list", r.URL.Query(), next)
		}
		writeOCIJSON(w, map[string]any{"name": req.name, "tags": list})
	case "manifests":
		var t *target
		switch {
		case ociDigestRE.MatchString(req.arg):
			if b := o.blobs[req.arg]; b != nil && isManifestType(b.mediaType) {
				t = b
			}
		case strings.HasPrefix(req.arg, "sha256:") || strings.Contains(req.arg, ":"):
			ociError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest: "+req.arg)
			return
		case ociTagRE.MatchString(req.arg):
			t = tags[req.arg]
		}
		if t == nil {
			ociError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown: "+req.name+":"+req.arg)
			return
		}
		w.Header().Set("Docker-Content-Digest", t.digest)
		s.serveTarget(w, r, "v2/"+req.name+"/manifests/"+req.arg, t)
	case "blobs":
		if !ociDigestRE.MatchString(req.arg) {
			ociError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest: "+req.arg)
			return
		}
		b := o.blobs[req.arg]
		if b == nil {
			ociError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown: "+req.arg)
			return
		}
		t := *b
		t.mediaType = mtOctetStream
		w.Header().Set("Docker-Content-Digest", t.digest)
		s.serveTarget(w, r, "v2/"+req.name+"/blobs/"+req.arg, &t)
	case "referrers":
		if !ociDigestRE.MatchString(req.arg) {
			ociError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest: "+req.arg)
			return
		}
		list := o.referrers[req.arg]
		if at := r.URL.Query().Get("artifactType"); at != "" {
			var kept []ociDescriptor
			for _, d := range list {
				if d.ArtifactType == at {
					kept = append(kept, d)
				}
			}
			list = kept
			w.Header().Set("OCI-Filters-Applied", "artifactType")
		}
		if list == nil {
			list = []ociDescriptor{}
		}
		data, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": list})
		t := generated("oci-referrers", data)
		t.mediaType = mtOCIIndex
		s.serveTarget(w, r, "v2/"+req.name+"/referrers/"+req.arg, t)
	}
}

// paginate applies the n and last parameters of tags/list and _catalog to
// the sorted list all; next is the last entry returned when more follow.
func paginate(all []string, q url.Values) (list []string, next string) {
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	list = all
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err == nil && n >= 0 && n < len(all) {
			list = all[:n]
			if n > 0 {
				next = list[n-1]
			}
		}
	}
	if list == nil {
		list = []string{}
	}
	return list, next
}

// setNextLink sets the Link header to the next page.
func setNextLink(w http.ResponseWriter, path string, q url.Values, last string) {
	v := url.Values{"n": {q.Get("n")}, "last": {last}}
	w.Header().Set("Link", "<"+path+"?"+v.Encode()+`>; rel="next"`)
}

func writeOCIJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(v)
}
