package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// splitFlagUsage is the help text of `ferry pack --split`.
const splitFlagUsage = "write the bundle as parts of at most `SIZE` for removable media " +
	"(650M, 4.7G, 4GiB, 700MB or bytes; K, M, G, T are powers of 1000 as media are labelled, KiB, MiB, GiB, TiB of 1024): " +
	"the -o file becomes a small index of the parts FILE.001, FILE.002, ... beside it; " +
	"verify, install, import and ls take the index or any part"

// splitExample is the line of pack's --help examples for --split.
const splitExample = `  ferry pack . -o app.ferry --split 4.7G     # app.ferry (index) + app.ferry.001, .002, ...`

// parseSplitFlag parses pack's --split value; 0 means no split. Pack calls it
// before packing, so that a bad SIZE fails at once.
func parseSplitFlag(flag string) (int64, error) {
	if flag == "" {
		return 0, nil
	}
	n, err := bundle.ParseSize(flag)
	if err != nil {
		return 0, fmt.Errorf("--split: %w", err)
	}
	return n, nil
}

// splitBundle splits the bundle written at path into parts of at most
// partSize bytes, with a progress bar, and returns the index written at path.
// On error path is still the whole bundle.
func (a *app) splitBundle(ctx context.Context, path string, partSize int64) (*bundle.SplitIndex, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("splitting bundle: %w", err)
	}
	prog := a.newProgress()
	prog.phase("split", fi.Size())
	idx, err := bundle.Split(ctx, path, partSize, prog.set)
	prog.finish()
	if err != nil {
		return nil, fmt.Errorf("%w (%s is left as it was)", err, path)
	}
	return idx, nil
}

// printSplit prints, for pack's human output, what splitBundle wrote.
func (a *app) printSplit(path string, idx *bundle.SplitIndex) {
	first, last := idx.Parts[0], idx.Parts[len(idx.Parts)-1]
	if len(idx.Parts) == 1 {
		fmt.Fprintf(a.stdout, "  split into 1 part: %s (%s)\n", first.Name, human(first.Size))
	} else {
		fmt.Fprintf(a.stdout, "  split into %d parts: %s ... %s (%s each, the last %s)\n", len(idx.Parts), first.Name, last.Name, human(first.Size), human(last.Size))
	}
	fmt.Fprintf(a.stdout, "  %s is now their index: carry it with the parts; verify, install and import take it or %s\n", path, first.Name)
}
