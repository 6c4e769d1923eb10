package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// registry speaks the OCI distribution API to one registry through an
// authenticating transport.
type registry struct {
	client *http.Client
	host   string // host[:port]
}

// manifestAccept is every manifest media type push reads back.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ", ")

// url returns the URL of /v2/<repo>/<path>. The scheme is https; the
// transport switches to http when the registry was allowed plain HTTP and
// answers only on it.
func (r *registry) url(repo, path string) string {
	return "https://" + r.host + "/v2/" + repo + "/" + path
}

// statusError is a registry's error answer, in one line.
type statusError struct {
	what   string // what was being done
	status int
	msg    string
}

func (e *statusError) Error() string { return e.what + ": " + e.msg }

// httpStatus returns the HTTP status of a registry error answer, or 0.
func httpStatus(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	return 0
}

// check turns an unexpected response into a statusError. The caller
// closes the body (drain).
func check(resp *http.Response, what string, codes ...int) error {
	err := transport.CheckError(resp, codes...)
	if err == nil {
		return nil
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: reading the registry's answer: %w", what, err)
	}
	msg := fmt.Sprintf("%d %s", te.StatusCode, http.StatusText(te.StatusCode))
	if len(te.Errors) > 0 {
		var ds []string
		for _, d := range te.Errors {
			ds = append(ds, d.String())
		}
		msg += ": " + strings.Join(ds, "; ")
	}
	return &statusError{what: what, status: te.StatusCode, msg: strings.ReplaceAll(msg, "\n", " ")}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func (r *registry) do(ctx context.Context, method, u string, hdr http.Header, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	return r.client.Do(req)
}

// headBlob reports whether repo has the blob d.
func (r *registry) headBlob(ctx context.Context, repo string, d v1.Hash) (bool, error) {
	what := fmt.Sprintf("checking blob %s in %s", short(d), repo)
	resp, err := r.do(ctx, http.MethodHead, r.url(repo, "blobs/"+d.String()), nil, nil, 0)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return resp.StatusCode == http.StatusOK, check(resp, what, http.StatusOK)
}

// startUpload starts an upload session in repo. With from set it first asks
// the registry to mount blob d from repository from: mounted is true if it
// did (201); a registry that refuses answers 202 with an upload session,
// which the upload then uses.
func (r *registry) startUpload(ctx context.Context, repo string, d v1.Hash, from string) (mounted bool, loc *url.URL, err error) {
	u := r.url(repo, "blobs/uploads/")
	what := fmt.Sprintf("starting upload of %s to %s", short(d), repo)
	if from != "" {
		u += "?" + url.Values{"mount": {d.String()}, "from": {from}}.Encode()
		what = fmt.Sprintf("mounting %s from %s into %s", short(d), from, repo)
	}
	resp, err := r.do(ctx, http.MethodPost, u, nil, http.NoBody, 0)
	if err != nil {
		return false, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	if from != "" && resp.StatusCode == http.StatusCreated {
		return true, nil, nil
	}
	if err := check(resp, what, http.StatusAccepted); err != nil {
		return false, nil, err
	}
	loc, err = resp.Location()
	if err != nil {
		return false, nil, fmt.Errorf("%s: the registry gave no upload location: %w", what, err)
	}
	return false, loc, nil
}

var octetStream = http.Header{"Content-Type": {"application/octet-stream"}}

// putBlob completes the upload at loc with body (size bytes, or 0 after
// chunks), naming the digest the registry must verify.
func (r *registry) putBlob(ctx context.Context, loc *url.URL, d v1.Hash, body io.Reader, size int64) error {
	what := fmt.Sprintf("uploading blob %s", short(d))
	u := *loc
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	if body == nil {
		body = http.NoBody
	}
	resp, err := r.do(ctx, http.MethodPut, u.String(), octetStream, body, size)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	return check(resp, what, http.StatusCreated)
}

// patchChunk sends n bytes from offset start to the upload at loc and
// returns the location for the next request.
func (r *registry) patchChunk(ctx context.Context, loc *url.URL, d v1.Hash, start, n int64, body io.Reader) (*url.URL, error) {
	what := fmt.Sprintf("uploading blob %s (bytes %d-%d)", short(d), start, start+n-1)
	hdr := http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", start, start+n-1)},
	}
	resp, err := r.do(ctx, http.MethodPatch, loc.String(), hdr, body, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	if err := check(resp, what, http.StatusAccepted); err != nil {
		return nil, err
	}
	next, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("%s: the registry gave no upload location: %w", what, err)
	}
	return next, nil
}

// uploadStatus asks how many bytes the upload at loc holds.
func (r *registry) uploadStatus(ctx context.Context, loc *url.URL, d v1.Hash) (int64, *url.URL, error) {
	what := fmt.Sprintf("resuming upload of blob %s", short(d))
	resp, err := r.do(ctx, http.MethodGet, loc.String(), nil, nil, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	if err := check(resp, what, http.StatusNoContent); err != nil {
		return 0, nil, err
	}
	next, err := resp.Location()
	if err != nil {
		next = loc
	}
	// Range: 0-<last byte>; "0-0" is ambiguous (0 or 1 byte): take 0, and a
	// wrong guess is refused by the registry (416), which restarts the blob.
	rng := resp.Header.Get("Range")
	_, end, ok := strings.Cut(rng, "-")
	last, err := strconv.ParseInt(end, 10, 64)
	if !ok || err != nil || last < 0 {
		return 0, nil, fmt.Errorf("%s: the registry gave no valid Range (%q)", what, rng)
	}
	if last == 0 {
		return 0, next, nil
	}
	return last + 1, next, nil
}

// headManifest returns the digest of the manifest ref (a tag or digest)
// in repo, or "" if there is none.
func (r *registry) headManifest(ctx context.Context, repo, ref string) (string, error) {
	what := fmt.Sprintf("checking manifest %s:%s", repo, ref)
	resp, err := r.do(ctx, http.MethodHead, r.url(repo, "manifests/"+ref), http.Header{"Accept": {manifestAccept}}, nil, 0)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if err := check(resp, what, http.StatusOK); err != nil {
		return "", err
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}

// getManifest returns the manifest ref in repo, or nil if there is none.
func (r *registry) getManifest(ctx context.Context, repo, ref string) ([]byte, error) {
	what := fmt.Sprintf("reading manifest %s:%s", repo, ref)
	resp, err := r.do(ctx, http.MethodGet, r.url(repo, "manifests/"+ref), http.Header{"Accept": {manifestAccept}}, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err := check(resp, what, http.StatusOK); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) > maxIndexSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", what, maxIndexSize)
	}
	return b, nil
}

// putManifest stores raw (of media type mt) as ref (a tag or its digest)
// in repo. subjectOK reports whether the registry said it processed the
// manifest's subject (OCI-Subject), i.e. it has the referrers API.
func (r *registry) putManifest(ctx context.Context, repo, ref string, mt types.MediaType, raw []byte) (subjectOK bool, err error) {
	what := fmt.Sprintf("pushing manifest %s:%s", repo, ref)
	resp, err := r.do(ctx, http.MethodPut, r.url(repo, "manifests/"+ref), http.Header{"Content-Type": {string(mt)}}, bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	defer drain(resp)
	subjectOK = resp.Header.Get("OCI-Subject") != ""
	return subjectOK, check(resp, what, http.StatusCreated)
}

// short abbreviates a digest for messages.
func short(d v1.Hash) string {
	if len(d.Hex) > 12 {
		return d.Algorithm + ":" + d.Hex[:12]
	}
	return d.String()
}

// sourceError is a failure to read the source while sending it: never retried.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// retryable reports whether err is worth another try: a registry error
// status 5xx, a timeout or a connection reset or cut. A source that cannot
// be read, a refusal (4xx) or a cancelled context is not.
func retryable(err error) bool {
	var se *sourceError
	if errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if s := httpStatus(err); s != 0 {
		return s >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// net/http reports a connection the server cut while it wrote a
	// request body without a typed error. "ContentLength=... with Body
	// length" is a request the token transport re-sent after refreshing an
	// expired token, with its body already read: a new attempt (a new
	// body) carries the new token.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "transport connection broken") || strings.Contains(msg, "server closed") ||
		strings.Contains(msg, "http: ContentLength=")
}

// hasReferrersAPI reports whether the registry answers the referrers API
// (GET /v2/<repo>/referrers/<digest>) for repo.
func (r *registry) hasReferrersAPI(ctx context.Context, repo string, d v1.Hash) bool {
	resp, err := r.do(ctx, http.MethodGet, r.url(repo, "referrers/"+d.String()), http.Header{"Accept": {string(types.OCIImageIndex)}}, nil, 0)
	if err != nil {
		return false
	}
	defer drain(resp)
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), string(types.OCIImageIndex))
}
