// Package sumdbsnap builds a self-consistent snapshot of a checksum database
// (the go.sum database) on the connected side and verifies it offline.
//
// A snapshot holds one signed tree head T, the lookup answer of every module
// version it covers rewritten as tlog.FormatRecord(id, text) followed by T's
// signed note, and every tile that golang.org/x/mod/sumdb.Client reads to
// prove those records against T. Laid out under sumdb/<name>/ of a GOPROXY
// directory (see Snapshot.WriteDir) it answers every request a go command with
// an empty checksum-database state makes for those module versions.
//
// Invariants:
//   - Build never returns a snapshot whose records it did not prove against T
//     with the given verifier key, nor one whose hashes differ from the wanted
//     ones; a module the database does not know is an error.
//   - Every lookup file of a snapshot ends with exactly Head, and Files["latest"]
//     is Head.
//   - Verify reads nothing but the snapshot: no network, no cache.
//   - The verifier key is never built into this package: it comes from the
//     caller (GOSUMDB, or GoRootKey reading a Go installation's sources).
//
// AddConsistency adds the tiles proving tree heads of earlier snapshots
// consistent with T, which a go command that already holds an older head
// needs; CheckConsistency checks them offline.
package sumdbsnap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Remote reads a path of the checksum database ("/latest",
// "/lookup/<escaped mod>@<escaped ver>", "/tile/8/0/000.p/5"), for example
// through a GOPROXY's /sumdb/<name> route. It returns an error wrapping
// fs.ErrNotExist for 404 and 410 answers.
type Remote interface {
	ReadRemote(ctx context.Context, path string) ([]byte, error)
}

// Want is a module version a snapshot must cover.
type Want struct {
	Path, Version string
	ZipHash       string // "h1:..." of the zip, "" if the zip is not carried
	ModHash       string // "h1:..." of the go.mod, "" to take the database's
}

func (w Want) String() string { return w.Path + "@" + w.Version }

// Snapshot is a checksum database snapshot.
type Snapshot struct {
	Name string // name of the checksum database
	Key  string // verifier key
	Head []byte // signed tree head note T
	// Files are relative to sumdb/<name>/: "latest",
	// "lookup/<escaped path>@<escaped version>", "tile/8/L/N[.p/W]".
	Files map[string][]byte
}

// LookupFile returns the name in Snapshot.Files of the lookup answer for path@version.
func LookupFile(modPath, version string) (string, error) {
	ep, err := module.EscapePath(modPath)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return "lookup/" + ep + "@" + ev, nil
}

// maxHeadAttempts bounds how often Build fetches a newer tree head because a
// record is newer than the head it fetched first.
const maxHeadAttempts = 3

// errRecordTooNew says a lookup answered a record not in the fetched tree head.
var errRecordTooNew = errors.New("record is newer than the tree head")

// Build looks up every want in the checksum database name (verifier key key)
// through remote, with up to jobs lookups at a time, proves each record
// against one tree head, compares the hashes with the wanted ones and returns
// the snapshot. Any mismatch, unknown module or security error is an error
// naming the module.
func Build(ctx context.Context, name, key string, remote Remote, wants []Want, jobs int) (*Snapshot, error) {
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("checksum database %s: invalid verifier key: %w", name, err)
	}
	if verifier.Name() != name {
		return nil, fmt.Errorf("checksum database %s: verifier key is for %s", name, verifier.Name())
	}
	if jobs < 1 {
		jobs = 1
	}
	for attempt := 1; ; attempt++ {
		snap, err := build(ctx, name, key, verifier, remote, wants, jobs)
		if errors.Is(err, errRecordTooNew) && attempt < maxHeadAttempts {
			slog.DebugContext(ctx, "sumdbsnap: record newer than tree head, fetching a newer head", "db", name, "attempt", attempt)
			continue
		}
		return snap, err
	}
}

func build(ctx context.Context, name, key string, verifier note.Verifier, remote Remote, wants []Want, jobs int) (*Snapshot, error) {
	head, err := remote.ReadRemote(ctx, "/latest")
	if err != nil {
		return nil, fmt.Errorf("checksum database %s: reading tree head: %w", name, err)
	}
	tree, err := openHead(head, verifier)
	if err != nil {
		return nil, fmt.Errorf("checksum database %s: %w", name, err)
	}
	ops := &clientOps{
		ctx:    ctx,
		name:   name,
		key:    key,
		head:   head,
		remote: remote,
		cache:  make(map[string][]byte),
		files:  map[string][]byte{"latest": head},
	}
	client := sumdb.NewClient(ops)

	errs := make([]error, len(wants))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, w := range wants {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = ops.want(ctx, client, tree, verifier, w)
		}()
	}
	wg.Wait()
	if msg := ops.securityError(); msg != "" {
		return nil, fmt.Errorf("checksum database %s: %s", name, oneLine(msg))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Snapshot{Name: name, Key: key, Head: head, Files: ops.files}, nil
}

// openHead verifies a signed tree head and parses its tree.
func openHead(head []byte, verifier note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(head, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("verifying tree head: %w", err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("parsing tree head: %w", err)
	}
	return tree, nil
}

// want fetches, rewrites and proves the record of w and compares its hashes.
func (o *clientOps) want(ctx context.Context, client *sumdb.Client, tree tlog.Tree, verifier note.Verifier, w Want) error {
	file, err := LookupFile(w.Path, w.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", w, err)
	}
	data, err := o.remote.ReadRemote(ctx, "/"+file)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: not found in checksum database %s: %w", w, o.name, err)
	}
	if err != nil {
		return fmt.Errorf("%s: looking up in checksum database %s: %w", w, o.name, err)
	}
	id, text, signed, err := tlog.ParseRecord(data)
	if err != nil {
		return fmt.Errorf("%s: parsing checksum database answer: %w", w, err)
	}
	if _, err := note.Open(signed, note.VerifierList(verifier)); err != nil {
		return fmt.Errorf("%s: checksum database answer has an invalid tree head: %w", w, err)
	}
	if id >= tree.N {
		return fmt.Errorf("%s: record %d, tree head size %d: %w", w, id, tree.N, errRecordTooNew)
	}
	rec, err := tlog.FormatRecord(id, text)
	if err != nil {
		return fmt.Errorf("%s: formatting record: %w", w, err)
	}
	rewritten := append(rec, o.head...)
	o.mu.Lock()
	o.cache[o.name+"/"+file] = rewritten
	o.mu.Unlock()

	if err := compare(client, w, "checksum database "+o.name); err != nil {
		return err
	}
	o.mu.Lock()
	o.files[file] = rewritten
	o.mu.Unlock()
	return nil
}

// compare looks w up with client (which proves the record) and compares the hashes.
func compare(client *sumdb.Client, w Want, db string) error {
	for _, c := range []struct{ vers, want string }{{w.Version, w.ZipHash}, {w.Version + "/go.mod", w.ModHash}} {
		lines, err := client.Lookup(w.Path, c.vers)
		if err != nil {
			// sumdb.Client errors are formatted with %v (no chain to keep)
			// and may span lines.
			msg := strings.TrimPrefix(err.Error(), w.Path+"@"+c.vers+": ")
			return fmt.Errorf("%s: verifying record: %s", w, oneLine(msg))
		}
		got := ""
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 3 && f[1] == c.vers {
				got = f[2]
				break
			}
		}
		switch {
		case got == "" && c.want != "":
			return fmt.Errorf("%s: %s has no hash for %s %s", w, db, w.Path, c.vers)
		case c.want != "" && got != c.want:
			what := w.String()
			if strings.HasSuffix(c.vers, "/go.mod") {
				what += "/go.mod"
			}
			return fmt.Errorf("checksum mismatch for %s: bundle %s, %s %s", what, c.want, db, got)
		}
	}
	return nil
}

// clientOps implements sumdb.ClientOps for Build: the latest tree head is
// fixed to head, lookups come pre-fetched from cache, tiles from remote, and
// every tile the client authenticates is kept in files.
type clientOps struct {
	ctx    context.Context
	name   string
	key    string
	head   []byte
	remote Remote

	mu       sync.Mutex
	cache    map[string][]byte // "name/lookup/..." -> rewritten answers
	files    map[string][]byte
	security securityLatch
}

func (o *clientOps) ReadRemote(p string) ([]byte, error) {
	if !strings.HasPrefix(p, "/tile/") {
		return nil, fmt.Errorf("reading %s: only tiles are read remotely: %w", p, fs.ErrNotExist)
	}
	return o.remote.ReadRemote(o.ctx, p)
}

func (o *clientOps) ReadConfig(file string) ([]byte, error) {
	switch file {
	case "key":
		return []byte(o.key), nil
	case o.name + "/latest":
		return o.head, nil
	}
	return nil, fmt.Errorf("reading config %s: %w", file, fs.ErrNotExist)
}

func (o *clientOps) WriteConfig(file string, old, new []byte) error {
	// The head never moves: every lookup is wrapped with it.
	if !bytes.Equal(new, o.head) {
		return fmt.Errorf("writing config %s: tree head moved away from the snapshot head", file)
	}
	return nil
}

func (o *clientOps) ReadCache(file string) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if data, ok := o.cache[file]; ok {
		return data, nil
	}
	return nil, fs.ErrNotExist
}

func (o *clientOps) WriteCache(file string, data []byte) {
	rel, ok := strings.CutPrefix(file, o.name+"/")
	if !ok || !strings.HasPrefix(rel, "tile/") {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[rel] = bytes.Clone(data)
}

func (o *clientOps) Log(msg string) { slog.DebugContext(o.ctx, "sumdbsnap: "+msg) }

func (o *clientOps) SecurityError(msg string) {
	slog.ErrorContext(o.ctx, "sumdbsnap: checksum database security error", "db", o.name, "detail", msg)
	o.security.set(msg)
}

func (o *clientOps) securityError() string { return o.security.get() }

// Verify checks snap fully offline with key: the head's signature, each want's
// lookup file (wrapped with the head), its inclusion proof through the tiles
// of snap.Files (using a fresh sumdb.Client that reads nothing else) and its
// hashes. It returns every problem found, each naming the module or file.
func Verify(ctx context.Context, key string, snap *Snapshot, wants []Want) []error {
	var errs []error
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return []error{fmt.Errorf("checksum database %s: invalid verifier key: %w", snap.Name, err)}
	}
	if verifier.Name() != snap.Name {
		return []error{fmt.Errorf("checksum database %s: verifier key is for %s", snap.Name, verifier.Name())}
	}
	if _, err := openHead(snap.Head, verifier); err != nil {
		return []error{fmt.Errorf("checksum database %s: %w", snap.Name, err)}
	}
	if latest, ok := snap.Files["latest"]; !ok {
		errs = append(errs, fmt.Errorf("checksum database %s: snapshot has no latest file", snap.Name))
	} else if !bytes.Equal(latest, snap.Head) {
		errs = append(errs, fmt.Errorf("checksum database %s: latest file is not the snapshot head", snap.Name))
	}
	for _, f := range sortedKeys(snap.Files) {
		if f == "latest" || strings.HasPrefix(f, "lookup/") {
			continue
		}
		if _, err := tlog.ParseTilePath(f); err != nil || !strings.HasPrefix(f, "tile/") {
			errs = append(errs, fmt.Errorf("checksum database %s: unexpected file %s in snapshot", snap.Name, f))
		}
	}

	ops := &offlineOps{ctx: ctx, name: snap.Name, key: key, files: snap.Files}
	client := sumdb.NewClient(ops)
	db := "checksum database " + snap.Name + " snapshot"
	for _, w := range wants {
		file, err := LookupFile(w.Path, w.Version)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
			continue
		}
		data, ok := snap.Files[file]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: snapshot has no %s", w, file))
			continue
		}
		_, _, signed, err := tlog.ParseRecord(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: parsing %s: %w", w, file, err))
			continue
		}
		if !bytes.Equal(signed, snap.Head) {
			errs = append(errs, fmt.Errorf("%s: %s is wrapped with another tree head than the snapshot head", w, file))
			continue
		}
		if err := compare(client, w, db); err != nil {
			errs = append(errs, err)
		}
	}
	if msg := ops.securityError(); msg != "" {
		errs = append(errs, fmt.Errorf("checksum database %s: %s", snap.Name, oneLine(msg)))
	}
	return errs
}

// oneLine joins the lines of a multi-line message with "; ".
func oneLine(msg string) string {
	var parts []string
	for l := range strings.SplitSeq(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// offlineOps implements sumdb.ClientOps over the files of a snapshot only,
// starting from an empty tree head like a fresh go command.
type offlineOps struct {
	ctx   context.Context
	name  string
	key   string
	files map[string][]byte

	mu       sync.Mutex
	latest   []byte
	security securityLatch
}

func (o *offlineOps) ReadRemote(p string) ([]byte, error) {
	data, ok := o.files[strings.TrimPrefix(p, "/")]
	if !ok {
		return nil, fmt.Errorf("snapshot has no %s: %w", strings.TrimPrefix(p, "/"), fs.ErrNotExist)
	}
	return data, nil
}

func (o *offlineOps) ReadConfig(file string) ([]byte, error) {
	switch file {
	case "key":
		return []byte(o.key), nil
	case o.name + "/latest":
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.latest, nil
	}
	return nil, fmt.Errorf("reading config %s: %w", file, fs.ErrNotExist)
}

func (o *offlineOps) WriteConfig(file string, old, new []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !bytes.Equal(old, o.latest) {
		return sumdb.ErrWriteConflict
	}
	o.latest = new
	return nil
}

func (o *offlineOps) ReadCache(file string) ([]byte, error) { return nil, fs.ErrNotExist }
func (o *offlineOps) WriteCache(file string, data []byte)   {}
func (o *offlineOps) Log(msg string)                        { slog.DebugContext(o.ctx, "sumdbsnap: "+msg) }

func (o *offlineOps) SecurityError(msg string) {
	slog.ErrorContext(o.ctx, "sumdbsnap: checksum database snapshot security error", "db", o.name, "detail", msg)
	o.security.set(msg)
}

func (o *offlineOps) securityError() string { return o.security.get() }

// securityLatch keeps the first security error a sumdb.Client reports.
type securityLatch struct {
	mu  sync.Mutex
	msg string
}

func (l *securityLatch) set(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msg == "" {
		l.msg = msg
	}
}

func (l *securityLatch) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

// WriteDir writes the snapshot into root laid out as a GOPROXY directory:
// root/sumdb/<name>/supported (empty) and root/sumdb/<name>/<file> for every file.
func (s *Snapshot) WriteDir(root string) error {
	base := filepath.Join(root, "sumdb", filepath.FromSlash(s.Name))
	write := func(rel string, data []byte) error {
		if !fs.ValidPath(rel) || strings.Contains(rel, "..") {
			return fmt.Errorf("writing checksum database snapshot: invalid file name %q", rel)
		}
		p := filepath.Join(base, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			return fmt.Errorf("writing checksum database snapshot: %w", err)
		}
		if err := os.WriteFile(p, data, 0o666); err != nil {
			return fmt.Errorf("writing checksum database snapshot: %w", err)
		}
		return nil
	}
	if err := write("supported", nil); err != nil {
		return err
	}
	for _, rel := range sortedKeys(s.Files) {
		if err := write(path.Clean(rel), s.Files[rel]); err != nil {
			return err
		}
	}
	return nil
}

// SignedTreeSize returns the size of the tree in the signed tree head that
// data carries: data is a lookup response (a record followed by the signed
// note) or, if !lookup, the signed note itself.
func SignedTreeSize(data []byte, lookup bool) (int64, error) {
	msg := data
	if lookup {
		_, _, rest, err := tlog.ParseRecord(data)
		if err != nil {
			return 0, fmt.Errorf("parsing lookup: %w", err)
		}
		msg = rest
	}
	// A signed note is its text (ending in '\n'), a blank line and signature lines.
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return 0, errors.New("parsing tree head: no signature block")
	}
	tree, err := tlog.ParseTree(msg[:i+1])
	if err != nil {
		return 0, fmt.Errorf("parsing tree head: %w", err)
	}
	return tree.N, nil
}
