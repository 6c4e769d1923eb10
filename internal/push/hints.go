package push

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// maxHintRepos is how many repositories are remembered per blob.
const maxHintRepos = 4

// hints remembers, per registry, which repositories are known to hold
// which blobs, so that a later push to another repository can mount them
// instead of uploading. A hint is only a guess: a registry that lacks the
// blob in the named repository refuses the mount and the blob is uploaded.
type hints struct {
	file string // "" = remember only for this run

	mu    sync.Mutex
	repos map[string][]string // digest -> repositories, most recent first
	dirty map[string][]string // what this run learned, to merge on save
}

// hintFile returns the file of registry host's hints in dir.
func hintFile(dir, host string) string {
	safe := strings.NewReplacer(":", "_", "/", "_", "\\", "_").Replace(host)
	return filepath.Join(dir, "mounts-"+safe+".json")
}

// loadHints reads the hints of file (missing or unreadable: none).
func loadHints(file string) *hints {
	h := &hints{file: file, repos: map[string][]string{}, dirty: map[string][]string{}}
	if file == "" {
		return h
	}
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &h.repos) // a damaged hint file only costs mounts
	}
	return h
}

// add records that repo holds digest.
func (h *hints) add(digest, repo string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[digest] = addRecent(h.repos[digest], repo)
	h.dirty[digest] = addRecent(h.dirty[digest], repo)
}

// from returns a repository other than repo known to hold digest, or "".
func (h *hints) from(digest, repo string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.repos[digest] {
		if r != repo {
			return r
		}
	}
	return ""
}

// all returns every repository named by a hint for one of digests.
func (h *hints) all(digests []string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, d := range digests {
		for _, r := range h.repos[d] {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func addRecent(list []string, repo string) []string {
	out := append([]string{repo}, slices.DeleteFunc(slices.Clone(list), func(r string) bool { return r == repo })...)
	if len(out) > maxHintRepos {
		out = out[:maxHintRepos]
	}
	return out
}

// save merges what this run learned into the file (re-read, so concurrent
// pushes lose nothing but races between their saves) and replaces it
// atomically.
func (h *hints) save() error {
	if h.file == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dirty) == 0 {
		return nil
	}
	cur := map[string][]string{}
	if b, err := os.ReadFile(h.file); err == nil {
		_ = json.Unmarshal(b, &cur)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading mount hints %s: %w", h.file, err)
	}
	for d, repos := range h.dirty {
		for i := len(repos) - 1; i >= 0; i-- {
			cur[d] = addRecent(cur[d], repos[i])
		}
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.file), 0o755); err != nil {
		return fmt.Errorf("saving mount hints: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(h.file), filepath.Base(h.file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving mount hints: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), h.file)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving mount hints %s: %w", h.file, werr)
	}
	h.dirty = map[string][]string{}
	return nil
}
