package install

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferry-dev/ferry/internal/durable"
)

// checkFile reports whether name is a safe slash-separated relative path:
// no empty, "." or ".." elements, no leading '/', no backslashes, no NUL,
// no drive letters.
func checkFile(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case strings.ContainsAny(name, "\\\x00"):
		return errors.New("file name contains a backslash or NUL")
	case strings.HasPrefix(name, "/"):
		return errors.New("file name is an absolute path")
	case filepath.VolumeName(name) != "" || strings.Contains(strings.SplitN(name, "/", 2)[0], ":"):
		return errors.New("file name starts with a volume name")
	}
	for _, elem := range strings.Split(name, "/") {
		switch elem {
		case "":
			return errors.New("file name has an empty path element")
		case ".", "..":
			return fmt.Errorf("file name has a %q path element", elem)
		}
	}
	return nil
}

// cleanLeftovers removes staging files and directories a killed Install
// left behind. It must be called with the prefix lock held.
func cleanLeftovers(prefix string, log *slog.Logger) {
	for _, dir := range []string{prefix, filepath.Join(prefix, ferryDir),
		filepath.Join(prefix, filepath.FromSlash(genDir)), filepath.Join(prefix, filepath.FromSlash(tcDir))} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.Contains(e.Name(), ".tmp-") {
				continue
			}
			if dir == prefix && !strings.HasPrefix(e.Name(), modLink+".tmp-") && !strings.HasPrefix(e.Name(), goLink+".tmp-") {
				continue // not ours
			}
			p := filepath.Join(dir, e.Name())
			log.Info("removing leftover of an interrupted install", "path", p)
			if err := os.RemoveAll(p); err != nil {
				log.Warn("removing leftover", "path", p, "err", err)
			}
		}
	}
}

// swapSymlink atomically makes link a symlink to target: it creates a
// temporary symlink beside link and renames it over link.
func swapSymlink(link, target string) error {
	tmp := link + ".tmp-" + rand.Text()
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("creating symlink %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", link, err)
	}
	return durable.Dir(filepath.Dir(link))
}

// parallel calls fn(ctx, i) for i in [0, n) on up to jobs goroutines and
// returns the first error; after an error no new calls start.
func parallel(ctx context.Context, jobs, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(jobs, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				if firstErr != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				err := ctx.Err()
				if err == nil {
					err = fn(ctx, i)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// progress adds up bytes done and reports them, one call at a time.
type progress struct {
	mu          sync.Mutex
	done, total int64
	fn          func(done, total int64)
}

func newProgress(fn func(done, total int64)) *progress { return &progress{fn: fn} }

func (p *progress) addTotal(n int64) {
	p.mu.Lock()
	p.total += n
	p.mu.Unlock()
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}
