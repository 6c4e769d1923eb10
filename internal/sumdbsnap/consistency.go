package sumdbsnap

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// AddConsistency adds to s the tiles a go command holding one of the earlier
// signed tree heads needs to accept s.Head: the tiles of s.Head's tree from
// which tlog.TreeHash(earlier.N) is computed, exactly what
// sumdb.Client.checkTrees reads, and the tiles of each earlier head's own
// tree, which such a client reads when it starts with an empty cache. Tiles missing from s.Files are read through
// remote (the same route as Build). Each earlier head must be signed with
// key and be a prefix of s.Head's tree (else the database forked: an error).
// An earlier head of the same size as s.Head must be s.Head's tree.
//
// A client that moved to s.Head and then reads a lookup still wrapped with
// an earlier head proves that record in s.Head's tree from the union of the
// earlier snapshot's tiles and these (what `ferry serve` merges); the tests
// cover trees that grew past a tile between the snapshots.
func (s *Snapshot) AddConsistency(ctx context.Context, remote Remote, earlier [][]byte) error {
	verifier, err := note.NewVerifier(s.Key)
	if err != nil {
		return fmt.Errorf("checksum database %s: invalid verifier key: %w", s.Name, err)
	}
	tree, err := openHead(s.Head, verifier)
	if err != nil {
		return fmt.Errorf("checksum database %s: %w", s.Name, err)
	}
	tr := &recordingTiles{ctx: ctx, remote: remote, files: s.Files}
	thr := tlog.TileHashReader(tree, tr)
	for i, head := range earlier {
		old, err := openHead(head, verifier)
		if err != nil {
			return fmt.Errorf("checksum database %s: earlier tree head %d: %w", s.Name, i+1, err)
		}
		if old.N > tree.N {
			return fmt.Errorf("checksum database %s: earlier tree head %d (size %d) is newer than the snapshot head (size %d)", s.Name, i+1, old.N, tree.N)
		}
		if old.N == 0 {
			continue
		}
		h, err := tlog.TreeHash(old.N, thr)
		if err != nil {
			return fmt.Errorf("checksum database %s: proving tree size %d consistent with %d: %w", s.Name, old.N, tree.N, err)
		}
		if h != old.Hash {
			return fmt.Errorf("checksum database %s: SECURITY ERROR: tree head of size %d is not a prefix of the tree of size %d (forked database)", s.Name, old.N, tree.N)
		}
		// A client starting up checks its own head against its own tiles
		// (sumdb.Client.initWork); after `go clean -modcache` it fetches them.
		if _, err := tlog.TreeHash(old.N, tlog.TileHashReader(old, tr)); err != nil {
			return fmt.Errorf("checksum database %s: reading the tiles of tree size %d: %w", s.Name, old.N, err)
		}
	}
	return tr.err
}

// recordingTiles is a tlog.TileReader that reads tiles from files or remote
// and keeps what it read (after TileHashReader authenticated it) in files.
type recordingTiles struct {
	ctx    context.Context
	remote Remote
	mu     sync.Mutex
	files  map[string][]byte
	err    error
}

func (r *recordingTiles) Height() int { return 8 }

func (r *recordingTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := t.Path()
		r.mu.Lock()
		data, ok := r.files[p]
		r.mu.Unlock()
		if !ok {
			var err error
			data, err = r.remote.ReadRemote(r.ctx, "/"+p)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", p, err)
			}
		}
		out[i] = data
	}
	return out, nil
}

func (r *recordingTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, t := range tiles {
		p := t.Path()
		if old, ok := r.files[p]; ok && !bytes.Equal(old, data[i]) {
			r.err = fmt.Errorf("tile %s: two different contents", p)
			continue
		}
		r.files[p] = bytes.Clone(data[i])
	}
}

// CheckConsistency checks offline that every earlier head (signed with
// s.Key) is a prefix of s.Head's tree using only the tiles of s.Files:
// that a go command holding it accepts s.Head.
func (s *Snapshot) CheckConsistency(earlier [][]byte) error {
	files := make(map[string][]byte, len(s.Files))
	for k, v := range s.Files {
		files[k] = v
	}
	c := &Snapshot{Name: s.Name, Key: s.Key, Head: s.Head, Files: files}
	before := len(files)
	if err := c.AddConsistency(context.Background(), noRemote{}, earlier); err != nil {
		return err
	}
	if len(files) != before {
		return fmt.Errorf("checksum database %s: consistency check read tiles the snapshot lacks", s.Name)
	}
	return nil
}

type noRemote struct{}

func (noRemote) ReadRemote(ctx context.Context, p string) ([]byte, error) {
	return nil, fmt.Errorf("snapshot has no %s", p)
}
